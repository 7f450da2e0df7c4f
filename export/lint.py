"""TensorRT compatibility lint for an ONNX model, against the table in export/data/tensorrt_onnx_ops.json.

Checks, per TensorRT version of the table (8.5, 8.6, 10.x):
- the default-domain opset is one the parser reads; no custom-domain operator (it would need a plugin);
- every node's operator is natively supported, with the table's attribute and input constraints
  (GridSample 4-D only, pooling 2-D/3-D, Resize modes, constant axes/K inputs, ...);
- static shapes on every graph input and output (and warnings for symbolic intermediate dims);
- no INT64 tensor computed from the inputs on the way to an output (8.x silently narrows INT64 to
  INT32; argmax indices and the like must be cast inside the graph, to a type the runtime expects);
- UINT8 only at the graph boundary, consumed or produced by a Cast (the parser rejects UINT8
  intermediate tensors);
- in a Q/DQ (explicitly quantized) model, a placement TensorRT fuses: INT8 with zero point 0
  (symmetric), weights per-tensor or per output channel (axis 0), each quantized Conv with both its
  activation and its weight dequantized, and no dequantized tensor reaching a GridSample input or
  the view-transform tables (it cannot consume them; the sampling stays in float).
Every issue names the node (or tensor) it is about.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from easyocc.export.onnx_model import default_opset, dtype_name, load_onnx, node_label, tensor_types
from easyocc.runtime.contract.errors import EasyOccError

TABLE_RESOURCE = "tensorrt_onnx_ops.json"
ALL_VERSIONS = ("8.5", "8.6", "10.x")

# ONNX TensorProto data types used below (values fixed by the ONNX standard).
INT8, UINT8, INT64, DOUBLE = 3, 2, 7, 11
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

# Operators whose outputs depend only on their input's shape, which is static here.
SHAPE_ONLY_OPS = {"Shape", "Size"}


@lru_cache(maxsize=1)
def load_table() -> dict:
    """The operator table shipped with the package (see its 'source' field for provenance)."""
    # A path beside this module, not importlib.resources: editable installs can expose `export`
    # as a namespace package, for which resources.files() fails.
    return json.loads((Path(__file__).with_name("data") / TABLE_RESOURCE).read_text())


def table_version_for(tensorrt_version: str) -> str:
    """The table entry that describes an installed TensorRT ('8.6.2.3' -> '8.6', '10.3.0' -> '10.x').

    Versions between 8.6 and 10 (9.x) are linted as 8.6, the closest older entry; older than 8.5
    is refused: UINT8 inputs and GridSample need 8.5.
    """
    try:
        major, minor = (int(part) for part in str(tensorrt_version).split(".")[:2])
    except ValueError:
        raise EasyOccError(f"TensorRT version '{tensorrt_version}' is not MAJOR.MINOR[...]") from None
    if major >= 10:
        return "10.x"
    if (major, minor) >= (8, 6):
        return "8.6"
    if (major, minor) == (8, 5):
        return "8.5"
    raise EasyOccError(f"TensorRT {tensorrt_version} is too old: UINT8 inputs and GridSample need 8.5 or newer")


@dataclass(frozen=True)
class LintIssue:
    """One finding. where: the node label (or tensor name); versions: the table versions it applies to."""

    severity: str
    where: str
    op: str
    message: str
    versions: tuple[str, ...]

    def line(self) -> str:
        return f"{self.severity}: TensorRT {', '.join(self.versions)}: {self.op} '{self.where}': {self.message}"


@dataclass
class LintReport:
    """All findings for one model; `ok` when there is no error (warnings are allowed)."""

    versions: tuple[str, ...]
    issues: list[LintIssue] = field(default_factory=list)
    node_count: int = 0
    opset: int = 0

    @property
    def errors(self) -> list[LintIssue]:
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[LintIssue]:
        return [issue for issue in self.issues if issue.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "versions": list(self.versions),
            "opset": self.opset,
            "nodes": self.node_count,
            "errors": [issue.line() for issue in self.errors],
            "warnings": [issue.line() for issue in self.warnings],
        }

    def raise_for_errors(self) -> None:
        """Raise EasyOccError with the first error (and how many more there are)."""
        if self.errors:
            more = len(self.errors) - 1
            suffix = f" (and {more} more lint error{'s' if more > 1 else ''})" if more else ""
            raise EasyOccError(f"TensorRT lint: {self.errors[0].line()}{suffix}")


class _Collector:
    """Merges identical findings across versions into one issue listing those versions."""

    def __init__(self):
        self._found: dict[tuple, list[str]] = {}

    def add(self, severity: str, where: str, op: str, message: str, version: str) -> None:
        versions = self._found.setdefault((severity, where, op, message), [])
        if version not in versions:
            versions.append(version)

    def issues(self) -> list[LintIssue]:
        ordered = sorted(self._found.items(), key=lambda item: item[0][0] != "error")
        return [LintIssue(s, w, o, m, tuple(v)) for (s, w, o, m), v in ordered]


def lint_model(model_or_path, versions=ALL_VERSIONS) -> LintReport:
    """Lint an ONNX model (path or ModelProto) for the given TensorRT table versions."""
    model = load_onnx(model_or_path)
    table = load_table()
    versions = tuple(versions)
    for version in versions:
        if version not in table["versions"]:
            raise EasyOccError(f"TensorRT lint: no table entry for version '{version}' ({', '.join(ALL_VERSIONS)})")
    found = _Collector()
    types = tensor_types(model)
    constants = _constant_names(model)
    opset = default_opset(model)
    for version in versions:
        spec = table["versions"][version]
        if opset > spec["max_opset"]:
            found.add("error", "model", "opset", f"opset {opset} > {spec['max_opset']}, the newest it parses", version)
        supported, unsupported = set(spec["supported"]), set(spec["unsupported"])
        for index, node in enumerate(model.graph.node):
            label = node_label(node, index)
            if node.domain not in ("", "ai.onnx"):
                found.add("error", label, node.op_type, f"custom domain '{node.domain}' needs a plugin", version)
            elif node.op_type not in supported:
                why = "not supported" if node.op_type in unsupported else "not in the support table"
                found.add("error", label, node.op_type, f"{why} by the ONNX parser", version)
            else:
                for severity, message in _check_constraints(node, table["constraints"], types, constants):
                    found.add(severity, label, node.op_type, message, version)
    for severity, where, op, message in [*_check_graph(model, types), *_check_qdq(model, types)]:
        for version in versions:
            found.add(severity, where, op, message, version)
    return LintReport(versions=versions, issues=found.issues(), node_count=len(model.graph.node), opset=opset)


def _constant_names(model) -> set[str]:
    names = {init.name for init in model.graph.initializer}
    names |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    return names


def _attribute(node, name: str):
    import onnx

    for attr in node.attribute:
        if attr.name == name:
            value = onnx.helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    return None


def _rank(types: dict, name: str) -> int | None:
    entry = types.get(name)
    return None if entry is None or entry[1] is None else len(entry[1])


def _check_constraints(node, constraints: dict, types: dict, constants: set[str]):
    """(severity, message) for each of the table's constraints that the node breaks."""
    rule = constraints.get(node.op_type)
    if not rule:
        return
    if "input_rank" in rule:
        rank = _rank(types, node.input[0]) if node.input else None
        if rank is None:
            yield "error", f"rank of input '{node.input[0]}' is unknown; it must be {rule['input_rank']}"
        elif rank not in rule["input_rank"]:
            yield "error", f"{rank}-D input '{node.input[0]}'; only {rule['input_rank']}-D is supported"
    if "spatial_rank" in rule:
        kernel = _attribute(node, "kernel_shape")
        rank = len(kernel) if kernel else (_rank(types, node.input[0]) or 2) - 2
        if rank not in rule["spatial_rank"]:
            yield "error", f"{rank}-D pooling; only {rule['spatial_rank']}-D is supported"
    for name, allowed in rule.get("attributes", {}).items():
        value = _attribute(node, name)
        if value is not None and value not in allowed:
            yield "error", f"{name}='{value}' is not supported ({', '.join(allowed)})"
    for position in rule.get("constant_inputs", []):
        if len(node.input) > position and node.input[position] and node.input[position] not in constants:
            yield "error", f"input {position} '{node.input[position]}' must be an initializer or Constant"
    if "max_outputs" in rule and sum(1 for out in node.output if out) > rule["max_outputs"]:
        yield "error", f"only the first {rule['max_outputs']} output(s) are supported"
    if "fp16_warning" in rule:
        yield "warning", rule["fp16_warning"]


