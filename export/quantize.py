"""INT8 explicit quantization: the deployed ONNX model -> a Q/DQ ONNX model calibrated on real frames.

Quantizer: ONNX Runtime's static quantizer (`onnxruntime.quantization.quantize_static`) in QDQ
format. It is already a dependency (the runtime's CPU backend), it runs the calibration on the CPU
with the same sessions as the parity checks, and its QDQ output is what TensorRT's explicit
quantization consumes. NVIDIA's nvidia-modelopt would add a large dependency (it pins its own
onnx/onnxruntime versions) for features this model does not need (INT4/FP8, LLM recipes).

Placement, chosen for TensorRT (its Q/DQ placement recommendations): Q/DQ only in front of
convolutions, on the activation input (per-tensor) and the weight (per-channel, axis 0); symmetric
int8 (zero point 0, which TensorRT requires); no Q/DQ on convolution outputs and no quantized bias,
so each DQ -> Conv (-> ReLU) -> Q chain fuses into one INT8 kernel. Kept out of quantization and
recorded in the manifest: the argmax/confidence tail (everything after the last convolution), the
view-transform sampling (GridSample, its inputs and the per-camera weighting up to the next
convolution), modules flagged by the FP16 check, and node groups the caller names (for instance
those the sensitivity report blames).

Calibration frames are the runtime's own preprocessed frames from a nuScenes-layout dataset
(`easyocc.export.feeds.dataset_feeds`), validated by `CalibrationFeeder`.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from easyocc.export.calibrator import CalibrationFeeder
from easyocc.export.onnx_model import embed_manifest, load_onnx, read_manifest, sha256_file
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import INPUT_VT_UV, INPUT_VT_WEIGHTS, Manifest, QuantizationInfo

SCHEME = "int8-qdq"
MIN_CALIBRATION_FRAMES = 8
DEFAULT_CALIBRATION_FRAMES = 16
QUANTIZED_OP_TYPES = ("Conv",)
CALIBRATION_METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

# Reasons under which nodes are kept out (QuantizationInfo.kept_out keys).
TAIL = "argmax/confidence tail"
VIEW_TRANSFORM = "view-transform sampling"
FP16_FLAGGED = "flagged by the FP16 check"
REQUESTED = "kept by request"


@dataclass(frozen=True)
class Int8Options:
    """frames: calibration frames (at least MIN_CALIBRATION_FRAMES); stride, start: take every
    stride-th key frame of the dataset from key frame `start` on; method: minmax | percentile | entropy; keep: node-name prefixes kept
    in higher precision (e.g. '/model/head/classifier/'); fp16_modules: torch module names the FP16
    check flagged (`easyocc export fp16-check`), kept in higher precision."""

    frames: int = DEFAULT_CALIBRATION_FRAMES
    stride: int = 1
    start: int = 0
    method: str = "minmax"
    keep: tuple[str, ...] = ()
    fp16_modules: tuple[str, ...] = ()

    def __post_init__(self):
        if self.method not in CALIBRATION_METHODS:
            raise EasyOccError(f"calibration method '{self.method}' is not one of {', '.join(CALIBRATION_METHODS)}")
        if self.frames < MIN_CALIBRATION_FRAMES:
            raise EasyOccError(
                f"INT8 calibration needs at least {MIN_CALIBRATION_FRAMES} frames, {self.frames} requested"
            )


@dataclass
class Int8Result:
    path: Path
    sha256: str
    bytes: int
    source_bytes: int
    manifest: Manifest

    def to_dict(self) -> dict:
        info = self.manifest.quantization
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "bytes": self.bytes,
            "source_bytes": self.source_bytes,
            "quantization": None if info is None else self.manifest.to_dict()["quantization"],
        }


def is_quantized(model) -> bool:
    """Whether an ONNX model (path or ModelProto) holds Q/DQ nodes."""
    return any(node.op_type in QDQ_OPS for node in load_onnx(model).graph.node)


def module_scope(module_name: str) -> str:
    """The ONNX node-name prefix torch's exporter gives a module of the deploy wrapper's model:
    'backbone.layer2.1.conv1' -> '/model/backbone/layer2/layer2.1/conv1/' (a numbered child of a
    container is scoped as 'parent.index')."""
    parts: list[str] = []
    for part in module_name.split("."):
        parts.append(f"{parts[-1]}.{part}" if part.isdigit() and parts else part)
    return "/model/" + "/".join(parts) + "/"


def kept_out_nodes(model, keep=(), fp16_modules=()) -> dict[str, list[str]]:
    """reason -> names of the nodes left in higher precision (see the module docstring).

    The tail: every node downstream of the last convolution's output. The view transform: every
    GridSample, and every node downstream of a GridSample output or of the view-transform table
    inputs, up to (not including) the next convolution.
    """
    graph = load_onnx(model).graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    convs = [node for node in graph.node if node.op_type in QUANTIZED_OP_TYPES]
    kept: dict[str, list[str]] = {}
    if convs:
        kept[TAIL] = _downstream(convs[-1].output, consumers, stop=())
    starts = [out for node in graph.node if node.op_type == "GridSample" for out in node.output]
    region = _downstream([*starts, INPUT_VT_UV, INPUT_VT_WEIGHTS], consumers, stop=QUANTIZED_OP_TYPES)
    kept[VIEW_TRANSFORM] = [node.name for node in graph.node if node.op_type == "GridSample"] + region
    names = [node.name for node in graph.node]
    if fp16_modules:
        scopes = [module_scope(m) for m in fp16_modules]
        kept[FP16_FLAGGED] = [n for n in names if any(n.startswith(scope) for scope in scopes)]
    if keep:
        missing = [prefix for prefix in keep if not any(n.startswith(prefix) for n in names)]
        if missing:
            raise EasyOccError(f"--keep {missing[0]}: no node name starts with it")
        kept[REQUESTED] = [n for n in names if any(n.startswith(prefix) for prefix in keep)]
    return kept


def _downstream(tensors, consumers: dict, stop) -> list[str]:
    seen: list[str] = []
    stack = list(tensors)
    visited: set[str] = set()
    while stack:
        tensor = stack.pop()
        for node in consumers.get(tensor, []):
            if node.op_type in stop or node.name in visited:
                continue
            visited.add(node.name)
            seen.append(node.name)
            stack.extend(node.output)
    return seen


def check_calibration_set(manifest: Manifest, data) -> None:
    """Raise unless the dataset's cameras are the model's (a calibration set from another rig)."""
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset

    samples = NuScenesDataset(data).samples()
    if not samples:
        raise EasyOccError(f"calibration set {data}: no samples")
    cameras = set(samples[0].cameras)
    missing = [name for name in manifest.camera_names if name not in cameras]
    if missing:
        raise EasyOccError(
            f"calibration set {data} is from another rig: it lacks the model's cameras {missing} "
            f"(it has {sorted(cameras)})"
        )


def calibration_feeds(manifest: Manifest, data, frames: int, stride: int = 1, start: int = 0) -> list[dict]:
    """`frames` real preprocessed feeds from dataset `data`; raises when it holds fewer."""
    from easyocc.export.feeds import dataset_feeds

    check_calibration_set(manifest, data)
    feeds = list(dataset_feeds(manifest, data, count=frames, stride=stride, start=start))
    if len(feeds) < max(frames, MIN_CALIBRATION_FRAMES):
        where = f"at stride {stride}" + (f" from key frame {start}" if start else "")
        raise EasyOccError(
            f"calibration set {data} gives {len(feeds)} usable frame(s) {where}; "
            f"{max(frames, MIN_CALIBRATION_FRAMES)} are needed"
        )
    return feeds


def quantize_int8(onnx_path, data, out_path, options: Int8Options | None = None, log=None) -> Int8Result:
    """Quantize `onnx_path` (an `easyocc export onnx` model) to Q/DQ INT8 at `out_path`, calibrated
    on `options.frames` frames of dataset `data`; the manifest records what was done."""
    import onnxruntime

    options = options or Int8Options()
    onnx_path = Path(onnx_path)
    manifest = read_manifest(onnx_path)
    if manifest.quantization is not None or is_quantized(onnx_path):
        raise EasyOccError(f"{onnx_path} is already quantized; quantize the float model it came from")
    kept = kept_out_nodes(onnx_path, options.keep, options.fp16_modules)
    feeds = calibration_feeds(manifest, data, options.frames, options.stride, options.start)
    if log:
        log(f"calibrating on {len(feeds)} frames of {data} ({options.method})")
    with tempfile.TemporaryDirectory(prefix="easyocc-int8-") as tmp:
        model = run_quantizer(onnx_path, Path(tmp) / "q.onnx", feeds, manifest, kept, options.method)
    info = QuantizationInfo(
        scheme=SCHEME,
        tool=f"onnxruntime {onnxruntime.__version__} quantize_static (QDQ)",
        weights="int8 symmetric, per output channel",
        activations="int8 symmetric, per tensor; inputs of Conv only, outputs left in float",
        calibration={
            "method": options.method,
            "frames": len(feeds),
            "stride": options.stride,
            "start": options.start,
            "data": str(data),
        },
        quantized_nodes=count_quantized(model),
        kept_out={reason: names for reason, names in kept.items() if names},
        source_onnx_sha256=sha256_file(onnx_path),
    )
    out = replace(manifest, quantization=info)
    return save_quantized(model, out, out_path, onnx_path)


def run_quantizer(onnx_path, out_path, feeds, manifest: Manifest | None, kept: dict, method: str, cache=None):
    """One quantize_static call -> the Q/DQ ModelProto. `feeds` (list) calibrate, or None to reuse the
    ranges in the ORT calibration cache file `cache` (written on a calibrating call when given)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class FeederReader(CalibrationDataReader):
        def __init__(self, feeder: CalibrationFeeder):
            self.feeder, self.names = feeder, list(feeder.specs)

        def get_next(self):
            arrays = self.feeder.next_batch(self.names)
            return None if arrays is None else dict(zip(self.names, arrays))

    reader = None if feeds is None else FeederReader(CalibrationFeeder(manifest, feeds))
    excluded = sorted({name for names in kept.values() for name in names})
    with _quiet_root_logger():
        quantize_static(
            str(onnx_path),
            str(out_path),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OP_TYPES),
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[method]),
            calibration_cache_path=str(cache) if cache else None,
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,  # TensorRT keeps the bias in float and fuses it
                "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OP_TYPES),
            },
        )
    model = load_onnx(out_path)
    float_inputs_for_kept(model, {name for names in kept.values() for name in names})
    return model


