"""Deployed models on real key frames they never trained on, scored against the frames' own lidar.

    .venv/bin/python benchmarks/bench_real_occupancy.py --model OLD.onnx --model NEW.onnx \
        --data ../shared/data/nuscenes-scene-0916 --frames 10 --synthetic runs/synth_demo \
        --json docs/results/real_occupancy.json

Each model (an exported .onnx, run by the runtime exactly as `easyocc stream` runs it) sees the last
`--frames` key frames of every scene of `--data` and is scored per frame against that key frame's own
sweep (ego frame, ego body removed; runtime/dataset/lidar_occupancy.py):
- recall@1: returns inside the grid whose voxel or one of its 26 neighbours is predicted occupied;
- free-space violation: voxels the rays pass through before their hit that are predicted occupied;
- occupied voxels per frame and their share of the grid.
With `--synthetic DIR`, also the Occ3D mIoU (camera mask) on the last `--val-scenes` scenes of that
synthetic world against its ground truth, through the same runtime.
"""

from __future__ import annotations

import argparse
import operator
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from easyocc.runtime.contract.classes import FREE
from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.runtime.dataset.labels import read_labels
from easyocc.runtime.dataset.lidar_occupancy import sample_sweep, score_prediction
from easyocc.runtime.dataset.metric import OccMetric
from easyocc.runtime.dataset.nuscenes import NuScenesDataset
from easyocc.runtime.occupancy import OccupancyRuntime
from easyocc.runtime.sources import NuScenesSource

ACCEPT = {"recall_at_1": (">=", 0.60), "free_violation": ("<=", 0.15), "occupied_share": ("<", 0.15)}
COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


def score_real(model: Path, root: Path, frames: int, threads: int) -> dict:
    """Per-frame and mean scores of one model on the last `frames` key frames of each scene."""
    dataset = NuScenesDataset(root)
    rows = []
    for scene in dataset.scene_names:
        source = NuScenesSource(root, scene)
        held_out = {s.token: s for s in source.samples[-frames:]}
        with OccupancyRuntime(model, rig=source.rig, threads=threads) as runtime:
            for frame in source:
                sample = held_out.get(frame.meta["sample_token"])
                if sample is None:
                    continue
                result = runtime.process(frame)
                scores = score_prediction(runtime.grid, result.semantics != FREE, sample_sweep(sample))
                rows.append({"scene": scene, "index": sample.index, "token": sample.token, **vars(scores)})
    keys = ("recall_at_1", "recall_at_1_above_ground", "free_violation", "occupied_voxels", "occupied_share")
    mean = {key: float(np.mean([r[key] for r in rows])) for key in keys}
    spread = {key: [float(min(r[key] for r in rows)), float(max(r[key] for r in rows))] for key in keys}
    verdict = {key: bool(COMPARE[op](mean[key], limit)) for key, (op, limit) in ACCEPT.items()}
    return {"mean": mean, "min_max": spread, "accepted": verdict, "frames": rows}


def score_synthetic(model: Path, root: Path, val_scenes: int, threads: int) -> dict:
    """Occ3D metric (camera mask) on the last `val_scenes` scenes of a synthetic world, via the runtime."""
    dataset = NuScenesDataset(root)
    metric = OccMetric()
    scenes = dataset.scene_names[-val_scenes:]
    for scene in scenes:
        source = NuScenesSource(root, scene)
        with OccupancyRuntime(model, rig=source.rig, threads=threads) as runtime:
            for frame, sample in zip(source, source.samples):
                labels = read_labels(dataset.labels_path(sample), runtime.grid)
                metric.update(runtime.process(frame).semantics, labels.semantics, labels.mask("camera"))
    return {"scenes": scenes, "mask": "camera", **metric.results()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="exported .onnx (repeat to compare)")
    parser.add_argument("--data", default="../shared/data/nuscenes-scene-0916", help="real nuScenes-layout dataset")
    parser.add_argument("--frames", type=int, default=10, help="held-out key frames: the last N of each scene")
    parser.add_argument("--synthetic", default="", help="synthetic world for the held-out mIoU (optional)")
    parser.add_argument("--val-scenes", type=int, default=2, help="held-out synthetic scenes: the last N")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="", help="write the results here")
    args = parser.parse_args(argv)
    report = {"data": args.data, "held_out_frames": args.frames, "acceptance": ACCEPT, "models": {}}
    for model in args.model:
        start = time.perf_counter()
        entry = {"real": score_real(Path(model), Path(args.data), args.frames, args.threads)}
        if args.synthetic:
            entry["synthetic"] = score_synthetic(Path(model), Path(args.synthetic), args.val_scenes, args.threads)
        entry["seconds"] = round(time.perf_counter() - start, 1)
        report["models"][model] = entry
        mean = entry["real"]["mean"]
        synth = entry.get("synthetic", {})
        print(
            f"{model}: recall@1 {mean['recall_at_1']:.3f} (above ground {mean['recall_at_1_above_ground']:.3f}), "
            f"free-space violation {mean['free_violation']:.3f}, "
            f"occupied {mean['occupied_voxels']:.0f} voxels/frame ({100 * mean['occupied_share']:.1f} %)"
            + (f", synthetic mIoU {synth['miou']:.2f}" if synth else "")
            + f"; accepted {all(entry['real']['accepted'].values())}",
            flush=True,
        )
        occupied = [r["occupied_voxels"] for r in entry["real"]["frames"]]
        print(f"  occupied voxels per frame: median {statistics.median(occupied):.0f}", flush=True)
    if args.json:
        write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
