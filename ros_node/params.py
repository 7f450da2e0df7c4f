"""The node's parameters: one typed table declares them, parses them, validates them and documents them.

`NodeParameters` is a config dataclass of the project's one config system (a docstring and bounds
per field); `PARAMETERS` is the table derived from it: name, ROS type, default, range or choices,
description and when a change takes effect (live, at the next configure, or read-only). From the
table: `declare_parameters(node)` (ParameterDescriptors), `parse_parameter('name:=value')` (the `-p`
option of `easyocc ros run`), `launch_arguments()` / `launch_parameters()` (the launch file),
`markdown_table()` (docs/readme/ros.md; `python -m easyocc.ros_node.params` prints it), and
`read_config(node)` -> a validated NodeParameters or an EasyOccError naming the parameter.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml
from easyocc.runtime.contract import config as config_system
from easyocc.runtime.contract.config import setting
from easyocc.runtime.contract.errors import EasyOccError

BACKENDS = ("onnxruntime", "tensorrt")
RIG_SOURCES = ("file", "camera_info", "tf")
TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("reliable", "best_effort")
DURABILITIES = ("volatile", "transient_local")
LABEL = "parameter"


@dataclass(frozen=True)
class NodeParameters:
    """Every parameter of the occupancy node (validated in on_configure)."""

    model_path: str = ""
    """ONNX model (.onnx) or TensorRT engine (.engine/.plan) with its manifest (or model_file_path /
    engine_file_path: engine management)."""
    backend: str = setting("onnxruntime", choices=BACKENDS)
    """Inference backend."""
    threads: int = setting(0, min=0, max=256)
    """CPU threads for ONNX Runtime (0 = its default)."""
    providers: tuple[str, ...] = ()
    """ONNX Runtime execution providers in order (e.g. CUDAExecutionProvider, CPUExecutionProvider; CUDA
    needs onnxruntime-gpu); empty = TensorRT > CUDA > CPU among those installed."""
    model_file_path: str = ""
    """Engine management (backend tensorrt): the ONNX model the engine is built from on configure when it
    is missing, stale (TensorRT, GPU, precision, ONNX hash) or forced; with onnxruntime, the model to run."""
    engine_file_path: str = ""
    """Engine management: the engine to use or write ('' = a name in engine_cache_dir spelling out
    precision, GPU and TensorRT); one built by trtexec (no sidecar) is checked against the ONNX and kept."""
    force_engine_update: bool = False
    """Engine management: rebuild the engine on configure even when it matches."""
    engine_cache_dir: str = ""
    """Engine management: folder of generated engines and the timing cache ('' = beside the ONNX)."""
    engine_precision: str = setting("fp16", choices=("fp32", "fp16", "int8"))
    """Engine management: precision of a built engine."""
    rig_source: str = setting("file", choices=RIG_SOURCES)
    """Where the camera rig comes from: a rig file; CameraInfo intrinsics + extrinsics_file; or CameraInfo
    intrinsics + TF extrinsics (frame_id <- each CameraInfo's frame_id, as the vehicle's TF tree gives them)."""
    rig_file: str = ""
    """YAML rig file (calibration format); empty = the bundled nuScenes rig."""
    extrinsics_file: str = ""
    """With rig_source camera_info: a rig file whose ego_T_cam extrinsics are used."""
    camera_transforms: tuple[float, ...] = ()
    """With rig_source tf: the extrinsics without TF, 7 numbers per camera of camera_names, in its order:
    x y z qx qy qz qw of base_link_T_<camera optical frame>, as static_transform_publisher takes them
    (empty = look them up in TF)."""
    camera_info_timeout_s: float = setting(10.0, min=0.1, max=600.0)
    """With rig_source camera_info or tf: how long on_configure waits for every CameraInfo (and transform)."""
    camera_names: tuple[str, ...] = ()
    """Camera names (any order); empty = the model manifest's."""
    camera_topics: tuple[str, ...] = ()
    """Image topics, one per camera name; empty = <camera_namespace>/<name>/image_raw."""
    camera_namespace: str = "/cameras"
    """Prefix of the default image and camera_info topics."""
    image_transport: str = setting("raw", choices=TRANSPORTS)
    """raw (sensor_msgs/Image) or compressed (CompressedImage on <topic>/compressed)."""
    sync_tolerance_ms: float = setting(50.0, min=0.0, max=1000.0)
    """Largest spread of camera stamps within one frame (nuScenes: 42.6 ms)."""
    sync_queue_size: int = setting(4, min=1, max=100)
    """Messages kept per camera while waiting for the others."""
    stale_timeout_s: float = setting(0.75, min=0.01, max=60.0)
    """A camera silent this long is reported stale (diagnostics `inputs` WARN)."""
    frame_id: str = "base_link"
    """Frame of the outputs (the ego frame: x forward, y left, z up)."""
    bev_frame_id: str = ""
    """Frame of ~/occupancy/bev ('' = frame_id); another frame (odom, map) places the grid by TF at each
    frame's stamp (the cells stay vehicle-aligned; the origin pose carries the transform)."""
    publish_points: bool = True
    """Publish ~/occupancy/points (PointCloud2)."""
    publish_bev: bool = True
    """Publish ~/occupancy/bev (OccupancyGrid)."""
    publish_grid: bool = True
    """Publish ~/occupancy/grid (dense mono8 Image: class id, 255 = unobserved) and ~/occupancy/grid_info."""
    publish_grid_color: bool = True
    """Publish ~/occupancy/grid_color (the same montage in class colours, rgb8, for viewers)."""
    publish_markers: bool = False
    """Publish ~/occupancy/markers (MarkerArray; built only while someone subscribes)."""
    bev_z_band_m: tuple[float, float] = (-0.2, 2.2)
    """Height band [lo, hi] in metres that makes a BEV cell occupied."""
    input_reliability: str = setting("best_effort", choices=RELIABILITIES)
    """Camera subscription reliability (the sensor-data QoS default)."""
    input_depth: int = setting(5, min=1, max=1000)
    """Camera subscription history depth."""
    output_reliability: str = setting("reliable", choices=RELIABILITIES)
    """Occupancy output reliability."""
    output_depth: int = setting(1, min=1, max=1000)
    """Occupancy output history depth."""
    output_durability: str = setting("volatile", choices=DURABILITIES)
    """Occupancy output durability."""
    diagnostics_period_s: float = setting(1.0, min=0.05, max=60.0)
    """Period of /diagnostics messages (sooner when the level or the drop counts change)."""
    keep_heap: bool = True
    """Latency (glibc only): large buffers from the heap, never trimmed, prefaulted before the first
    frame; the node keeps its peak heap resident."""
    autostart: bool = True
    """Configure and activate on start, for every entry point (easyocc ros run, easyocc_node, the launch
    file); false leaves the node unconfigured, with a log line, for a lifecycle manager to drive."""

    def topics_for(self, camera_names) -> dict[str, str]:
        """camera name -> image topic (before the /compressed suffix of the compressed transport)."""
        names = tuple(camera_names)
        if self.camera_topics:
            if len(self.camera_topics) != len(names):
                raise EasyOccError(
                    f"parameter camera_topics: {len(self.camera_topics)} topics for {len(names)} cameras {list(names)}"
                )
            return dict(zip(names, self.camera_topics))
        return {name: f"{self.camera_namespace.rstrip('/')}/{name}/image_raw" for name in names}


