"""`easyocc export engine`: ONNX -> lint -> cached or freshly built TensorRT engine + sidecar manifest.

`plan_engine` (pure, CPU-testable) decides which file and whether the cache is usable;
`build_or_reuse` adds the TensorRT parts and an optional verification against ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from easyocc.export.onnx_model import read_manifest, sha256_file
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import EngineInfo, Manifest
from easyocc.runtime.engine_cache import (
    CacheDecision,
    default_engine_path,
    expected_engine_info,
    resolve_cache,
    write_engine,
)


@dataclass
class EnginePlan:
    """What a build would produce and whether the cache already holds it."""

    onnx_path: Path
    manifest: Manifest
    info: EngineInfo
    engine_path: Path
    decision: CacheDecision


def plan_engine(
    onnx_path,
    tensorrt_version: str,
    compute_capability: str,
    precision: str,
    engine_path=None,
    dla_core: int = -1,
    rebuild: str = "auto",
) -> EnginePlan:
    """Read the ONNX manifest and hash, name the engine and check the cache (raises for 'never' + stale).

    An explicitly quantized ONNX model (Q/DQ nodes) is keyed by its quantization scheme as well, so its
    engine never shares a cache entry with one TensorRT calibrated itself."""
    onnx_path = Path(onnx_path)
    manifest = read_manifest(onnx_path)
    quantization = explicit_quantization(onnx_path, manifest)
    info = expected_engine_info(
        tensorrt_version, compute_capability, precision, sha256_file(onnx_path), dla_core, quantization
    )
    path = Path(engine_path) if engine_path else default_engine_path(onnx_path, info)
    return EnginePlan(onnx_path, manifest, info, path, resolve_cache(path, info, rebuild))


def explicit_quantization(onnx_path, manifest: Manifest) -> str:
    """The Q/DQ scheme of the model: from its manifest (`easyocc export int8`), 'qdq' for Q/DQ nodes
    another tool inserted, '' for a float model."""
    from easyocc.export.quantize import is_quantized

    if manifest.quantization is not None:
        return manifest.quantization.scheme
    return "qdq" if is_quantized(onnx_path) else ""


@dataclass
class EngineReport:
    engine_path: Path
    reused: bool
    info: EngineInfo
    build_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    verification: dict | None = None

    def to_dict(self) -> dict:
        return {
            "engine": str(self.engine_path),
            "reused": self.reused,
            "tensorrt_version": self.info.tensorrt_version,
            "compute_capability": self.info.compute_capability,
            "precision": self.info.precision,
            "quantization": self.info.quantization or None,
            "dla_core": self.info.dla_core,
            "onnx_sha256": self.info.onnx_sha256,
            "build_seconds": round(self.build_seconds, 1),
            "notes": self.notes,
            "verification": self.verification,
        }


def build_or_reuse(
    onnx_path,
    options,
    engine_path=None,
    rebuild: str = "auto",
    calib_data=None,
    verify_frames: int = 0,
    min_agreement: float = 0.99,
    rig=None,
    log=print,
) -> EngineReport:
    """Lint for the installed TensorRT, then reuse the cached engine or build and write a new one.

    verify_frames > 0 runs that many synthetic frames (with `rig`, default nuScenes) through the
    engine and through ONNX Runtime and fails when the class agreement is below `min_agreement`.
    """
    from easyocc.export.lint import lint_model, table_version_for
    from easyocc.export.trt_builder import build_engine, compute_capability, import_tensorrt

    trt = import_tensorrt()
    report = lint_model(onnx_path, versions=(table_version_for(trt.__version__),))
    report.raise_for_errors()
    for warning in report.warnings:
        log(warning.line())
    plan = plan_engine(
        onnx_path, trt.__version__, compute_capability(), options.precision, engine_path, options.dla_core, rebuild
    )
    log(plan.decision.message())
    if plan.decision.reuse:
        result = EngineReport(plan.engine_path, True, plan.info)
    else:
        feeds = None
        if options.precision == "int8" and calib_data and not plan.info.quantization:
            from easyocc.export.feeds import dataset_feeds

            feeds = dataset_feeds(plan.manifest, calib_data, count=options.calibration_frames)
        built = build_engine(
            plan.onnx_path, options, plan.manifest, feeds, plan.info.onnx_sha256, bool(plan.info.quantization)
        )
        write_engine(plan.engine_path, built.engine_bytes, plan.manifest, plan.info)
        result = EngineReport(plan.engine_path, False, plan.info, built.seconds, built.log)
        log(f"built {plan.engine_path} in {built.seconds:.0f} s")
    if verify_frames > 0:
        result.verification = verify_engine(plan, verify_frames, min_agreement, rig)
    return result


def verify_engine(plan: EnginePlan, frames: int, min_agreement: float, rig=None) -> dict:
    """Engine vs ONNX Runtime (CPU) on synthetic frames, through the runtime's runners and comparator;
    raises when agreement < min_agreement."""
    from easyocc.calibration import default_rig
    from easyocc.export.feeds import synthetic_feeds
    from easyocc.runtime.backends import create_runner
    from easyocc.runtime.backends.compare import compare_runners

    feeds = [("synthetic", feed) for feed in synthetic_feeds(plan.manifest, rig or default_rig(), frames)]
    runners = [
        create_runner(plan.onnx_path, "onnxruntime", providers=["CPUExecutionProvider"]),
        create_runner(plan.engine_path, "tensorrt"),
    ]
    labels = ["ONNX Runtime (CPU)", f"TensorRT {plan.info.precision}"]
    (report,) = compare_runners(runners, feeds, min_agreement, labels=labels)
    if not report.passed:
        raise EasyOccError(f"engine verification: {report.summary()}")
    return report.to_dict()
