"""Small helpers around an ONNX ModelProto: loading, hashing, the embedded manifest, tensor types.

Imports `onnx` lazily so that `easyocc.runtime.engine_cache` and the CLI's help work without it.
"""

from __future__ import annotations

from pathlib import Path

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import sha256_file  # noqa: F401  (re-exported: export's callers use it)
from easyocc.runtime.contract.manifest import ONNX_METADATA_KEY, Manifest


def load_onnx(model_or_path):
    """A ModelProto from a path (checked to exist) or a ModelProto passed through."""
    import onnx

    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    path = Path(model_or_path)
    if not path.is_file():
        raise EasyOccError(f"ONNX model {path} does not exist")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, google.protobuf errors, OSError
        raise EasyOccError(f"ONNX model {path} cannot be read: {exc}") from None


def read_manifest(model_or_path) -> Manifest:
    """The manifest stored under ONNX_METADATA_KEY in the model's metadata_props."""
    model = load_onnx(model_or_path)
    for prop in model.metadata_props:
        if prop.key == ONNX_METADATA_KEY:
            return Manifest.from_json(prop.value)
    where = model_or_path if isinstance(model_or_path, str | Path) else "the ONNX model"
    raise EasyOccError(f"{where} has no '{ONNX_METADATA_KEY}' metadata entry (not exported by easyocc export)")


def embed_manifest(model, manifest: Manifest) -> None:
    """Store (or replace) the manifest JSON in the model's metadata_props, in place."""
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != ONNX_METADATA_KEY]
    del model.metadata_props[:]
    for key, value in [*kept, (ONNX_METADATA_KEY, manifest.to_json())]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def node_label(node, index: int) -> str:
    """A node's name, or '#index OpType -> first output' when the exporter left it unnamed."""
    if node.name:
        return node.name
    first = node.output[0] if node.output else "?"
    return f"#{index} {node.op_type} -> {first}"


def default_opset(model) -> int:
    """The opset version of the default ONNX domain."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise EasyOccError("ONNX model imports no default-domain opset")


def tensor_types(model) -> dict[str, tuple[int, tuple | None]]:
    """name -> (elem_type, shape) for every tensor whose type is known, after shape inference.

    shape is a tuple of ints (static) and strings (symbolic or unknown dims), or None when the
    rank itself is unknown. Declared types (inputs, outputs, value_info, initializers) win over
    inferred ones; inference failures are tolerated, since the lint must report, not crash.
    """
    import onnx

    def from_value_info(value_info):
        tensor_type = value_info.type.tensor_type
        if not tensor_type.HasField("shape"):
            return tensor_type.elem_type, None
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor_type.shape.dim)
        return tensor_type.elem_type, dims

    types: dict[str, tuple[int, tuple | None]] = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        for value_info in inferred.graph.value_info:
            types[value_info.name] = from_value_info(value_info)
    except Exception:  # inference errors are reported by the checks that need the missing types
        pass
    graph = model.graph
    for value_info in [*graph.value_info, *graph.input, *graph.output]:
        types[value_info.name] = from_value_info(value_info)
    for init in graph.initializer:
        types[init.name] = (init.data_type, tuple(init.dims))
    return types


def dtype_name(elem_type: int) -> str:
    """'FLOAT', 'UINT8', 'INT64', ... for an ONNX TensorProto data type."""
    import onnx

    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"type {elem_type}"