LIVE = frozenset({"frame_id", "diagnostics_period_s"})
QOS_OVERRIDES = "qos_overrides."
"""Prefix of the per-topic QoS parameters rclpy declares for each output publisher (read-only, set at start):
qos_overrides./<node>/occupancy/<output>.publisher.<reliability|depth|durability|history>."""
"""Applied to the running node as soon as they are set (`ros2 param set`)."""
READ_ONLY = frozenset({"autostart"})
"""Only meaningful at start; declared read-only."""


@dataclass(frozen=True)
class ParameterSpec:
    """One row of the table."""

    name: str
    ros_type: str
    """string, integer, double, bool, string_array or double_array."""
    default: object
    """The default as ROS holds it (an empty string array is [''], which ROS can type)."""
    low: float | None
    high: float | None
    choices: tuple[str, ...]
    description: str
    applies: str
    """'live', 'configure' (at the next configure: cleanup + configure) or 'read-only'."""
    hint: object


def _ros_type(hint) -> str:
    return {
        str: "string",
        int: "integer",
        float: "double",
        bool: "bool",
        tuple[str, ...]: "string_array",
        tuple[float, float]: "double_array",
        tuple[float, ...]: "double_array",
    }[hint]


def _ros_value(value, ros_type: str):
    """A Python value as ROS declares it: arrays as lists ([''] for an empty string array)."""
    if ros_type == "string_array":
        return [str(v) for v in value] or [""]
    if ros_type == "double_array":
        return [float(v) for v in value]
    if ros_type == "double":
        return float(value)
    return value


