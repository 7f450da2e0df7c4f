"""What `easyocc stream`, `bench` and `demo` configure: the runtime, the frame source, a stream run.

Config dataclasses of the one config system (`easyocc.runtime.contract.config`), and the functions
that turn them into a runtime, a source and a finished stream run; the commands only parse and print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from easyocc.runtime.contract.config import setting
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic

BACKEND_CHOICES = ("", "onnxruntime", "tensorrt", "torch")


def default_model() -> Path:
    """The bundled demo model (ONNX), shipped inside the package."""
    from easyocc.models import bundled_model

    return Path(bundled_model(".onnx"))


@dataclass(frozen=True)
class RuntimeConfig:
    """The model, its backend and the frame policy."""

    model: str = ""
    """Model file: ONNX (.onnx), TensorRT engine (.engine/.plan) or TorchScript (.ts); '' = the bundled model."""
    backend: str = setting("", choices=BACKEND_CHOICES)
    """onnxruntime, tensorrt or torch; '' = from the model's suffix."""
    threads: int | None = setting(None, min=1)
    """Backend intra-op threads (null = all cores)."""
    rig: str = ""
    """Rig YAML for image folders and synthetic frames ('' = the nuScenes rig)."""
    missing_camera: str = setting("drop", choices=("drop", "zero"))
    """Policy for a frame with an absent camera: drop the frame, or feed a zero image."""
    sync_tolerance_ms: float = setting(50.0, min=0.0)
    """Largest spread of camera stamps within one frame."""
    ahead_priority: str = setting("auto", choices=("auto", "low", "normal"))
    """Priority of the threads that preprocess a frame while the backend still runs an earlier one:
    low (nice 19), normal, or auto (low in a run that is not live, when the backend computes on the
    host's CPU)."""
    providers: tuple[str, ...] = ()
    """ONNX Runtime execution providers in order, e.g. [CUDAExecutionProvider, CPUExecutionProvider]
    (needs onnxruntime-gpu, the gpu extra); empty = TensorRT > CUDA > CPU among those installed."""


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from: a nuScenes-layout dataset or an image folder."""

    data: str = ""
    """nuScenes-layout dataset folder."""
    images: str = ""
    """Image folder with one sub-folder per camera (instead of data)."""
    scenes: tuple[str, ...] = ()
    """Scenes of data, in this order (empty = all scenes)."""
    paced: bool = False
    """Replay at the recorded timestamps, not as fast as possible."""
    speed: float = setting(1.0, above=0.0)
    """Replay speed factor when paced."""
    loops: int = setting(1, min=1)
    """Repeat the replay this many times (stamps keep rising)."""


@dataclass(frozen=True)
class StreamConfig:
    """One `easyocc stream` run."""

    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    """Model, backend and frame policy."""
    source: SourceConfig = field(default_factory=SourceConfig)
    """Frame source."""
    out: str = "stream_out"
    """Output folder: frames/ (npz per frame), predictions/, preview.png/.gif."""
    frames: int = setting(0, min=0)
    """Stop after this many frames (0 = all)."""
    npz: bool = True
    """Write an npz per frame."""
    save_predictions: bool = False
    """Also write out/predictions/<scene>/<sample_token>/labels.npz (scored by `easyocc eval --predictions`)."""
    live: bool = False
    """Newest-frame buffers: skip frames that come too fast."""
    record: str = ""
    """Also write an MCAP recording here (Foxglove schemas: cameras, cloud, BEV grid, transforms, latency)."""


def check_model(path) -> Path:
    """The model path ('' = the bundled model), refused with one line when the file is missing."""
    bundled = default_model()
    path = Path(path) if path else bundled
    if not path.is_file():
        hint = " (the bundled demo model; build it with `easyocc export` or pass --model)" if path == bundled else ""
        raise EasyOccError(f"model not found: {path}{hint}")
    return path


def load_rig_or_default(path: str):
    from easyocc.calibration import default_rig, load_rig

    return load_rig(path) if path else default_rig()


def open_source(source: SourceConfig, rig_file: str = "", camera_names=None, preload: bool = False):
    """(frame source, rig) for `source`: the dataset's own rig, or `rig_file` for an image folder."""
    from easyocc.runtime.sources import ImageFolderSource, NuScenesSource

    if source.data and source.images:
        raise EasyOccError("give one source: --data DATASET or --images FOLDER, not both")
    if source.data:
        frames = NuScenesSource(
            source.data,
            list(source.scenes) or None,
            paced=source.paced,
            speed=source.speed,
            loops=source.loops,
            preload=preload,
        )
        return frames, frames.rig
    if source.images:
        rig = load_rig_or_default(rig_file)
        return ImageFolderSource(source.images, camera_names or rig.names, paced=source.paced), rig
    raise EasyOccError("give a source: --data DATASET or --images FOLDER")