def float_inputs_for_kept(model, kept) -> int:
    """Give every node in `kept` its float input back where the quantizer shared an activation's
    Q/DQ pair with it (a tensor quantized for one consumer is dequantized for all of them), and drop
    Q/DQ nodes left without consumers. Returns the number of inputs rewired. In place."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    rewired = 0
    for node in graph.node:
        if node.name not in kept:
            continue
        for position, name in enumerate(node.input):
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[position] = q.input[0]
                rewired += 1
    while True:
        used = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
        dead = [n for n in graph.node if n.op_type in QDQ_OPS and not any(out in used for out in n.output)]
        if not dead:
            return rewired
        for node in dead:
            graph.node.remove(node)


@contextlib.contextmanager
def _quiet_root_logger():
    """quantize_static logs a pre-processing hint through the root logger on every call; the
    pre-processing (ORT graph fusions) is deliberately skipped, since TensorRT must see plain ops."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def count_quantized(model) -> int:
    """Nodes of QUANTIZED_OP_TYPES whose activation input comes from a DequantizeLinear."""
    graph = load_onnx(model).graph
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    return sum(1 for n in graph.node if n.op_type in QUANTIZED_OP_TYPES and n.input and n.input[0] in dequantized)


def save_quantized(model, manifest: Manifest, out_path, source_path) -> Int8Result:
    """Embed `manifest`, drop the quantizer's own metadata, write atomically."""
    from easyocc.runtime.contract.fileio import write_bytes_atomic

    kept = [(p.key, p.value) for p in model.metadata_props if p.key != "onnx.infer"]
    del model.metadata_props[:]
    for key, value in kept:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    embed_manifest(model, manifest)
    out_path = Path(out_path)
    write_bytes_atomic(out_path, model.SerializeToString())
    return Int8Result(
        path=out_path,
        sha256=sha256_file(out_path),
        bytes=out_path.stat().st_size,
        source_bytes=Path(source_path).stat().st_size,
        manifest=manifest,
    )
