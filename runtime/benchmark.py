"""The benchmark behind `easyocc bench`: per-stage latency, live latency, throughput, CPU and memory.

For every backend (side by side in one run), on the same frames:
1. backend alone: inference on one prepared frame, repeated;
2. one frame at a time (`OccupancyRuntime.process`): each stage's own cost with nothing competing;
   the host share (preprocess + postprocess over inference) comes from here;
3. live (only with a paced source): the pipeline with newest-frame buffers, fed at the recording's
   rate; its end-to-end latency (frame arrival at its capture stamp -> result published) is the
   latency a car sees, and frames it could not take in time are counted as superseded;
4. throughput: the pipeline with blocking buffers, frames as fast as possible; frames/s is the
   number, and its end-to-end time is queueing (a frame waits behind the full buffers), reported
   under its own key, never as latency.
Plus the host cost of preparing one frame's six real images at the deployment size, with and
without reduced-size JPEG decoding (`host_preprocess_ms`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from easyocc.runtime.contract import config as config_system
from easyocc.runtime.contract.config import setting
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import FrameError
from easyocc.runtime.timing import ResourceSampler, now_s

RSS_EARLY_FRAME = 200
# backend-spec keys that configure the runtime, not the runner
RUNTIME_SPEC_KEYS = ("decoder", "reduced_decode", "ahead_priority")
DEPLOYMENT_SIZE = (704, 256)  # (width, height) of the deployed model's images (design.md)


@dataclass(frozen=True)
class BenchOptions:
    """How much of each pass to run."""

    frames: int = setting(200, min=2)
    """Measured frames of each pipelined run (2000 for the RSS check)."""
    warmup: int = setting(10, min=0)
    """Frames excluded from the statistics."""
    backend_frames: int | None = setting(None, min=1)
    """Backend-alone iterations (null = min(frames, 200))."""
    sequential_frames: int = setting(30, min=1)
    """Frames run one at a time for each stage's own cost."""
    live: bool = False
    """Also run the pipeline live at the source's own pace (paced sources)."""
    missing_camera: str = setting("drop", choices=("drop", "zero"))
    """Frame policy for an absent camera."""
    host_repeats: int = setting(10, min=1)
    """Repetitions of the host preprocessing table."""

    def check(self) -> None:
        config_system.check(self)


