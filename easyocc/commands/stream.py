"""`easyocc stream`: run the streaming runtime on a nuScenes-layout dataset or an image folder.

Writes an npz per frame and a top-down preview (PNG + GIF) to --out, and prints the latency table
and the dropped-frame counters.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from easyocc.models import bundled_model
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic

DEFAULT_MODEL = bundled_model(".onnx")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by stream, bench and demo: model, backend, rig and frame policy."""
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help=f"model file (default {DEFAULT_MODEL})")
    parser.add_argument("--backend", default=None, help="onnxruntime | tensorrt | torch (default: from the suffix)")
    parser.add_argument("--threads", type=int, default=None, help="backend intra-op threads (default: all cores)")
    parser.add_argument("--rig", default=None, help="rig YAML for --images (default: the nuScenes rig)")
    parser.add_argument(
        "--missing-camera", choices=("drop", "zero"), default="drop", help="policy for an absent camera"
    )
    parser.add_argument("--sync-tolerance-ms", type=float, default=50.0, help="max camera stamp spread in a frame")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", default=None, help="nuScenes-layout dataset folder")
    source.add_argument("--images", default=None, help="image folder with one sub-folder per camera")
    parser.add_argument("--scene", default=None, help="scene name in --data (default: all scenes)")
    parser.add_argument(
        "--paced", action="store_true", help="replay at the recorded timestamps, not as fast as possible"
    )
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed factor with --paced")
    parser.add_argument("--loops", type=int, default=1, help="repeat the replay this many times (stamps keep rising)")


def check_model(path) -> Path:
    path = Path(path)
    if not path.is_file():
        hint = (
            " (the bundled demo model; build it with `easyocc export` or pass --model)" if path == DEFAULT_MODEL else ""
        )
        raise EasyOccError(f"model not found: {path}{hint}")
    return path


def make_source(args, camera_names=None, preload: bool = False):
    """(source, rig) from --data or --images."""
    from easyocc.calibration import default_rig, load_rig
    from easyocc.runtime.sources import ImageFolderSource, NuScenesSource

    if args.data:
        source = NuScenesSource(
            args.data, args.scene, paced=args.paced, speed=args.speed, loops=args.loops, preload=preload
        )
        return source, source.rig
    if args.images:
        rig = load_rig(args.rig) if args.rig else default_rig()
        return ImageFolderSource(args.images, camera_names or rig.names, paced=args.paced), rig
    raise EasyOccError("give a source: --data DATASET or --images FOLDER")


def open_runtime(args, rig, buffers: int = 3):
    from easyocc.runtime.backends import backend_for_path
    from easyocc.runtime.occupancy import OccupancyRuntime

    model = check_model(args.model)
    return OccupancyRuntime(
        model,
        rig=rig,
        backend=args.backend or backend_for_path(model),
        missing_camera=args.missing_camera,
        sync_tolerance_ms=args.sync_tolerance_ms,
        threads=args.threads,
        buffers=buffers,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc stream", description=__doc__.splitlines()[0])
    add_runtime_arguments(parser)
    add_source_arguments(parser)
    parser.add_argument("--out", default="stream_out", help="output folder (npz per frame, preview.png/.gif)")
    parser.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--no-npz", action="store_true", help="do not write an npz per frame")
    parser.add_argument(
        "--save-predictions",
        action="store_true",
        help="also write OUT/predictions/<scene>/<sample_token>/labels.npz, scored by `easyocc eval --predictions`",
    )
    parser.add_argument("--live", action="store_true", help="newest-frame buffers: skip frames that come too fast")
    parser.add_argument("--json", default=None, help="write the latency summary and drop counters to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every dropped frame")
    return parser


def summary_dict(runtime, report) -> dict:
    return {
        "model": runtime.manifest.summary(),
        "backend": runtime.backend_name,
        "frames_in": report.frames_in,
        "frames_out": report.frames_out,
        "throughput_fps": round(report.throughput_fps, 3),
        "drops": report.drops,
        "latency_ms": runtime.stats.summary(),
    }


def print_summary(runtime, report) -> None:
    print(f"{runtime.manifest.summary()}  [{runtime.backend_name}]")
    print(runtime.stats.table())
    print(f"frames: {report.frames_in} in, {report.frames_out} out, {report.throughput_fps:.2f} frames/s")
    if report.drops:
        print("dropped: " + ", ".join(f"{reason} {count}" for reason, count in sorted(report.drops.items())))


def main(argv: list[str]) -> int:
    from easyocc.runtime.pipeline import StreamPipeline
    from easyocc.runtime.sinks import NpzSink, Occ3DSink, PreviewSink

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    check_model(args.model)  # before reading any data
    source, rig = make_source(args)
    out = Path(args.out)
    with open_runtime(args, rig) as runtime:
        sinks = [] if args.no_npz else [NpzSink(out / "frames")]
        if args.save_predictions:
            sinks.append(Occ3DSink(out / "predictions"))
        preview = PreviewSink(out / "preview", every=1, max_frames=80)
        sinks.append(preview)
        report = StreamPipeline(runtime, source, sinks, live=args.live, max_frames=args.frames).run()
        print_summary(runtime, report)
        if args.json:
            write_json_atomic(args.json, summary_dict(runtime, report))
    for path in preview.written:
        print(f"wrote {path}")
    return 0