def _table() -> dict[str, ParameterSpec]:
    hints = config_system.field_types(NodeParameters)
    docs = config_system.field_docs(NodeParameters)
    defaults = NodeParameters()
    rows = {}
    for f in dataclasses.fields(NodeParameters):
        ros_type = _ros_type(hints[f.name])
        rows[f.name] = ParameterSpec(
            name=f.name,
            ros_type=ros_type,
            default=_ros_value(getattr(defaults, f.name), ros_type),
            low=f.metadata.get("min"),
            high=f.metadata.get("max"),
            choices=tuple(f.metadata.get("choices", ())),
            description=docs[f.name],
            applies="live" if f.name in LIVE else "read-only" if f.name in READ_ONLY else "configure",
            hint=hints[f.name],
        )
    return rows


PARAMETERS: dict[str, ParameterSpec] = _table()


def _check_names(names) -> None:
    unknown = [name for name in names if name not in PARAMETERS]
    if unknown:
        raise EasyOccError(f"unknown parameter '{unknown[0]}'; known: {', '.join(PARAMETERS)}")


def _typed(values: dict) -> dict:
    """{name: value as ROS gives it} -> the values NodeParameters takes ('' dropped from string arrays)."""
    typed = {}
    for name, value in values.items():
        if PARAMETERS[name].ros_type == "string_array" and isinstance(value, (list, tuple)):
            value = [str(v) for v in value if str(v)]
        typed[name] = value
    return typed


def check_values(values: dict) -> NodeParameters:
    """Types, ranges and choices of a {name: value} mapping (missing names take their defaults; QoS
    overrides, which rclpy checks, are left out)."""
    values = {name: value for name, value in values.items() if not name.startswith(QOS_OVERRIDES)}
    _check_names(values)
    return config_system.build(NodeParameters, _typed(values), label=LABEL)


def parse_parameter(text: str) -> tuple[str, object]:
    """'name:=value' -> (name, value as ROS declares it), checked against the table; one-line errors."""
    name, sep, raw = text.partition(":=")
    if not sep:
        raise EasyOccError(f"parameter '{text}': expected name:=value")
    if name.startswith(QOS_OVERRIDES):  # rclpy checks these itself when it declares them
        value = yaml.safe_load(raw)
        return name, value if isinstance(value, int) and not isinstance(value, bool) else str(raw)
    _check_names([name])
    spec = PARAMETERS[name]
    value = config_system.parse_value(raw, spec.hint)
    if spec.ros_type == "string_array" and not isinstance(value, list):
        value = [] if value in (None, "") else [v.strip() for v in str(value).split(",")]
    if spec.ros_type == "double_array" and isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if value is None:
        value = ""
    checked = check_values({name: value})
    return name, _ros_value(getattr(checked, name), spec.ros_type)


