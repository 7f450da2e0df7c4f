"""A whole `easyocc bench` run from its config: the frames (a dataset replay or synthetic JPEGs), each
backend measured by easyocc.runtime.benchmark, the host preprocessing table and the machine's load.

Backends are `name[:key=value,...]` specs (`onnxruntime:threads=1`, `torch:model=m.ts,device=cpu`),
each read into a BackendSpec by the one config loader: `model` and `threads` are its fields, any other
key goes to the runner's constructor (`options.<key>`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from easyocc.runtime.benchmark import (
    DEPLOYMENT_SIZE,
    BenchOptions,
    bench_backend,
    host_preprocess_ms,
    load_average,
)
from easyocc.runtime.contract import config as config_system
from easyocc.runtime.contract.config import setting
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.streaming import BACKEND_CHOICES, SourceConfig, check_model, load_rig_or_default


@dataclass(frozen=True)
class BackendSpec:
    """One backend to measure."""

    name: str = setting("onnxruntime", choices=BACKEND_CHOICES[1:])
    """onnxruntime, tensorrt or torch."""
    model: str = ""
    """Its model file ('' = the bench's model)."""
    threads: int | None = setting(None, min=1)
    """Intra-op threads (null = all cores)."""
    options: dict = field(default_factory=dict)
    """Further keyword arguments of the runner (e.g. device=cpu for torch)."""


def parse_backend(spec: str) -> BackendSpec:
    """'onnxruntime', 'onnxruntime:threads=1', 'torch:model=m.ts,device=cpu' -> BackendSpec (one-line errors)."""
    name, _, rest = spec.partition(":")
    overrides = [f"name={name}"]
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise EasyOccError(f"backend spec '{spec}': expected key=value, got '{item}'")
        known = key in ("model", "threads")
        overrides.append(f"{key}={value}" if known else f"options.{key}={value}")
    try:
        return config_system.load(BackendSpec, overrides=overrides)
    except EasyOccError as exc:
        raise EasyOccError(f"backend spec '{spec}': {exc}") from None


@dataclass(frozen=True)
class BenchConfig:
    """One `easyocc bench` run."""

    model: str = ""
    """Model of the backends that name none ('' = the bundled model)."""
    backends: tuple[str, ...] = ("onnxruntime",)
    """Backend specs, measured side by side: name[:model=M,threads=N,<runner option>=V]."""
    rig: str = ""
    """Rig YAML of the synthetic frames ('' = the nuScenes rig); a dataset brings its own."""
    source: SourceConfig = field(default_factory=SourceConfig)
    """Frames: a dataset replay (source.data; looped, preloaded) or, without one, synthetic JPEGs."""
    options: BenchOptions = field(default_factory=BenchOptions)
    """Frames per pass."""


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


def _frames(config: BenchConfig):
    """(rig, frames_factory(count, paced) -> iterable of FrameSet, source description)."""
    from easyocc.runtime.sources import IterableSource, NuScenesSource

    source = config.source
    if source.images:
        raise EasyOccError("bench reads --data or makes synthetic frames; --images is not supported here")
    if source.data:
        replay = NuScenesSource(source.data, list(source.scenes) or None, preload=True)
        per_loop = len(replay.samples)

        def frames_factory(count, paced=False):
            replay.loops, replay.paced, replay.speed = -(-count // per_loop), paced, source.speed
            return (frame for frame, _ in zip(replay, range(count)))

        return replay.rig, frames_factory, f"{source.data} ({per_loop} frames, looped)"
    rig = load_rig_or_default(config.rig)

    def synthetic_factory(count, paced=False):
        return IterableSource(synthetic_frames(rig, count), paced=paced)

    return rig, synthetic_factory, f"synthetic textured JPEGs at {rig.cameras[0].width}x{rig.cameras[0].height}"


def run_bench(config: BenchConfig) -> dict:
    """Every backend of `config` on the same frames: the JSON-ready report (format_table prints it)."""
    options = config.options
    entries = []
    for text in config.backends:
        spec = parse_backend(text)
        model = check_model(spec.model or config.model)
        entries.append(
            {"label": text, "name": spec.name, "model": model, "threads": spec.threads, "options": spec.options}
        )
    rig, frames_factory, source_name = _frames(config)
    live = options.live or config.source.paced
    live_factory = (lambda count: frames_factory(count, paced=True)) if live else None
    load_before = load_average()
    results = [bench_backend(entry, rig, frames_factory, options, live_factory) for entry in entries]
    sizes = dict.fromkeys([DEPLOYMENT_SIZE, *(tuple(r["input_size"]) for r in results)])
    whole = next((f for f in frames_factory(options.frames) if all(c.name in f.images for c in rig)), None)
    host = host_preprocess_ms(rig, whole, sizes, repeats=options.host_repeats) if whole else {}
    return {
        "source": source_name,
        "frames": options.frames,
        "warmup": options.warmup,
        "paced": live,
        "speed": config.source.speed,
        "load_average": {"before": load_before, "after": load_average(), "cpu_count": os.cpu_count()},
        "host_preprocess_ms": host,
        "results": results,
    }