def percentiles(values) -> dict:
    """{'count', 'mean', 'p50', 'p90', 'p99', 'max'} of a series (ms); {'count': 0} when empty."""
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


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (/proc/loadavg): how busy the shared machine was."""
    return [round(v, 2) for v in os.getloadavg()]


def host_preprocess_ms(rig, frame, sizes=(DEPLOYMENT_SIZE,), repeats: int = 10) -> dict:
    """Host ms to decode + resize one frame's images into a model input, per size, with and without
    reduced-size JPEG decoding, cameras in parallel (the runtime's CameraPreprocessor); and to copy
    the same images, decoded, at camera resolution (raw frames for a model with the in-graph resize).

    {'WxH': {'reduced': percentiles, 'full': percentiles, 'reduction': factor},
     'WcxHc raw copy (in-graph resize)': {'copy': percentiles}}; `frame` holds encoded images (JPEG
    bytes) for every camera of `rig`.
    """
    from easyocc.runtime.contract.preprocess import CameraPreprocessor

    present = {i: frame.images[camera.name] for i, camera in enumerate(rig)}
    table = {}
    for width, height in sizes:
        out = np.zeros((len(rig), height, width, 3), np.uint8)
        row = {}
        for key, reduced in (("reduced", True), ("full", False)):
            pre = CameraPreprocessor(rig, (width, height), reduced_decode=reduced)
            try:
                series = []
                for i in range(repeats + 1):
                    start = now_s()
                    pre.run(present, (), out)
                    if i:  # the first run starts the thread pool
                        series.append(1e3 * (now_s() - start))
            finally:
                pre.close()
            row[key] = percentiles(series)
            if reduced:
                row["reduction"] = max(pre.reductions)
        table[f"{width}x{height}"] = row
    # A model that resizes in its graph, fed raw camera frames: the host only copies them into its input.
    from easyocc.runtime.contract.frames import CameraImage
    from easyocc.runtime.contract.preprocess import decode_image

    camera_size = (rig.cameras[0].width, rig.cameras[0].height)
    if all((c.width, c.height) == camera_size for c in rig):
        raw = {
            i: CameraImage(image.camera, image.stamp_us, image=decode_image(image.data)) for i, image in present.items()
        }
        out = np.zeros((len(rig), camera_size[1], camera_size[0], 3), np.uint8)
        pre = CameraPreprocessor(rig, camera_size)
        try:
            series = []
            for i in range(repeats + 1):
                start = now_s()
                pre.run(raw, (), out)
                if i:
                    series.append(1e3 * (now_s() - start))
        finally:
            pre.close()
        table[f"{camera_size[0]}x{camera_size[1]} raw copy (in-graph resize)"] = {"copy": percentiles(series)}
    return table


def _pipeline_run(runtime, frames, live: bool, warmup: int, count: int, on_record=None):
    """(report, records after warm-up) of one StreamPipeline run; report.drops counts this run's only."""
    from easyocc.runtime.pipeline import StreamPipeline

    before = runtime.drops.as_dict()
    pipeline = StreamPipeline(runtime, frames, live=live, on_record=on_record, keep_records=warmup + count)
    report = pipeline.run()
    drops = {reason: n - before.get(reason, 0) for reason, n in report.drops.items()}
    report.drops = {reason: n for reason, n in drops.items() if n}
    return report, report.records[warmup:]


def bench_backend(entry: dict, rig, frames_factory, options: BenchOptions, live_factory=None) -> dict:
    """Backend alone, one frame at a time, live (when `live_factory` is given), throughput: one backend's
    JSON-ready record. entry: {label, name, model, threads, options} (parse_backend);
    frames_factory(count) -> iterable of FrameSet as fast as possible; live_factory(count) -> the same
    frames paced at the recording's rate."""
    from easyocc.runtime.contract.manifest import INPUT_IMAGES
    from easyocc.runtime.occupancy import OccupancyRuntime

    warmup, frames = options.warmup, options.frames
    backend_options = dict(entry["options"])
    # runtime options in a backend spec: decoder=cpu|nvimgcodec, reduced_decode=true|false,
    # ahead_priority=auto|low|normal
    runtime_options = {key: backend_options.pop(key) for key in RUNTIME_SPEC_KEYS if key in backend_options}
    runtime = OccupancyRuntime(
        entry["model"],
        rig=rig,
        backend=entry["name"],
        threads=entry["threads"],
        missing_camera=options.missing_camera,
        backend_options=backend_options,
        **runtime_options,
    )
    with runtime:
        # Backend alone: one real prepared frame, the tables bound once, inference repeated. Bad frames
        # are counted in runtime.drops and skipped, here as in every pass below.
        prepared = _first_prepared(runtime, frames_factory(warmup + options.sequential_frames))
        images = prepared.images.copy()
        prepared.release()
        runtime.reset()
        runtime.bind_tables(())
        alone_count = options.backend_frames or min(frames, 200)

        def backend_alone(runs: int) -> list[float]:
            """ms of `runs` inferences of the prepared frame after `warmup` unmeasured ones."""
            runtime.bind_tables(())
            samples = []
            for i in range(warmup + runs):
                start = now_s()
                runtime.runner.infer({INPUT_IMAGES: images})
                if i >= warmup:
                    samples.append(1e3 * (now_s() - start))
            return samples

        alone = backend_alone(alone_count)

        # One frame at a time: what each stage costs per frame.
        runtime.reset()
        timings = []
        for frame in frames_factory(warmup + options.sequential_frames):
            try:
                timings.append(runtime.process(frame).timing)
            except FrameError:
                continue  # counted in runtime.drops
        if len(timings) <= warmup:
            raise EasyOccError(
                f"backend {entry['label']}: only {len(timings)} frames came through; drops {_drops(runtime)}"
            )
        sequential = stage_percentiles(timings[warmup:])

        live = None
        if live_factory is not None:
            runtime.reset()
            report, records = _pipeline_run(runtime, live_factory(warmup + frames), True, warmup, frames)
            span = records[-1].published - records[0].published if len(records) > 1 else 0.0
            stages = stage_percentiles(r.stages_ms() for r in records)
            live = {
                "frames_in": report.frames_in - warmup,
                "frames": len(records),
                "fps": (len(records) - 1) / span if span > 0 else 0.0,
                "superseded": report.drops.get("superseded", 0),
                "latency_ms": stages.pop("end_to_end", {"count": 0}),
                "stages_ms": stages,
            }
            live["latency_over_sequential"] = (
                live["latency_ms"].get("p50", float("nan")) / sequential["end_to_end"]["p50"]
            )

        # Throughput: as fast as possible, blocking buffers, warm-up + N frames.
        runtime.reset()
        sampler = ResourceSampler()
        rss = {}
        published = [0]

        def on_record(record):
            published[0] += 1
            if published[0] == warmup:
                sampler.sample("warm")
            if published[0] == warmup + min(RSS_EARLY_FRAME, frames):
                rss["early"] = sampler.sample(f"frame {published[0] - warmup}")

        ahead_before = runtime.prepared_ahead
        report, records = _pipeline_run(runtime, frames_factory(warmup + frames), False, warmup, frames, on_record)
        prepared_ahead = runtime.prepared_ahead - ahead_before
        rss["end"] = sampler.sample(f"frame {report.frames_out - warmup}")
        if len(records) < 2:
            raise EasyOccError(
                f"backend {entry['label']}: only {len(records)} frames came through; drops {_drops(runtime)}"
            )
        span = records[-1].published - records[0].published
        pipelined_fps = (len(records) - 1) / span if span > 0 else float("inf")
        # The backend alone again, right after the throughput run: the ratio below compares the
        # pipeline with the backend timed on both sides of it, so that the machine's drift over the
        # minute between the two (on the 2-core development VM, 107-126 ms p50 from run to run)
        # does not decide it. The first series alone stays in backend_alone.first.
        alone_after = backend_alone(alone_count)
        alone_fps = 1e3 * (len(alone) + len(alone_after)) / (sum(alone) + sum(alone_after))
        first_fps = 1e3 * len(alone) / sum(alone)
        stages = stage_percentiles(record.stages_ms() for record in records)
        queueing = stages.pop("end_to_end")
        host_ms = sequential["preprocess"]["p50"] + sequential["postprocess"]["p50"]
        pipelined_host_ms = stages["preprocess"]["p50"] + stages["postprocess"]["p50"]
        early, end = rss.get("early", rss["end"]), rss["end"]
        return {
            "backend": entry["label"],
            "runner": runtime.backend_name,
            "model": runtime.manifest.summary(),
            "input_size": list(runtime.manifest.input_size),
            "backend_alone": {
                **percentiles(alone + alone_after),
                "fps": alone_fps,
                "first": {**percentiles(alone), "fps": first_fps},
                "after_throughput": {**percentiles(alone_after), "fps": 1e3 * len(alone_after) / sum(alone_after)},
            },
            "sequential": {
                "frames": options.sequential_frames,
                "stages_ms": sequential,
                # every measured frame, in order: the latency plot's timeline
                "per_frame_ms": {stage: [round(float(t[stage]), 3) for t in timings[warmup:]] for stage in sequential},
            },
            "live": live,
            "pipelined": {
                "fps": pipelined_fps,
                "frames": len(records),
                "stages_ms": stages,
                "queueing_end_to_end_ms": queueing,
                # frames preprocessed while an earlier one held the backend, warm-up included, and whether
                # those ran on the low-priority lanes (ahead_priority)
                "prepared_ahead": prepared_ahead,
                "ahead_low_priority": runtime.low_priority_ahead(live=False),
            },
            "pipelined_over_backend": pipelined_fps / alone_fps,
            "pipelined_over_backend_first": pipelined_fps / first_fps,
            "host_over_backend": host_ms / sequential["infer"]["p50"],
            "pipelined_host_over_backend": pipelined_host_ms / stages["infer"]["p50"],
            "cpu_percent": end["cpu_percent"],
            "peak_rss_mb": sampler.peak_rss_mb,
            "rss_mb": {early["label"]: early["rss_mb"], end["label"]: end["rss_mb"]},
            "rss_growth_percent": 100 * (end["rss_mb"] - early["rss_mb"]) / early["rss_mb"],
            "drops": report.drops,
            "drops_all_passes": runtime.drops.as_dict(),
            "degraded": runtime.degraded.as_dict(),
        }


def _drops(runtime) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(runtime.drops.as_dict().items())) or "none"


