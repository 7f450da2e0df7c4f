"""Engine management on configure, as Isaac ROS and Autoware do it: the node names an ONNX model
(`model_file_path`) and an engine path (`engine_file_path`, or a name in a cache folder), and gets an
engine that runs here, built on first launch when needed.

`decide_engine` is the pure decision (tested on the CPU): build when the engine is missing, was built
for another TensorRT version, GPU or precision, its ONNX changed (sha256 in its sidecar), or the user
forces it; reuse when its sidecar matches; check what the engine reports when it has no sidecar (built
by trtexec: `engine_check`). `ensure_engine` carries it out with TensorRT (imported here, lazily): the
build runs `easyocc export engine` in a child process (the node never imports export/), with a timing
cache in the cache folder, which writes the engine and its sidecar manifest; a trtexec engine is
deserialised, checked against the ONNX manifest, and gets a sidecar recording what it reported.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import sha256_file, write_json_atomic
from easyocc.runtime.contract.manifest import Manifest
from easyocc.runtime.engine_cache import (
    ENGINE_FILE_KEY,
    check_cached_engine,
    default_engine_path,
    expected_engine_info,
    sidecar_path,
)

REUSE, BUILD, CHECK_REPORT = "reuse", "build", "check_report"
FOREIGN_PRECISION = "unknown"  # the precision recorded for an engine built outside EasyOcc
TIMING_CACHE_NAME = "timing.cache"


@dataclass(frozen=True)
class EngineRequest:
    """What the node's parameters ask for."""

    model_file_path: str = ""
    """ONNX model the engine is built from ('' = use engine_file_path as it is)."""
    engine_file_path: str = ""
    """Engine to use or write ('' = a name in cache_dir spelling out TensorRT, GPU and precision)."""
    cache_dir: str = ""
    """Folder of generated engines and the timing cache ('' = beside the ONNX model)."""
    precision: str = "fp16"
    force: bool = False
    """Rebuild even when the engine matches (force_engine_update)."""


@dataclass
class EngineDecision:
    action: str
    """reuse, build or check_report (no sidecar: check what the deserialised engine reports)."""
    engine_path: Path
    reasons: list[str] = field(default_factory=list)

    def message(self) -> str:
        why = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return {
            REUSE: f"engine {self.engine_path}: reusing it (TensorRT, GPU, precision and ONNX hash match)",
            BUILD: f"engine {self.engine_path}: building it from the ONNX model{why}",
            CHECK_REPORT: f"engine {self.engine_path}: no sidecar manifest, checking what the engine reports{why}",
        }[self.action]


def onnx_manifest(onnx_path) -> Manifest:
    """The EasyOcc manifest in an ONNX model's metadata, read by ONNX Runtime (no onnx package needed)."""
    import onnxruntime as ort
    from easyocc.runtime.backends.onnxruntime_runner import manifest_from_metadata

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return manifest_from_metadata(session.get_modelmeta().custom_metadata_map, str(onnx_path))


def decide_engine(
    request: EngineRequest, tensorrt_version: str, compute_capability: str, manifest: Manifest | None = None
) -> EngineDecision:
    """What to do with the engine on configure (see the module docstring); raises EasyOccError when
    nothing can run: no engine and no ONNX to build it from, or a stale engine without its ONNX."""
    engine = Path(request.engine_file_path).expanduser() if request.engine_file_path else None
    if not request.model_file_path:
        if engine is None:
            raise EasyOccError("give model_file_path (ONNX) or engine_file_path (TensorRT engine)")
        if not engine.is_file():
            raise EasyOccError(f"engine_file_path {engine} does not exist, and no model_file_path to build it from")
        if not sidecar_path(engine).is_file():
            return EngineDecision(CHECK_REPORT, engine, ["and no model_file_path: I/O checked against nothing"])
        return EngineDecision(REUSE, engine)  # the runner checks TensorRT and GPU against the sidecar
    onnx = Path(request.model_file_path).expanduser()
    if not onnx.is_file():
        raise EasyOccError(f"model_file_path {onnx} does not exist")
    quantization = manifest.quantization.scheme if manifest is not None and manifest.quantization else ""
    info = expected_engine_info(
        tensorrt_version, compute_capability, request.precision, sha256_file(onnx), quantization=quantization
    )
    if engine is None:
        engine = default_engine_path(onnx, info, Path(request.cache_dir).expanduser() if request.cache_dir else None)
    if request.force:
        return EngineDecision(BUILD, engine, ["force_engine_update is set"])
    if engine.is_file() and not sidecar_path(engine).is_file():
        return EngineDecision(CHECK_REPORT, engine, ["built outside EasyOcc (e.g. trtexec)"])
    if _recorded_foreign(engine):  # a trtexec engine checked before: its precision is unknown, the rest counts
        info = dataclasses.replace(info, precision=FOREIGN_PRECISION)
    cached = check_cached_engine(engine, info)
    return EngineDecision(REUSE, engine) if cached.reuse else EngineDecision(BUILD, engine, cached.reasons)


