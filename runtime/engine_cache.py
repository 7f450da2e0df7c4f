"""The engine cache: names, sidecar manifests, and the decision to reuse a built engine or rebuild it.

An engine file `X.engine` has a sidecar `X.engine.json`: the model's manifest with its `engine` part
(TensorRT version, GPU compute capability, precision, quantization, ONNX sha256, DLA core) plus the engine file's
own sha256. A cached engine is reused only when every one of those matches what a build now would
produce; otherwise the caller rebuilds, or refuses with the list of differences. Pure Python: no
TensorRT needed, so all of it is tested on the CPU.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import sha256_file, write_bytes_atomic, write_json_atomic
from easyocc.runtime.contract.manifest import EngineInfo, Manifest

PRECISIONS = ("fp32", "fp16", "int8")
SIDECAR_SUFFIX = ".json"
ENGINE_FILE_KEY = "engine_file_sha256"

# Field of EngineInfo -> how a difference is named in messages.
_FIELD_LABELS = {
    "tensorrt_version": "TensorRT version",
    "compute_capability": "GPU compute capability",
    "precision": "precision",
    "onnx_sha256": "ONNX model (sha256)",
    "dla_core": "DLA core",
    "quantization": "quantization",
}


def check_precision(precision: str, quantization: str = "") -> str:
    """Raise unless `precision` is known, and int8 for an explicitly quantized (Q/DQ) model: TensorRT
    refuses Q/DQ layers without its INT8 flag."""
    if precision not in PRECISIONS:
        raise EasyOccError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    if quantization and precision != "int8":
        raise EasyOccError(
            f"the ONNX model is explicitly quantized ({quantization}): build it with --precision int8, not {precision}"
        )
    return precision


def sidecar_path(engine_path) -> Path:
    """`model.fp16.engine` -> `model.fp16.engine.json`."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + SIDECAR_SUFFIX)


def default_engine_path(onnx_path, info: EngineInfo, folder=None) -> Path:
    """Cache name that spells out what the engine is bound to, e.g. `easyocc.fp16.sm87.trt8.6.2.engine`,
    `easyocc.int8.sm87.trt10.3.0.dla0.engine` (calibrated by TensorRT) or `easyocc.int8-qdq.sm87.trt10.3.0.engine`
    (explicitly quantized ONNX: the quantization scheme replaces the precision)."""
    onnx_path = Path(onnx_path)
    capability = info.compute_capability.replace(".", "")
    dla = f".dla{info.dla_core}" if info.dla_core >= 0 else ""
    precision = info.quantization or info.precision
    name = f"{onnx_path.stem}.{precision}.sm{capability}.trt{info.tensorrt_version}{dla}.engine"
    return Path(folder or onnx_path.parent) / name


def engine_differences(expected: EngineInfo, found: EngineInfo) -> list[str]:
    """'TensorRT version: engine 8.5.2 != now 8.6.2' for each field that differs."""
    mine, theirs = asdict(expected), asdict(found)
    return [
        f"{_FIELD_LABELS.get(key, key)}: engine {_short(key, theirs.get(key))} != now {_short(key, value)}"
        for key, value in mine.items()
        if theirs.get(key) != value
    ]


def _short(key: str, value):
    if value == "":
        return "none"
    return value[:12] if key == "onnx_sha256" and isinstance(value, str) else value


@dataclass
class CacheDecision:
    """reuse: the cached engine may be used as is; reasons: why not (empty when reuse)."""

    engine_path: Path
    reuse: bool
    reasons: list[str] = field(default_factory=list)

    def message(self) -> str:
        if self.reuse:
            return f"reusing cached engine {self.engine_path} (TensorRT, GPU, precision and ONNX hash match)"
        return f"cached engine {self.engine_path} cannot be reused: {'; '.join(self.reasons)}"