def open_runtime(config: RuntimeConfig, rig, buffers: int = 3, **options):
    """An OccupancyRuntime (not yet entered) for `config` on `rig`; `options` go to its constructor."""
    from easyocc.runtime.backends import backend_for_path
    from easyocc.runtime.occupancy import OccupancyRuntime

    model = check_model(config.model)
    backend = config.backend or backend_for_path(model)
    if config.providers:
        if backend != "onnxruntime":
            raise EasyOccError(f"runtime.providers are ONNX Runtime's; the backend is {backend}")
        backend_options = {**options.get("backend_options", {}), "providers": list(config.providers)}
        options = {**options, "backend_options": backend_options}
    return OccupancyRuntime(
        model,
        rig=rig,
        backend=backend,
        missing_camera=config.missing_camera,
        sync_tolerance_ms=config.sync_tolerance_ms,
        threads=config.threads,
        ahead_priority=config.ahead_priority,
        buffers=buffers,
        **options,
    )


def summary_dict(runtime, report) -> dict:
    return {
        "model": runtime.manifest.summary(),
        "backend": runtime.backend_name,
        "frames_in": report.frames_in,
        "frames_out": report.frames_out,
        "throughput_fps": round(report.throughput_fps, 3),
        "drops": report.drops,
        "degraded": runtime.degraded.as_dict(),
        "latency_ms": runtime.stats.summary(),
    }


def summary_text(runtime, report) -> str:
    """The latency table, the frame counts and the drops, as `easyocc stream` prints them."""
    lines = [f"{runtime.manifest.summary()}  [{runtime.backend_name}]", runtime.stats.table()]
    lines.append(f"frames: {report.frames_in} in, {report.frames_out} out, {report.throughput_fps:.2f} frames/s")
    if report.drops:
        lines.append("dropped: " + ", ".join(f"{reason} {count}" for reason, count in sorted(report.drops.items())))
    degraded = runtime.degraded.as_dict()
    if degraded["frames"]:
        cameras = ", ".join(f"{name} {count}" for name, count in degraded["cameras"].items())
        lines.append(f"degraded (published with zero-filled cameras): {degraded['frames']} frames ({cameras})")
    return "\n".join(lines)


@dataclass
class StreamOutcome:
    summary: dict
    """summary_dict of the run (also written to the JSON file when one is given)."""
    text: str
    """summary_text of the run."""
    written: list[Path]
    """Preview files."""


def run_stream(config: StreamConfig, json_path=None) -> StreamOutcome:
    """Stream the source through the runtime into the sinks; the summary, also written to `json_path`."""
    from easyocc.runtime.pipeline import StreamPipeline
    from easyocc.runtime.sinks import NpzSink, Occ3DSink, PreviewSink

    check_model(config.runtime.model)  # before reading any data
    source, rig = open_source(config.source, config.runtime.rig)
    out = Path(config.out)
    with open_runtime(config.runtime, rig) as runtime:
        sinks = [NpzSink(out / "frames")] if config.npz else []
        if config.save_predictions:
            sinks.append(Occ3DSink(out / "predictions"))
        preview = PreviewSink(out / "preview", every=1, max_frames=80)
        sinks.append(preview)
        if config.record:
            from easyocc.runtime.mcap_sink import McapSink

            sinks.append(McapSink(config.record, rig=rig))
        report = StreamPipeline(runtime, source, sinks, live=config.live, max_frames=config.frames or None).run()
        summary = summary_dict(runtime, report)
        text = summary_text(runtime, report)
    if json_path:
        write_json_atomic(json_path, summary)
    return StreamOutcome(summary, text, list(preview.written))


@dataclass(frozen=True)
class DemoConfig:
    """One `easyocc demo` run."""

    model: str = ""
    """ONNX model ('' = the bundled model)."""
    data: str = ""
    """nuScenes-layout dataset to stream ('' = generate a small synthetic scene in out/synthetic_scene)."""
    scene: str = ""
    """Scene of data ('' = the first)."""
    frames: int = setting(12, min=1)
    """Key frames to generate and stream."""
    out: str = "demo_out"
    """Output folder: preview.png/.gif (prediction beside the ground truth)."""
    threads: int | None = setting(None, min=1)
    """ONNX Runtime intra-op threads (null = all cores)."""
    missing_camera: str = setting("drop", choices=("drop", "zero"))
    """Policy for a frame with an absent or unreadable camera image: drop it (counted), or zero-fill it."""