def _first_prepared(runtime, frames):
    """The first frame of `frames` that prepares (bad ones are counted in runtime.drops)."""
    for frame in frames:
        try:
            return runtime.prepare(frame)
        except FrameError:
            continue
    raise EasyOccError(f"no frame of the source could be prepared; drops {_drops(runtime)}")


def format_table(results: list[dict], host: dict | None = None) -> str:
    """Side-by-side table, one column per backend; the host preprocessing table below it."""
    labels = [r["backend"] for r in results]
    width = max(14, *(len(label) + 2 for label in labels))
    lines = [f"{'':<34}" + "".join(f"{label:>{width}}" for label in labels)]

    def row(name, values, fmt="{:.2f}"):
        lines.append(f"{name:<34}" + "".join(f"{fmt.format(v):>{width}}" for v in values))

    for key in ("p50", "p90", "p99", "max"):
        row(f"backend alone {key} ms", [r["backend_alone"][key] for r in results])
    row("backend alone frames/s", [r["backend_alone"]["fps"] for r in results])
    for stage in ("preprocess", "infer", "postprocess", "end_to_end"):
        for key in ("p50", "p90", "p99", "max"):
            row(f"one-at-a-time {stage} {key} ms", [r["sequential"]["stages_ms"][stage][key] for r in results])
    if all(r["live"] for r in results):
        for key in ("p50", "p90", "p99", "max"):
            row(f"live latency {key} ms", [r["live"]["latency_ms"].get(key, float("nan")) for r in results])
        row("live latency p50 / one-at-a-time", [r["live"]["latency_over_sequential"] for r in results])
        row("live frames published / in", [r["live"]["frames"] for r in results], "{:.0f}")
        row("live superseded", [r["live"]["superseded"] for r in results], "{:.0f}")
    row("pipelined frames/s (throughput)", [r["pipelined"]["fps"] for r in results])
    row("pipelined / backend alone %", [100 * r["pipelined_over_backend"] for r in results], "{:.1f}")
    row("pipelined queueing p50 ms", [r["pipelined"]["queueing_end_to_end_ms"]["p50"] for r in results], "{:.0f}")
    row("pre+post / infer, one-at-a-time %", [100 * r["host_over_backend"] for r in results], "{:.1f}")
    row("pre+post / infer, pipelined %", [100 * r["pipelined_host_over_backend"] for r in results], "{:.1f}")
    row("CPU % (100 = 1 core)", [r["cpu_percent"] for r in results], "{:.0f}")
    row("peak RSS MB", [r["peak_rss_mb"] for r in results], "{:.1f}")
    row("RSS growth early->end %", [r["rss_growth_percent"] for r in results], "{:+.2f}")
    row("dropped frames, all passes", [sum(r.get("drops_all_passes", {}).values()) for r in results], "{:.0f}")
    row("degraded frames (zero-filled)", [r.get("degraded", {}).get("frames", 0) for r in results], "{:.0f}")
    for r in results:
        if r.get("drops_all_passes"):
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["drops_all_passes"].items()))
            lines.append(f"  {r['backend']} dropped: {reasons}")
    if host:
        lines.append("host decode + resize of one frame's images (ms, cameras in parallel): p50 / p99")
        for size, entry in host.items():
            if "copy" in entry:
                lines.append(f"  {size:<40} {entry['copy']['p50']:8.2f} / {entry['copy']['p99']:.2f}")
                continue
            for key in ("reduced", "full"):
                label = f"{key} (1/{entry['reduction']})" if key == "reduced" else "full-size decode"
                lines.append(f"  {size} {label:<18} {entry[key]['p50']:8.2f} / {entry[key]['p99']:.2f}")
    return "\n".join(lines)