def _check_graph(model, types: dict):
    """(severity, where, op, message) for graph-level rules: static I/O, INT64 path, UINT8 boundary."""
    graph = model.graph
    inputs = {value.name for value in graph.input} - {init.name for init in graph.initializer}
    outputs = {value.name for value in graph.output}
    for value in graph.input:
        if value.name in inputs:
            yield from _check_static(value.name, types, "input")
    for value in graph.output:
        yield from _check_static(value.name, types, "output")
    producer = {out: (index, node) for index, node in enumerate(graph.node) for out in node.output}
    consumers: dict[str, list] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append((index, node))
    # Tensors computed from the inputs' values, and tensors that feed an output.
    data_dependent = set(inputs)
    for node in graph.node:
        if node.op_type not in SHAPE_ONLY_OPS and any(name in data_dependent for name in node.input):
            data_dependent.update(out for out in node.output if out)
    feeds_output, stack = set(), list(outputs)
    while stack:
        name = stack.pop()
        if name in feeds_output:
            continue
        feeds_output.add(name)
        if name in producer:
            stack.extend(n for n in producer[name][1].input if n)
    for name in sorted(data_dependent & feeds_output):
        elem_type = types.get(name, (0, None))[0]
        if elem_type == INT64:
            where, op = _producer_label(producer, name)
            yield (
                "error",
                where,
                op,
                f"INT64 tensor '{name}' on the output path (cast it to INT32 or float in the graph)",
            )
        if elem_type == DOUBLE:
            where, op = _producer_label(producer, name)
            yield "warning", where, op, f"DOUBLE tensor '{name}' is narrowed to FLOAT by TensorRT"
    yield from _check_uint8(graph, types, inputs, outputs, producer, consumers)
    for name, (_, shape) in sorted(types.items()):
        if shape is not None and any(isinstance(d, str) for d in shape) and name not in inputs | outputs:
            where, op = _producer_label(producer, name)
            yield "warning", where, op, f"tensor '{name}' has a symbolic or unknown dim {list(shape)}"