def check_cached_engine(engine_path, expected: EngineInfo) -> CacheDecision:
    """Whether `engine_path` exists, is intact and was built for exactly `expected`."""
    engine_path = Path(engine_path)
    sidecar = sidecar_path(engine_path)
    if not engine_path.is_file():
        return CacheDecision(engine_path, False, ["no engine file"])
    if not sidecar.is_file():
        return CacheDecision(engine_path, False, [f"no sidecar manifest {sidecar.name}"])
    try:
        data = json.loads(sidecar.read_text())
        manifest = Manifest.from_dict(data)
    except (OSError, json.JSONDecodeError, EasyOccError) as exc:
        return CacheDecision(engine_path, False, [f"sidecar manifest unreadable ({exc})"])
    if manifest.engine is None:
        return CacheDecision(engine_path, False, ["sidecar manifest has no engine section"])
    reasons = engine_differences(expected, manifest.engine)
    if not reasons and data.get(ENGINE_FILE_KEY) != sha256_file(engine_path):
        reasons.append("engine file does not match the sha256 in its sidecar (replaced or truncated)")
    return CacheDecision(engine_path, not reasons, reasons)


def read_engine_manifest(engine_path) -> Manifest:
    """The sidecar manifest of an engine (raises naming the file when absent or malformed)."""
    sidecar = sidecar_path(engine_path)
    if not sidecar.is_file():
        raise EasyOccError(f"engine {engine_path} has no sidecar manifest {sidecar.name}")
    manifest = Manifest.from_json(sidecar.read_text())
    if manifest.engine is None:
        raise EasyOccError(f"sidecar manifest {sidecar} has no engine section")
    return manifest


def write_engine(engine_path, engine_bytes: bytes, manifest: Manifest, info: EngineInfo) -> Path:
    """Write the engine, then its sidecar, each atomically. The sidecar goes last and records the
    engine's sha256, so a sidecar never vouches for a partial or foreign engine file."""
    if not engine_bytes:
        raise EasyOccError(f"refusing to write an empty engine to {engine_path}")
    engine_path = Path(engine_path)
    write_bytes_atomic(engine_path, bytes(engine_bytes))
    data = manifest.with_engine(info).to_dict()
    data[ENGINE_FILE_KEY] = sha256_file(engine_path)
    write_json_atomic(sidecar_path(engine_path), data)
    return engine_path


def resolve_cache(engine_path, expected: EngineInfo, rebuild: str) -> CacheDecision:
    """Apply the rebuild policy: 'auto' (rebuild when stale), 'never' (refuse when stale), 'always'.

    Returns the decision; raises EasyOccError for 'never' with a stale or missing engine, naming
    every difference.
    """
    if rebuild not in ("auto", "never", "always"):
        raise EasyOccError(f"rebuild policy '{rebuild}' is not auto, never or always")
    decision = check_cached_engine(engine_path, expected)
    if rebuild == "always":
        return CacheDecision(decision.engine_path, False, ["rebuild requested"])
    if rebuild == "never" and not decision.reuse:
        raise EasyOccError(f"{decision.message()}; not rebuilding (--no-rebuild)")
    return decision


def expected_engine_info(
    tensorrt_version: str,
    compute_capability: str,
    precision: str,
    onnx_sha256: str,
    dla_core: int = -1,
    quantization: str = "",
) -> EngineInfo:
    """The EngineInfo a build now would record (validates precision and capability format).

    quantization: the scheme of an explicitly quantized (Q/DQ) ONNX model ('int8-qdq'), '' for a float
    model; a Q/DQ model builds only as precision 'int8' (TensorRT needs the INT8 flag for Q/DQ layers).
    """
    check_precision(precision, quantization)
    parts = str(compute_capability).split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise EasyOccError(f"compute capability '{compute_capability}' is not MAJOR.MINOR (e.g. 8.7 for Orin)")
    return EngineInfo(
        tensorrt_version=str(tensorrt_version),
        compute_capability=str(compute_capability),
        precision=precision,
        onnx_sha256=onnx_sha256,
        dla_core=int(dla_core),
        quantization=str(quantization),
    )
