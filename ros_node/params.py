"""The node's parameters: one table declares them (with descriptors) and one function validates them.

`declare_parameters(node)` declares every parameter with a ParameterDescriptor (description, type,
ranges, read-only where a change needs a reconfigure); `read_config(node)` returns a frozen
`NodeConfig` or raises EasyOccError naming the bad parameter. Nothing else reads parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from easyocc.runtime.contract.errors import EasyOccError

BACKENDS = ("onnxruntime", "tensorrt")
RIG_SOURCES = ("file", "camera_info")
TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("reliable", "best_effort")
DURABILITIES = ("volatile", "transient_local")

# name -> (default, description, extra); extra: tuple of choices, or (lo, hi) range for numbers.
PARAMETERS: dict[str, tuple] = {
    "model_path": ("", "ONNX model (.onnx) or TensorRT engine (.engine/.plan) with its manifest", None),
    "backend": ("onnxruntime", "inference backend", BACKENDS),
    "threads": (0, "CPU threads for ONNX Runtime (0 = its default)", (0, 256)),
    "rig_source": (
        "file",
        "where the camera rig comes from: a rig file, or CameraInfo topics + extrinsics file",
        RIG_SOURCES,
    ),
    "rig_file": ("", "YAML rig file (calibration format); empty = the bundled nuScenes rig", None),
    "extrinsics_file": ("", "with rig_source camera_info: a rig file whose ego_T_cam extrinsics are used", None),
    "camera_info_timeout_s": (
        10.0,
        "with rig_source camera_info: how long on_configure waits for CameraInfo",
        (0.1, 600.0),
    ),
    "camera_names": ([""], "camera names in model order; empty = the model manifest's", None),
    "camera_topics": ([""], "image topics, one per camera name; empty = <camera_namespace>/<name>/image_raw", None),
    "camera_namespace": ("/cameras", "prefix of the default image and camera_info topics", None),
    "image_transport": (
        "raw",
        "raw (sensor_msgs/Image) or compressed (CompressedImage on <topic>/compressed)",
        TRANSPORTS,
    ),
    "sync_tolerance_ms": (50.0, "largest spread of camera stamps within one frame", (0.0, 1000.0)),
    "sync_queue_size": (4, "messages kept per camera while waiting for the others", (1, 100)),
    "stale_timeout_s": (0.75, "a camera silent this long is reported stale (diagnostics WARN)", (0.01, 60.0)),
    "frame_id": ("base_link", "frame of the outputs (the ego frame: x forward, y left, z up)", None),
    "publish_points": (True, "publish ~/occupancy/points (PointCloud2)", None),
    "publish_bev": (True, "publish ~/occupancy/bev (OccupancyGrid)", None),
    "publish_grid": (True, "publish ~/occupancy/grid (dense mono8 Image) and ~/occupancy/grid_info", None),
    "publish_markers": (False, "publish ~/occupancy/markers (MarkerArray, costly for large scenes)", None),
    "bev_z_band_m": ([-0.2, 2.2], "height band [lo, hi] metres that makes a BEV cell occupied", None),
    "input_reliability": ("best_effort", "camera subscription reliability (sensor-data QoS default)", RELIABILITIES),
    "input_depth": (5, "camera subscription history depth", (1, 1000)),
    "output_reliability": ("reliable", "occupancy output reliability", RELIABILITIES),
    "output_depth": (1, "occupancy output history depth", (1, 1000)),
    "output_durability": ("volatile", "occupancy output durability", DURABILITIES),
    "diagnostics_period_s": (1.0, "period of /diagnostics messages (sooner when the level changes)", (0.05, 60.0)),
    "keep_heap": (
        True,
        "latency: allocate large buffers from the heap, never trim it and prefault it before the first frame"
        " (glibc; the node keeps its peak memory resident)",
        None,
    ),
    "autostart": (False, "configure and activate on start (the CLI and launch file set it)", None),
}


@dataclass(frozen=True)
class NodeConfig:
    """Validated parameters; see PARAMETERS for the meaning of each field."""

    model_path: Path
    backend: str
    threads: int
    rig_source: str
    rig_file: Path | None
    extrinsics_file: Path | None
    camera_info_timeout_s: float
    camera_names: tuple[str, ...]
    camera_topics: tuple[str, ...]
    camera_namespace: str
    image_transport: str
    sync_tolerance_ms: float
    sync_queue_size: int
    stale_timeout_s: float
    frame_id: str
    publish_points: bool
    publish_bev: bool
    publish_grid: bool
    publish_markers: bool
    bev_z_band_m: tuple[float, float]
    input_reliability: str
    input_depth: int
    output_reliability: str
    output_depth: int
    output_durability: str
    diagnostics_period_s: float
    keep_heap: bool
    autostart: bool

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


def _descriptor(name: str, default, description: str, extra):
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    descriptor = ParameterDescriptor(name=name, description=description)
    if isinstance(extra, tuple) and extra and isinstance(extra[0], str):
        descriptor.additional_constraints = f"one of: {', '.join(extra)}"
    elif isinstance(extra, tuple) and isinstance(default, bool) is False and isinstance(default, int):
        descriptor.integer_range = [IntegerRange(from_value=int(extra[0]), to_value=int(extra[1]), step=1)]
    elif isinstance(extra, tuple) and isinstance(default, float):
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(extra[0]), to_value=float(extra[1]))]
    return descriptor


def declare_parameters(node) -> None:
    """Declare every parameter of PARAMETERS on `node` (idempotent)."""
    for name, (default, description, extra) in PARAMETERS.items():
        if not node.has_parameter(name):
            node.declare_parameter(name, default, _descriptor(name, default, description, extra))


def _choice(name: str, value: str) -> str:
    choices = PARAMETERS[name][2]
    if value not in choices:
        raise EasyOccError(f"parameter {name}: '{value}' is not one of {', '.join(choices)}")
    return value


def _strings(value) -> tuple[str, ...]:
    return tuple(str(v) for v in (value or ()) if str(v))


def _existing(name: str, value: str) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise EasyOccError(f"parameter {name}: file not found: {path}")
    return path


def config_from_values(values: dict) -> NodeConfig:
    """Validate a {name: value} mapping (missing names take their defaults) into a NodeConfig."""
    unknown = sorted(set(values) - set(PARAMETERS))
    if unknown:
        raise EasyOccError(f"unknown parameter(s): {', '.join(unknown)}")
    v = {name: values.get(name, spec[0]) for name, spec in PARAMETERS.items()}
    if not v["model_path"]:
        raise EasyOccError("parameter model_path is required (an .onnx model or a TensorRT engine)")
    band = tuple(float(x) for x in v["bev_z_band_m"])
    if len(band) != 2 or not band[0] < band[1]:
        raise EasyOccError(f"parameter bev_z_band_m: expected [lo, hi] with lo < hi, got {list(band)}")
    rig_source = _choice("rig_source", v["rig_source"])
    extrinsics = _existing("extrinsics_file", v["extrinsics_file"])
    if rig_source == "camera_info" and extrinsics is None:
        raise EasyOccError("parameter extrinsics_file is required when rig_source is camera_info")
    if not str(v["frame_id"]).strip():
        raise EasyOccError("parameter frame_id must not be empty")
    for name, (_, _, extra) in PARAMETERS.items():
        if isinstance(extra, tuple) and len(extra) == 2 and not isinstance(extra[0], str):
            if not extra[0] <= v[name] <= extra[1]:
                raise EasyOccError(f"parameter {name}: {v[name]} is outside [{extra[0]}, {extra[1]}]")
    return NodeConfig(
        model_path=_existing("model_path", v["model_path"]),
        backend=_choice("backend", v["backend"]),
        threads=int(v["threads"]),
        rig_source=rig_source,
        rig_file=_existing("rig_file", v["rig_file"]),
        extrinsics_file=extrinsics,
        camera_info_timeout_s=float(v["camera_info_timeout_s"]),
        camera_names=_strings(v["camera_names"]),
        camera_topics=_strings(v["camera_topics"]),
        camera_namespace=str(v["camera_namespace"]),
        image_transport=_choice("image_transport", v["image_transport"]),
        sync_tolerance_ms=float(v["sync_tolerance_ms"]),
        sync_queue_size=int(v["sync_queue_size"]),
        stale_timeout_s=float(v["stale_timeout_s"]),
        frame_id=str(v["frame_id"]),
        publish_points=bool(v["publish_points"]),
        publish_bev=bool(v["publish_bev"]),
        publish_grid=bool(v["publish_grid"]),
        publish_markers=bool(v["publish_markers"]),
        bev_z_band_m=band,
        input_reliability=_choice("input_reliability", v["input_reliability"]),
        input_depth=int(v["input_depth"]),
        output_reliability=_choice("output_reliability", v["output_reliability"]),
        output_depth=int(v["output_depth"]),
        output_durability=_choice("output_durability", v["output_durability"]),
        diagnostics_period_s=float(v["diagnostics_period_s"]),
        keep_heap=bool(v["keep_heap"]),
        autostart=bool(v["autostart"]),
    )


def read_config(node) -> NodeConfig:
    """The node's current parameters, validated."""
    return config_from_values({name: node.get_parameter(name).value for name in PARAMETERS})
