"""TensorRT engine builder for the deployed ONNX model: FP32/FP16/INT8, timing cache, workspace, DLA.

tensorrt and pycuda are imported only inside the functions that need them. The API differences
handled here, by version:
- network creation: 8.5/8.6 need the EXPLICIT_BATCH creation flag for ONNX; in 10.x explicit batch
  is the only mode, the flag is deprecated and 0 is passed;
- workspace: `set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)` (8.4 and newer; the old
  `max_workspace_size` attribute is gone in 10.x);
- parser errors: `desc()` and `node()` everywhere, `node_name()` / `node_operator()` from 10.x;
- `platform_has_fast_fp16/int8` are deprecated in 10.x and only consulted when present.
Never executed on this project's development machines (no GPU there); see docs/readme/export.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from easyocc.export.calibrator import CalibrationCache, CalibrationFeeder, make_entropy_calibrator
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.engine_cache import check_precision

DEFAULT_WORKSPACE_MIB = 2048


def import_tensorrt():
    """The tensorrt module, or EasyOccError saying how to get it."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EasyOccError(
            "TensorRT is not installed: on Jetson it comes with JetPack (python3-libnvinfer); "
            "elsewhere install NVIDIA's tensorrt wheel"
        ) from None
    return trt


def tensorrt_major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise EasyOccError(f"TensorRT version '{version}' is not MAJOR.MINOR[...]") from None


def network_creation_flags(version: str, explicit_batch_bit: int | None) -> int:
    """Flags for builder.create_network: the EXPLICIT_BATCH bit before 10.x, 0 from 10.x on."""
    if tensorrt_major(version) >= 10:
        return 0
    if explicit_batch_bit is None:
        raise EasyOccError(f"TensorRT {version} lacks NetworkDefinitionCreationFlag.EXPLICIT_BATCH")
    return 1 << int(explicit_batch_bit)


def compute_capability() -> str:
    """'MAJOR.MINOR' of CUDA device 0 (8.7 on Orin), via pycuda."""
    try:
        import pycuda.driver as cuda
    except ImportError:
        raise EasyOccError("pycuda is not installed (pip install 'easyocc[trt]'); it reports the GPU") from None
    try:
        cuda.init()
        major, minor = cuda.Device(0).compute_capability()
    except cuda.Error as exc:
        raise EasyOccError(f"no usable CUDA device: {exc}") from None
    return f"{major}.{minor}"


@dataclass(frozen=True)
class BuildOptions:
    """How to build. workspace_mib: the builder's scratch memory limit; dla_core: -1 for the GPU only,
    else run supported layers on that DLA core with GPU fallback (Orin has cores 0 and 1);
    timing_cache: file reused and updated across builds (makes rebuilds minutes faster)."""

    precision: str = "fp16"
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    dla_core: int = -1
    timing_cache: Path | None = None
    calibration_cache: Path | None = None
    calibration_frames: int = 64
    verbose: bool = False

    def __post_init__(self):
        check_precision(self.precision)
        if self.workspace_mib <= 0:
            raise EasyOccError(f"workspace must be positive, got {self.workspace_mib} MiB")
        if self.dla_core >= 0 and self.precision == "fp32":
            raise EasyOccError("DLA runs FP16 or INT8 only; use --precision fp16 or int8 with --dla-core")


@dataclass
class BuildResult:
    engine_bytes: bytes
    seconds: float
    log: list[str] = field(default_factory=list)


def parse_onnx(trt, network, logger, onnx_bytes: bytes, onnx_path) -> None:
    """Parse into `network`; raise naming the first failing node and the parser's description."""
    parser = trt.OnnxParser(network, logger)
    if parser.parse(onnx_bytes, str(onnx_path)):
        return
    messages = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        node = error.node_name() if hasattr(error, "node_name") else f"#{error.node()}"
        operator = f" ({error.node_operator()})" if hasattr(error, "node_operator") else ""
        messages.append(f"node {node}{operator}: {error.desc()}")
    first = messages[0] if messages else "unknown parser error"
    more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
    raise EasyOccError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {first}{more}")