def _check_static(name: str, types: dict, kind: str):
    elem_type, shape = types.get(name, (0, None))
    if shape is None:
        yield "error", name, kind, f"graph {kind} '{name}' has no shape; static shapes are required"
    elif any(not isinstance(d, int) or d <= 0 for d in shape):
        yield (
            "error",
            name,
            kind,
            f"graph {kind} '{name}' has a dynamic shape {list(shape)}; static shapes are required",
        )


def _producer_label(producer: dict, name: str) -> tuple[str, str]:
    if name in producer:
        index, node = producer[name]
        return node_label(node, index), node.op_type
    return name, "tensor"


def _check_uint8(graph, types, inputs, outputs, producer, consumers):
    """UINT8 is legal only as a graph input read by Casts, or a graph output written by a Cast."""
    for name, (elem_type, _) in sorted(types.items()):
        if elem_type != UINT8:
            continue
        if name in inputs:
            for index, node in consumers.get(name, []):
                if node.op_type != "Cast":
                    label = node_label(node, index)
                    yield "error", label, node.op_type, f"reads UINT8 input '{name}' directly; cast it to float first"
        elif name in outputs:
            where, op = _producer_label(producer, name)
            if op != "Cast":
                yield "error", where, op, f"UINT8 output '{name}' must be produced by a Cast"
        elif name in producer:
            where, op = _producer_label(producer, name)
            yield (
                "error",
                where,
                op,
                f"UINT8 intermediate tensor '{name}': TensorRT allows UINT8 only at inputs/outputs",
            )


def _check_qdq(model, types: dict):
    """(severity, where, op, message) for the Q/DQ placement rules (nothing for a float model)."""
    graph = model.graph
    nodes = list(enumerate(graph.node))
    if not any(node.op_type in QDQ_OPS for _, node in nodes):
        return
    producer = {out: (index, node) for index, node in nodes for out in node.output}
    initializers = {init.name: init for init in graph.initializer}
    for index, node in nodes:
        label = node_label(node, index)
        if node.op_type in QDQ_OPS:
            yield from _check_qdq_node(node, label, types, initializers, producer)
        elif node.op_type == "Conv":
            dequantized = [_is_dequantized(name, producer) for name in node.input[:2]]
            if any(dequantized) and not all(dequantized):
                which = "activation" if dequantized[1] else "weight"
                yield "warning", label, "Conv", f"its {which} is not dequantized: TensorRT runs it unfused, not in INT8"
        elif node.op_type == "GridSample":
            for name in node.input:
                if _is_dequantized(name, producer):
                    yield (
                        "error",
                        label,
                        "GridSample",
                        f"input '{name}' comes from a DequantizeLinear: TensorRT cannot fuse Q/DQ into GridSample; "
                        "keep the view-transform sampling in float",
                    )


def _is_dequantized(name: str, producer: dict) -> bool:
    return name in producer and producer[name][1].op_type == "DequantizeLinear"


def _check_qdq_node(node, label: str, types: dict, initializers: dict, producer: dict):
    from onnx import numpy_helper

    if node.input[0] in ("vt_uv", "vt_weights"):
        yield "error", label, node.op_type, f"quantizes the view-transform table '{node.input[0]}'; keep it in float"
    zero = node.input[2] if len(node.input) > 2 and node.input[2] else None
    quantized = node.input[0] if node.op_type == "DequantizeLinear" else zero
    elem_type = types.get(quantized, (INT8, None))[0] if quantized else INT8
    if elem_type != INT8:
        yield "error", label, node.op_type, f"quantized type {dtype_name(elem_type)}: TensorRT 8.x/10.x Q/DQ is INT8"
    if zero in initializers and numpy_helper.to_array(initializers[zero]).any():
        yield "error", label, node.op_type, f"zero point '{zero}' is not 0: TensorRT quantization is symmetric"
    scale = initializers.get(node.input[1])
    axis = _attribute(node, "axis")
    if scale is not None and len(scale.dims) == 1 and scale.dims[0] > 1 and axis not in (0, None):
        yield "error", label, node.op_type, f"per-channel scale on axis {axis}; TensorRT needs axis 0 for weights"
