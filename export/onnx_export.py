"""torch model -> deployed ONNX: deploy wrapper, opset 17 static-shape export, onnxslim, checks, manifest.

Opset 17 is the newest TensorRT 8.5/8.6 (JetPack 5, JetPack 6.0) parse; torch's TorchScript-based
exporter is used because the torch.export-based one emits opset 18 or newer.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from easyocc.export.onnx_model import embed_manifest, sha256_file
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import atomic_path
from easyocc.runtime.contract.manifest import Manifest

OPSET = 17
_ONNX_DTYPES = {"uint8": 2, "float32": 1, "float16": 10, "int32": 6}


@dataclass
class ExportResult:
    """What `export_onnx` wrote: path, file hash, node count and operator histogram."""

    path: Path
    sha256: str
    nodes: int
    operators: dict = field(default_factory=dict)
    simplified: bool = True

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "nodes": self.nodes,
            "operators": self.operators,
            "simplified": self.simplified,
        }


def example_inputs(manifest: Manifest):
    """Zero-filled torch tensors with the manifest's input dtypes and shapes (tracing needs only shapes)."""
    import torch

    dtypes = {"uint8": torch.uint8, "float32": torch.float32}
    tensors = []
    for spec in manifest.inputs:
        if spec.dtype not in dtypes:
            raise EasyOccError(f"manifest input '{spec.name}' has unsupported dtype {spec.dtype}")
        tensors.append(torch.zeros(spec.shape, dtype=dtypes[spec.dtype]))
    return tuple(tensors)


def to_onnx_proto(model, manifest: Manifest, opset: int = OPSET):
    """Trace the deploy-wrapped `model` to an ONNX ModelProto with the manifest's tensor names."""
    import onnx
    import torch
    from easyocc.export.wrapper import wrapper_for

    wrapper = wrapper_for(model, manifest).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript-exporter deprecation and tracer warnings
        torch.onnx.export(
            wrapper,
            example_inputs(manifest),
            buffer,
            input_names=[spec.name for spec in manifest.inputs],
            output_names=[spec.name for spec in manifest.outputs],
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def simplify(model):
    """onnxslim's constant folding and graph cleanup; the model is returned unchanged in its I/O."""
    import onnxslim

    try:
        slimmed = onnxslim.slim(model)
    except Exception as exc:  # onnxslim raises assorted types on graphs it cannot handle
        raise EasyOccError(f"onnxslim failed: {type(exc).__name__}: {exc} (retry with --no-simplify)") from None
    if slimmed is None:
        raise EasyOccError("onnxslim returned no model (retry with --no-simplify)")
    return slimmed


def check_and_infer(model):
    """onnx.checker (full check, strict shape inference) and a model carrying the inferred value_info."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EasyOccError(f"ONNX check failed: {first}") from None


def check_io(model, manifest: Manifest) -> None:
    """Raise unless the graph's inputs and outputs are the manifest's, in order, with static shapes."""
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    actual = {
        "input": [v for v in graph.input if v.name not in initializers],
        "output": list(graph.output),
    }
    expected = {"input": manifest.inputs, "output": manifest.outputs}
    for kind in ("input", "output"):
        names = [v.name for v in actual[kind]]
        if names != [s.name for s in expected[kind]]:
            raise EasyOccError(f"ONNX {kind}s {names} differ from the manifest's {[s.name for s in expected[kind]]}")
        for value, spec in zip(actual[kind], expected[kind]):
            tensor_type = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor_type.shape.dim]
            if tensor_type.elem_type != _ONNX_DTYPES.get(spec.dtype) or dims != list(spec.shape):
                raise EasyOccError(
                    f"ONNX {kind} '{spec.name}' is type {tensor_type.elem_type} {dims}, "
                    f"the manifest says {spec.dtype} {list(spec.shape)}"
                )


def export_onnx(model, manifest: Manifest, out, opset: int = OPSET, simplified: bool = True) -> ExportResult:
    """Export `model` (torch, model contract) to `out` with the manifest in its metadata; atomic write.

    Raises EasyOccError when the graph fails onnx.checker or its I/O differs from the manifest.
    """
    import onnx

    proto = to_onnx_proto(model, manifest, opset)
    if simplified:
        proto = simplify(proto)
    proto = check_and_infer(proto)
    check_io(proto, manifest)
    proto.producer_name = "easyocc"
    proto.doc_string = manifest.summary()
    embed_manifest(proto, manifest)
    out = Path(out)
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
    histogram = Counter(node.op_type for node in proto.graph.node)
    return ExportResult(
        path=out,
        sha256=sha256_file(out),
        nodes=len(proto.graph.node),
        operators=dict(sorted(histogram.items())),
        simplified=simplified,
    )