def _recorded_foreign(engine: Path) -> bool:
    try:
        data = json.loads(sidecar_path(engine).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data.get("engine"), dict) and data["engine"].get("precision") == FOREIGN_PRECISION


def build_command(request: EngineRequest, engine_path: Path) -> list[str]:
    """The child process that builds the engine and writes its sidecar (`easyocc export engine`)."""
    cache = Path(request.cache_dir).expanduser() if request.cache_dir else engine_path.parent
    return [
        sys.executable,
        "-m",
        "easyocc",
        "export",
        "engine",
        "--model",
        str(Path(request.model_file_path).expanduser()),
        "--out",
        str(engine_path),
        "--precision",
        request.precision,
        "--timing-cache",
        str(cache / TIMING_CACHE_NAME),
        "--force-rebuild",
        "--verify-frames",
        "0",
    ]


def ensure_engine(request: EngineRequest, log=print) -> Path:
    """Decide with the installed TensorRT and GPU, build or check as decided; the engine path to run."""
    from easyocc.runtime.backends.tensorrt_runner import tensorrt_api

    try:
        import pycuda.driver as cuda
        import tensorrt as trt
    except ImportError as exc:
        raise EasyOccError(
            f"engine management needs '{exc.name}' (JetPack's python3-libnvinfer, or easyocc[trt])"
        ) from None
    cuda.init()
    capability = "{}.{}".format(*cuda.Device(0).compute_capability())
    manifest = onnx_manifest(request.model_file_path) if request.model_file_path else None
    decision = decide_engine(request, trt.__version__, capability, manifest)
    log(decision.message())
    if decision.action == BUILD:
        decision.engine_path.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(build_command(request, decision.engine_path), capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EasyOccError(f"building {decision.engine_path} failed: {last[0]}")
    elif decision.action == CHECK_REPORT:
        from easyocc.runtime.backends.tensorrt_runner import BINDINGS_API, _io_bindings, _io_tensors
        from easyocc.runtime.engine_check import EngineReport, check_engine_report

        engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(decision.engine_path.read_bytes())
        if engine is None:  # another TensorRT version or GPU: TensorRT refuses to deserialise it
            raise EasyOccError(f"engine {decision.engine_path}: TensorRT {trt.__version__} could not deserialise it")
        io = _io_bindings(engine, trt) if tensorrt_api(trt.__version__) == BINDINGS_API else _io_tensors(engine, trt)
        if manifest is None:
            raise EasyOccError(
                f"engine {decision.engine_path} has no sidecar manifest; give model_file_path to check it"
            )
        report = EngineReport(trt.__version__, capability, io)
        used, warnings = check_engine_report(report, manifest, trt.__version__, capability, str(decision.engine_path))
        for warning in warnings:
            log(warning)
        onnx_sha = sha256_file(request.model_file_path)  # the ONNX it was checked against, so a new one rebuilds
        record_foreign_engine(
            decision.engine_path, used.with_engine(dataclasses.replace(used.engine, onnx_sha256=onnx_sha))
        )
    return decision.engine_path


def record_foreign_engine(engine_path: Path, manifest: Manifest) -> Path:
    """Write the sidecar of an engine built outside EasyOcc: the ONNX manifest with what the engine
    reported, and the engine's sha256 (so a replaced file is noticed)."""
    data = manifest.to_dict()
    data[ENGINE_FILE_KEY] = sha256_file(engine_path)
    write_json_atomic(sidecar_path(engine_path), data)
    return sidecar_path(engine_path)
