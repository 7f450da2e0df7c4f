"""`easyocc bench`: per-stage latency, live latency, throughput, CPU and memory of the streaming runtime, per backend.

The measurements are easyocc.runtime.benchmark's (its docstring says what each pass means): backend
alone, one frame at a time, live at the recording's rate with --paced (newest-frame policy: the
latency a car sees), and throughput as fast as possible (its end-to-end time is queueing, reported
as such). The JSON records the machine's load average, since the development machines are shared.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from easyocc.commands.stream import DEFAULT_MODEL, add_source_arguments, check_model
from easyocc.runtime.benchmark import (  # noqa: F401  (percentiles: benchmarks/bench_ros_node.py imports it here)
    DEPLOYMENT_SIZE,
    BenchOptions,
    bench_backend,
    format_table,
    host_preprocess_ms,
    load_average,
    percentiles,
)
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic


def parse_backend(spec: str, default_model) -> dict:
    """'onnxruntime', 'onnxruntime:threads=1', 'torch:model=m.ts,device=cpu' -> {name, model, threads, options}."""
    name, _, rest = spec.partition(":")
    entry = {"label": spec, "name": name, "model": str(default_model), "threads": None, "options": {}}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise EasyOccError(f"backend spec '{spec}': expected key=value, got '{item}'")
        if key == "model":
            entry["model"] = value
        elif key == "threads":
            entry["threads"] = int(value)
        else:
            entry["options"][key] = {"true": True, "false": False}.get(value.lower(), value)
    return entry


# Colour cells across the image width of the synthetic frames: at 1600x900 and JPEG quality 90 they
# encode to ~150 KB, the mean size of the nuScenes camera JPEGs (108-196 KB in scene-0916). Decoding
# cost follows the compressed size: finer textures (the 453 KB images of earlier versions) cost
# 2.7x the decoding time of real camera images.
SYNTHETIC_CELLS_ACROSS = 28


def synthetic_frames(rig, count: int, seed: int = 0):
    """Textured JPEG frames at the rig's image size, of the byte size (so the decoding cost) of nuScenes
    camera JPEGs; stamps at 10 Hz."""
    import cv2

    from easyocc.runtime.contract.frames import CameraImage, FrameSet

    rng = np.random.default_rng(seed)
    encoded = {}
    for camera in rig:
        cells = (camera.height * SYNTHETIC_CELLS_ACROSS // camera.width + 1, SYNTHETIC_CELLS_ACROSS + 1)
        small = rng.integers(0, 255, (*cells, 3), dtype=np.uint8)
        image = cv2.resize(small, (camera.width, camera.height), interpolation=cv2.INTER_CUBIC)
        encoded[camera.name] = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    for i in range(count):
        stamp = 1_000_000 + 100_000 * i
        yield FrameSet.from_images([CameraImage(n, stamp, data=d) for n, d in encoded.items()], seq=i)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model for backends that name none")
    parser.add_argument(
        "--backend",
        action="append",
        default=None,
        help="backend spec, repeatable: onnxruntime[:threads=N], torch:model=M.ts, tensorrt:model=E.engine",
    )
    parser.add_argument("--frames", type=int, default=200, help="measured frames per backend (2000 for the RSS check)")
    parser.add_argument("--warmup", type=int, default=10, help="frames excluded from the statistics")
    parser.add_argument(
        "--backend-frames", type=int, default=None, help="backend-alone iterations (default min(frames, 200))"
    )
    parser.add_argument(
        "--sequential-frames", type=int, default=30, help="frames run one at a time for per-stage cost (default 30)"
    )
    parser.add_argument("--rig", default=None, help="rig YAML for synthetic frames (default: the nuScenes rig)")
    parser.add_argument("--missing-camera", choices=("drop", "zero"), default="drop")
    parser.add_argument("--json", default=None, help="write all numbers to this JSON file")
    add_source_arguments(parser)
    return parser


def main(argv: list[str]) -> int:
    from easyocc.calibration import default_rig, load_rig
    from easyocc.runtime.sources import IterableSource, NuScenesSource

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    options = BenchOptions(
        frames=args.frames,
        warmup=args.warmup,
        backend_frames=args.backend_frames,
        sequential_frames=args.sequential_frames,
        live=args.paced,
        missing_camera=args.missing_camera,
    )
    options.check()
    if args.images:
        raise EasyOccError("bench reads --data or makes synthetic frames; --images is not supported here")
    specs = [parse_backend(spec, args.model) for spec in (args.backend or ["onnxruntime"])]
    for spec in specs:
        spec["model"] = check_model(spec["model"])
    if args.data:
        replay = NuScenesSource(args.data, args.scene, preload=True)
        rig = replay.rig
        per_loop = len(replay.samples)

        def frames_factory(count, paced=False):
            replay.loops, replay.paced, replay.speed = -(-count // per_loop), paced, args.speed
            return (frame for frame, _ in zip(replay, range(count)))

        source_name = f"{args.data} ({per_loop} frames, looped)"
    else:
        rig = load_rig(args.rig) if args.rig else default_rig()

        def frames_factory(count, paced=False):
            return IterableSource(synthetic_frames(rig, count), paced=paced)

        source_name = f"synthetic textured JPEGs at {rig.cameras[0].width}x{rig.cameras[0].height}"
    live_factory = (lambda count: frames_factory(count, paced=True)) if args.paced else None
    load_before = load_average()
    results = [bench_backend(entry, rig, frames_factory, options, live_factory) for entry in specs]
    sizes = dict.fromkeys([DEPLOYMENT_SIZE, *(tuple(r["input_size"]) for r in results)])
    host = host_preprocess_ms(rig, next(iter(frames_factory(1))), sizes)
    load = {"before": load_before, "after": load_average(), "cpu_count": os.cpu_count()}
    print(f"source: {source_name}; {args.frames} frames after {args.warmup} warm-up; load average {load}")
    print(format_table(results, host))
    if args.json:
        write_json_atomic(
            Path(args.json),
            {
                "source": source_name,
                "frames": args.frames,
                "warmup": args.warmup,
                "paced": args.paced,
                "speed": args.speed,
                "load_average": load,
                "host_preprocess_ms": host,
                "results": results,
            },
        )
        print(f"wrote {args.json}")
    return 0