def precision_plan(precision: str, explicit_quantization: bool) -> tuple[tuple[str, ...], bool]:
    """(builder flags, calibrator needed) for a precision and a model with or without Q/DQ nodes.

    FP16 is on for fp16 and int8 (layers left unquantised run in FP16). INT8 is on for int8: a Q/DQ
    model (explicit quantization) takes its scales from the Q/DQ nodes and needs no calibrator, and
    TensorRT refuses Q/DQ layers without the INT8 flag, so a Q/DQ model builds as int8 only.
    """
    check_precision(precision, "qdq" if explicit_quantization else "")
    flags = {"fp32": (), "fp16": ("FP16",), "int8": ("FP16", "INT8")}[precision]
    return flags, precision == "int8" and not explicit_quantization


def _configure_precision(trt, builder, config, flags, calibrator) -> list[str]:
    notes = []
    if "FP16" in flags:
        if hasattr(builder, "platform_has_fast_fp16") and not builder.platform_has_fast_fp16:
            notes.append("this GPU has no fast FP16; FP16 kernels may be slower than FP32")
        config.set_flag(trt.BuilderFlag.FP16)  # INT8 builds also allow FP16 for layers left unquantised
    if "INT8" in flags:
        if hasattr(builder, "platform_has_fast_int8") and not builder.platform_has_fast_int8:
            notes.append("this GPU has no fast INT8")
        config.set_flag(trt.BuilderFlag.INT8)
        if calibrator is not None:
            config.int8_calibrator = calibrator
    return notes


def _configure_dla(trt, builder, config, dla_core: int) -> None:
    if dla_core < 0:
        return
    cores = builder.num_DLA_cores
    if dla_core >= cores:
        raise EasyOccError(f"DLA core {dla_core} requested, this device has {cores} DLA core(s)")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = dla_core
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)  # layers DLA cannot run go to the GPU


def _load_timing_cache(config, path: Path | None):
    data = path.read_bytes() if path and path.is_file() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise EasyOccError(f"timing cache {path} was made by another TensorRT or GPU; delete it to rebuild it")
    return cache


def build_engine(
    onnx_path, options: BuildOptions, manifest=None, calibration_feeds=None, onnx_sha256="", explicit=False
) -> BuildResult:
    """Parse `onnx_path` and build a serialized engine. For INT8 of a float model, `calibration_feeds`
    (an iterable of feeds of real preprocessed frames) and `manifest` are required unless a valid
    calibration cache exists; an `explicit` (Q/DQ) model needs neither."""
    from easyocc.runtime.contract.fileio import write_bytes_atomic

    trt = import_tensorrt()
    onnx_path = Path(onnx_path)
    logger = trt.Logger(trt.Logger.VERBOSE if options.verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    explicit = getattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "EXPLICIT_BATCH", None)
    network = builder.create_network(network_creation_flags(trt.__version__, explicit))
    parse_onnx(trt, network, logger, onnx_path.read_bytes(), onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mib) << 20)
    flags, needs_calibrator = precision_plan(options.precision, explicit)
    calibrator, feeder, log = None, None, []
    if explicit:
        log.append("explicit quantization: INT8 scales from the model's Q/DQ nodes, no calibration")
    if needs_calibrator:
        if manifest is None:
            raise EasyOccError("INT8 build needs the model manifest for calibration")
        cache = CalibrationCache(
            options.calibration_cache or onnx_path.with_suffix(".int8-calib.cache"), onnx_sha256 or "unknown"
        )
        cached = cache.read() is not None
        if not cached and calibration_feeds is None:
            raise EasyOccError(f"INT8 build needs calibration frames (--calib-data DIR): {cache.status}")
        feeder = CalibrationFeeder(manifest, calibration_feeds or [], limit=options.calibration_frames)
        calibrator = make_entropy_calibrator(trt, feeder, cache)
        log.append(cache.status)
    log += _configure_precision(trt, builder, config, flags, calibrator)
    _configure_dla(trt, builder, config, options.dla_core)
    timing_cache = _load_timing_cache(config, options.timing_cache)
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - started
    if serialized is None:
        raise EasyOccError(f"TensorRT {trt.__version__} failed to build an engine from {onnx_path} (see the log above)")
    if options.timing_cache:
        write_bytes_atomic(options.timing_cache, bytes(config.get_timing_cache().serialize()))
    del timing_cache
    if feeder is not None:
        log.append(f"INT8 calibration read {feeder.served} frame(s) ({'cache' if feeder.served == 0 else 'dataset'})")
    return BuildResult(engine_bytes=bytes(serialized), seconds=seconds, log=log)
