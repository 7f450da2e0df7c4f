"""`easyocc bench`: per-stage latency, throughput, CPU and memory of the streaming runtime, per backend.

For every backend given (side by side in one run): the backend alone (inference on one prepared
frame, repeated); the stages one frame at a time (`OccupancyRuntime.process`: each stage's own cost,
with nothing else competing for the cores); then the full pipeline (source -> preprocess -> infer ->
postprocess in threads) on the same frames. Warm-up frames are excluded; RSS is sampled at frame 200
and at the last frame. The host share (preprocess + postprocess over inference) comes from the
sequential pass: in the pipeline the stages overlap on the same cores, so each stage's wall time
there includes the others' load.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from easyocc.commands.stream import DEFAULT_MODEL, add_source_arguments, check_model
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.runtime.timing import ResourceSampler, now_s

RSS_EARLY_FRAME = 200


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


def percentiles(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"count": 0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "count": int(values.size),
        "mean": float(values.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(values.max()),
    }


def stage_percentiles(timings) -> dict:
    """{stage: percentiles} over an iterable of {stage: ms} dicts (one per frame)."""
    values: dict[str, list[float]] = {}
    for timing in timings:
        for stage, ms in timing.items():
            values.setdefault(stage, []).append(ms)
    return {stage: percentiles(series) for stage, series in values.items()}


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


def bench_backend(entry: dict, rig, frames_factory, frames: int, warmup: int, args) -> dict:
    """Backend alone, then the pipeline, for one backend; returns the JSON-ready record."""
    from easyocc.runtime.contract.manifest import INPUT_IMAGES
    from easyocc.runtime.occupancy import OccupancyRuntime
    from easyocc.runtime.pipeline import StreamPipeline

    model = check_model(entry["model"])
    runtime = OccupancyRuntime(
        model,
        rig=rig,
        backend=entry["name"],
        threads=entry["threads"],
        missing_camera=args.missing_camera,
        backend_options=entry["options"],
    )
    with runtime:
        # Backend alone: one real prepared frame, the tables bound once, inference repeated.
        prepared = runtime.prepare(next(iter(frames_factory(1))))
        images = prepared.images.copy()
        prepared.release()
        runtime.reset()
        runner = runtime.runner
        runtime.bind_tables(())
        alone = []
        alone_frames = args.backend_frames or min(frames, 200)
        for i in range(warmup + alone_frames):
            start = now_s()
            runner.infer({INPUT_IMAGES: images})
            if i >= warmup:
                alone.append(1e3 * (now_s() - start))
        alone_fps = 1e3 * len(alone) / sum(alone)

        # Stages one frame at a time: what each stage costs per frame.
        runtime.reset()
        timings = [runtime.process(frame).timing for frame in frames_factory(warmup + args.sequential_frames)]
        sequential = stage_percentiles(timings[warmup:])
        runtime.reset()

        # Pipeline over warm-up + N frames; statistics from the N after warm-up.
        sampler = ResourceSampler()
        rss = {}

        def on_record(record):
            published = len(pipeline.records)
            if published == warmup:
                sampler.sample("warm")
            if published == warmup + min(RSS_EARLY_FRAME, frames):
                rss["early"] = sampler.sample(f"frame {published - warmup}")

        pipeline = StreamPipeline(
            runtime, frames_factory(warmup + frames), live=False, on_record=on_record, keep_records=warmup + frames
        )
        report = pipeline.run()
        rss["end"] = sampler.sample(f"frame {report.frames_out - warmup}")
        records = report.records[warmup:]
        if len(records) < 2:
            raise EasyOccError(
                f"backend {entry['label']}: only {len(records)} frames came through; see the drop counters"
            )
        span = records[-1].published - records[0].published
        pipelined_fps = (len(records) - 1) / span if span > 0 else float("inf")
        stages = stage_percentiles(record.stages_ms() for record in records)
        host_ms = sequential["preprocess"]["p50"] + sequential["postprocess"]["p50"]
        pipelined_host_ms = stages["preprocess"]["p50"] + stages["postprocess"]["p50"]
        early, end = rss.get("early", rss["end"]), rss["end"]
        return {
            "backend": entry["label"],
            "runner": runtime.backend_name,
            "model": runtime.manifest.summary(),
            "backend_alone": {**percentiles(alone), "fps": alone_fps},
            "sequential": {"frames": args.sequential_frames, "stages_ms": sequential},
            "pipelined": {"fps": pipelined_fps, "frames": len(records), "stages_ms": stages},
            "pipelined_over_backend": pipelined_fps / alone_fps,
            "host_over_backend": host_ms / sequential["infer"]["p50"],
            "pipelined_host_over_backend": pipelined_host_ms / stages["infer"]["p50"],
            "cpu_percent": end["cpu_percent"],
            "peak_rss_mb": sampler.peak_rss_mb,
            "rss_mb": {early["label"]: early["rss_mb"], end["label"]: end["rss_mb"]},
            "rss_growth_percent": 100 * (end["rss_mb"] - early["rss_mb"]) / early["rss_mb"],
            "drops": report.drops,
        }


def format_table(results: list[dict]) -> str:
    """Side-by-side table, one column per backend."""
    labels = [r["backend"] for r in results]
    width = max(14, *(len(label) + 2 for label in labels))
    lines = [f"{'':<30}" + "".join(f"{label:>{width}}" for label in labels)]

    def row(name, values, fmt="{:.2f}"):
        lines.append(f"{name:<30}" + "".join(f"{fmt.format(v):>{width}}" for v in values))

    for key in ("p50", "p90", "p99", "max"):
        row(f"backend alone {key} ms", [r["backend_alone"][key] for r in results])
    row("backend alone frames/s", [r["backend_alone"]["fps"] for r in results])
    for mode in ("sequential", "pipelined"):
        for stage in ("preprocess", "infer", "postprocess", "end_to_end"):
            if all(stage in r[mode]["stages_ms"] for r in results):
                for key in ("p50", "p90", "p99", "max"):
                    row(f"{mode[:3]} {stage} {key} ms", [r[mode]["stages_ms"][stage][key] for r in results])
    row("pipelined frames/s", [r["pipelined"]["fps"] for r in results])
    row("pipelined / backend alone %", [100 * r["pipelined_over_backend"] for r in results], "{:.1f}")
    row("pre+post / infer, seq. p50 %", [100 * r["host_over_backend"] for r in results], "{:.1f}")
    row("pre+post / infer, pip. p50 %", [100 * r["pipelined_host_over_backend"] for r in results], "{:.1f}")
    row("CPU % (100 = 1 core)", [r["cpu_percent"] for r in results], "{:.0f}")
    row("peak RSS MB", [r["peak_rss_mb"] for r in results], "{:.1f}")
    row("RSS growth early->end %", [r["rss_growth_percent"] for r in results], "{:+.2f}")
    return "\n".join(lines)


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
    from easyocc.runtime.sources import NuScenesSource

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    counts = [
        ("--frames", args.frames, 2),
        ("--warmup", args.warmup, 0),
        ("--sequential-frames", args.sequential_frames, 1),
    ]
    if args.backend_frames is not None:
        counts.append(("--backend-frames", args.backend_frames, 1))
    for option, value, least in counts:
        if value < least:
            raise EasyOccError(f"{option} must be at least {least}, got {value}")
    if args.images:
        raise EasyOccError("bench reads --data or makes synthetic frames; --images is not supported here")
    specs = [parse_backend(spec, args.model) for spec in (args.backend or ["onnxruntime"])]
    if args.data:
        replay = NuScenesSource(args.data, args.scene, preload=True)
        rig = replay.rig
        per_loop = len(replay.samples)

        def frames_factory(count):
            replay.loops = -(-count // per_loop)
            return (frame for frame, _ in zip(replay, range(count)))

        source_name = f"{args.data} ({per_loop} frames, looped)"
    else:
        rig = load_rig(args.rig) if args.rig else default_rig()

        def frames_factory(count):
            return synthetic_frames(rig, count)

        source_name = f"synthetic textured JPEGs at {rig.cameras[0].width}x{rig.cameras[0].height}"
    results = [bench_backend(entry, rig, frames_factory, args.frames, args.warmup, args) for entry in specs]
    print(f"source: {source_name}; {args.frames} frames after {args.warmup} warm-up")
    print(format_table(results))
    if args.json:
        write_json_atomic(
            Path(args.json), {"source": source_name, "frames": args.frames, "warmup": args.warmup, "results": results}
        )
        print(f"wrote {args.json}")
    return 0
