"""`easyocc demo`, the main job: a synthetic scene through the bundled model, with latency and accuracy.

A small synthetic scene -> the bundled model (ONNX Runtime) -> the latency table, the Occ3D metric
against the scene's ground truth, and a preview of predicted occupancy beside the ground truth.

The scene comes from the synthetic world (numpy only, no torch), or from --data. Ground truth is read
from the Occ3D labels beside the dataset when present, and scored after the stream has run, so the
latency table measures the runtime, not the scoring.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from easyocc.commands import options
from easyocc.runtime.streaming import DemoConfig, check_model, summary_text

SYNTH_SEED = 7


def generate_scene(folder: Path, frames: int) -> Path:
    """Write one small synthetic scene to `folder` (as `easyocc synth --scenes 1 --seed 7`); reuse it when present."""
    from easyocc.training.synth import SynthConfig, generate_dataset

    if (folder / "v1.0-mini" / "sample.json").is_file() or any(folder.glob("*/sample.json")):
        return folder
    print(
        f"generating a synthetic scene: easyocc synth --out {folder} --scenes 1 --frames {frames} --seed {SYNTH_SEED}",
        file=sys.stderr,
    )
    return Path(generate_dataset(folder, SynthConfig(scenes=1, frames=frames, seed=SYNTH_SEED), progress=False))


class GroundTruthComparison:
    """Per frame: reads the Occ3D labels of the sample (when present and on the model's grid) and
    composes prediction | ground truth previews; `score()` computes the metric on the camera mask and
    RayIoU afterwards, outside the timed pipeline."""

    def __init__(self, data_root: Path, grid, observed: np.ndarray):
        from easyocc.runtime.dataset.metric import OccMetric
        from easyocc.runtime.dataset.nuscenes import NuScenesDataset
        from easyocc.runtime.dataset.rayiou import RayMetric

        self.root, self.grid, self.observed = data_root, grid, observed
        self.metric = OccMetric()
        self.rays = RayMetric(grid)
        self.dataset = NuScenesDataset(data_root)
        self.frames_with_labels = 0
        self.scored: list[tuple[str, np.ndarray, object]] = []  # (token, prediction, labels)
        self.grid_mismatch = None
        from easyocc.runtime.dataset.labels import labels_grid

        theirs, source = labels_grid(data_root)
        if theirs != grid:  # even of the same shape: each voxel would be compared with another place
            self.grid_mismatch = f"labels grid {theirs.describe()} ({source}) vs model grid {grid.describe()}"

    def labels(self, result):
        from easyocc.runtime.dataset.labels import labels_path, read_labels

        scene, token = result.meta.get("scene"), result.meta.get("sample_token")
        if not scene or not token or self.grid_mismatch:
            return None
        path = labels_path(self.root, scene, token)
        if not path.is_file():
            return None
        labels = read_labels(path)
        if labels.semantics.shape != self.grid.shape:
            self.grid_mismatch = f"labels {labels.semantics.shape} vs model grid {self.grid.shape}"
            return None
        return labels

    def compose(self, result) -> np.ndarray:
        from easyocc.runtime.topdown import render_topdown, side_by_side

        pred = render_topdown(result.semantics, self.grid, self.observed, title=f"predicted  frame {result.seq}")
        labels = self.labels(result)
        if labels is None:
            return pred
        self.frames_with_labels += 1
        self.scored.append((result.meta["sample_token"], result.semantics.copy(), labels))
        truth = render_topdown(labels.semantics, self.grid, labels.mask_camera, title="ground truth (camera mask)")
        return side_by_side([pred, truth])

    def score(self) -> None:
        """The Occ3D metric (camera mask) and RayIoU over the frames composed so far."""
        from easyocc.runtime.dataset.rayiou import sample_lidar_origins

        for token, prediction, labels in self.scored:
            self.metric.update(prediction, labels.semantics, labels.mask("camera"))
            origins = sample_lidar_origins(self.dataset, self.dataset.sample(token))
            self.rays.update(prediction, labels.semantics, origins)
        self.scored.clear()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc demo", description=__doc__.splitlines()[0])
    options.add_model(parser, help="ONNX model (default: the bundled model)")
    options.add_data(parser, help="nuScenes-layout dataset instead of generating one")
    parser.add_argument("--scene", default=None, help="scene in --data (default: the first)")
    options.add_frames(parser, help="key frames to generate and stream (default 12)")
    options.add_out(parser, help="output folder (default demo_out)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    parser.add_argument("--missing-camera", choices=("drop", "zero"), default=None, help="policy for an absent camera")
    options.add_config(parser, DemoConfig)
    return parser


def main(argv: list[str]) -> int:
    from easyocc.runtime.occupancy import OccupancyRuntime
    from easyocc.runtime.pipeline import StreamPipeline
    from easyocc.runtime.sinks import CallbackSink, PreviewSink
    from easyocc.runtime.sources import NuScenesSource

    args = build_parser().parse_intermixed_args(argv)
    flags = {
        "model": args.model or options.default_model(),
        "data": args.data,
        "scene": args.scene,
        "frames": args.frames,
        "out": args.out,
        "threads": args.threads,
        "missing_camera": args.missing_camera,
    }
    config = options.resolve_config(DemoConfig, args, flags)
    if args.print_config:
        return options.print_config(config)
    options.check_outputs(config.out)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    model = check_model(config.model)
    out = Path(config.out)
    data = Path(config.data) if config.data else generate_scene(out / "synthetic_scene", config.frames)
    source = NuScenesSource(data, config.scene or None)
    scene = config.scene or source.samples[0].scene_name
    source = NuScenesSource(data, scene)
    runtime = OccupancyRuntime(
        model, rig=source.rig, backend="onnxruntime", threads=config.threads, missing_camera=config.missing_camera
    )
    with runtime:
        comparison = GroundTruthComparison(data, runtime.grid, runtime.observed())
        preview = PreviewSink(out / "preview", compose=comparison.compose, max_frames=config.frames)
        count = {"voxels": 0}
        sinks = [CallbackSink(lambda r: count.__setitem__("voxels", count["voxels"] + len(r.voxels))), preview]
        report = StreamPipeline(runtime, source, sinks, max_frames=config.frames).run()
        print(summary_text(runtime, report))
    print(f"occupied voxels per frame: {count['voxels'] / max(report.frames_out, 1):.0f}")
    if comparison.frames_with_labels:
        comparison.score()
        print(comparison.metric.table(f"against ground truth, {comparison.frames_with_labels} frames, camera mask"))
        rays = comparison.rays.results()
        print(
            f"RayIoU {rays['rayiou']:.2f} (@1 m {rays['rayiou@1']:.2f}, @2 m {rays['rayiou@2']:.2f}, "
            f"@4 m {rays['rayiou@4']:.2f}; {comparison.rays.rays} lidar-like rays, no mask)"
        )
    elif comparison.grid_mismatch:
        print(f"ground truth not compared: {comparison.grid_mismatch}")
    else:
        print("no ground-truth labels found beside the data; preview shows the prediction only")
    for path in preview.written:
        print(f"wrote {path}")
    return 0