def config_from_values(values: dict) -> NodeParameters:
    """Validate a {name: value} mapping into NodeParameters, with the checks across parameters and files."""
    config = check_values(values)
    if not (config.model_path or config.model_file_path or config.engine_file_path):
        raise EasyOccError(
            "parameter model_path is required (an .onnx model or a TensorRT engine), or model_file_path /"
            " engine_file_path for engine management"
        )
    if config.model_path and (config.model_file_path or config.engine_file_path):
        raise EasyOccError("give model_path, or model_file_path / engine_file_path (engine management), not both")
    if config.providers and config.backend != "onnxruntime":
        raise EasyOccError("parameter providers (ONNX Runtime execution providers) needs backend onnxruntime")
    if config.engine_file_path and config.backend != "tensorrt":
        raise EasyOccError("parameter engine_file_path needs backend tensorrt")
    for name in ("model_path", "model_file_path", "rig_file", "extrinsics_file"):
        path = getattr(config, name)
        if path and not Path(path).expanduser().is_file():
            raise EasyOccError(f"parameter {name}: file not found: {Path(path).expanduser()}")
    lo, hi = config.bev_z_band_m
    if not lo < hi:
        raise EasyOccError(f"parameter bev_z_band_m: expected [lo, hi] with lo < hi, got {[lo, hi]}")
    if config.rig_source == "camera_info" and not config.extrinsics_file:
        raise EasyOccError("parameter extrinsics_file is required when rig_source is camera_info")
    if config.rig_source == "tf" and not config.camera_names:
        raise EasyOccError("parameter camera_names is required when rig_source is tf (they name the CameraInfo topics)")
    if config.camera_transforms and len(config.camera_transforms) != 7 * len(config.camera_names):
        raise EasyOccError(
            f"parameter camera_transforms: {len(config.camera_transforms)} numbers, expected 7 per camera"
            f" (x y z qx qy qz qw) for {len(config.camera_names)} camera_names"
        )
    if not config.frame_id.strip():
        raise EasyOccError("parameter frame_id must not be empty")
    return config


def _descriptor(spec: ParameterSpec):
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    descriptor = ParameterDescriptor(
        name=spec.name,
        type=getattr(ParameterType, f"PARAMETER_{spec.ros_type.upper()}"),
        description=spec.description,
        read_only=spec.applies == "read-only",
    )
    if spec.ros_type == "double_array" and not spec.default:
        # rclpy types an empty list as a byte array; dynamic typing lets a value set it (checked by the table)
        descriptor.dynamic_typing = True
    if spec.choices:
        descriptor.additional_constraints = f"one of: {', '.join(spec.choices)}"
    elif spec.low is not None and spec.ros_type == "integer":
        descriptor.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)]
    elif spec.low is not None and spec.ros_type == "double":
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high))]
    return descriptor


def declare_parameters(node) -> None:
    """Declare every parameter of the table on `node` (idempotent)."""
    for name, spec in PARAMETERS.items():
        if not node.has_parameter(name):
            node.declare_parameter(name, spec.default, _descriptor(spec))


def read_config(node) -> NodeParameters:
    """The node's current parameters, validated."""
    return config_from_values({name: node.get_parameter(name).value for name in PARAMETERS})


def check_update(parameters) -> tuple[str, dict]:
    """For an on-set-parameters callback: ('' or the one-line reason to refuse, {live name: value})."""
    values = {p.name: p.value for p in parameters if p.name in PARAMETERS}
    try:
        checked = check_values(values)
    except EasyOccError as exc:
        return str(exc), {}
    return "", {name: getattr(checked, name) for name in values if name in LIVE}


def launch_arguments() -> list[tuple[str, str, str]]:
    """(name, default as launch text, description) for every parameter: the launch file's arguments."""
    return [(name, _launch_text(spec), spec.description) for name, spec in PARAMETERS.items()]


def _launch_text(spec: ParameterSpec) -> str:
    if spec.ros_type == "string":
        return spec.default
    return yaml.safe_dump(spec.default, default_flow_style=True).strip().removesuffix("...").strip()


def launch_parameters(texts: dict[str, str]) -> dict:
    """The launch arguments' text values -> {name: typed value} of those that differ from the defaults,
    parsed and checked like `-p name:=value`."""
    values = {}
    for name, text in texts.items():
        if name in PARAMETERS and text != _launch_text(PARAMETERS[name]):
            values[name] = parse_parameter(f"{name}:={text}")[1]
    return values


def markdown_table() -> str:
    """The parameter table of docs/readme/ros.md."""

    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| parameter | type | default | range | applies | meaning |", "| --- | --- | --- | --- | --- | --- |"]
    for spec in PARAMETERS.values():
        default = "(required)" if spec.name == "model_path" else _launch_text(spec) or '""'
        bounds = ", ".join(spec.choices) if spec.choices else "" if spec.low is None else f"[{spec.low}, {spec.high}]"
        lines.append(
            f"| `{spec.name}` | {spec.ros_type} | {cell(default)} | {cell(bounds)} | {spec.applies} "
            f"| {cell(spec.description)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
