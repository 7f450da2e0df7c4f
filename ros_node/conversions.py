"""Occupancy results -> standard ROS messages, and back (for tests and for consumers written in Python).

- PointCloud2 of occupied voxel centres: fields x, y, z (float32), label (uint8), confidence (float32),
  rgb (the class colour as RViz and Foxglove read it: the uint32 0x00RRGGBB reinterpreted as float32),
  point_step 24 (3 padding bytes after `label` keep `confidence` 4-byte aligned).
- nav_msgs/OccupancyGrid from the runtime's BEV cells (row = y index, column = x index; 0/100/-1), in
  the ego frame or, given target_T_ego (from TF), in another frame such as odom or map.
- The dense grid as sensor_msgs/Image mono8, a "slice montage": height = Z * Y, width = X; rows
  k*Y .. (k+1)*Y-1 hold height layer k as a BEV image (row = y index, column = x index), the same
  layout as the OccupancyGrid. Pixel value = class id (17 free), UNOBSERVED (255) for a voxel no camera
  sees. Its geometry travels on a latched std_msgs/String (JSON, `grid_info_json`). The same montage
  in rgb8 class colours (`colour_grid_msg`) is for viewers. See docs/readme/ros.md for why.
- MarkerArray: one CUBE_LIST per class present, coloured with the class palette; `markers_bytes`
  builds its serialised form directly (milliseconds instead of a second of Python objects).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
from easyocc.ros_node.images import byte_array, set_array_field, zero_bytes
from easyocc.runtime.contract.classes import CLASS_NAMES, FREE, PALETTE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec

GRID_LAYOUT = "mono8 slice montage: height = Z*Y, width = X, pixel (k*Y + j, i) = class of voxel (i, j, k)"
GRID_INFO_FORMAT = "easyocc-grid-info/1"
UNOBSERVED = 255
"""Dense-grid value of a voxel outside every (present) camera's view."""

# The class colour of each pixel value of the dense grid, for viewers: palette, free dark grey, unobserved black.
GRID_COLOURS = np.zeros((256, 3), np.uint8)
GRID_COLOURS[:FREE] = PALETTE[:FREE]
GRID_COLOURS[FREE] = (40, 40, 40)
# The cloud's rgb field per class: 0x00RRGGBB, as PCL packs it and RViz's RGB8 transformer unpacks it.
RGB_PACKED = (
    (PALETTE[:, 0].astype(np.uint32) << 16) | (PALETTE[:, 1].astype(np.uint32) << 8) | PALETTE[:, 2].astype(np.uint32)
)

# PointCloud2 datatypes (sensor_msgs/PointField constants).
_INT8, _UINT8, _FLOAT32 = 1, 2, 7
CLOUD_DTYPE = np.dtype(
    {
        "names": ["x", "y", "z", "label", "confidence", "rgb"],
        "formats": ["<f4", "<f4", "<f4", "u1", "<f4", "<u4"],  # rgb: written as uint32, declared FLOAT32
        "offsets": [0, 4, 8, 12, 16, 20],
        "itemsize": 24,
    }
)
_ROS_TO_NUMPY = {1: "i1", 2: "u1", 3: "<i2", 4: "<u2", 5: "<i4", 6: "<u4", 7: "<f4", 8: "<f8"}


def make_header(stamp_us: int, frame_id: str):
    """std_msgs/Header with a microsecond stamp."""
    from easyocc.ros_node.images import us_to_stamp
    from std_msgs.msg import Header

    header = Header()
    us_to_stamp(stamp_us, header.stamp)
    header.frame_id = frame_id
    return header


def cloud_msg(xyz: np.ndarray, labels: np.ndarray, confidence: np.ndarray, header):
    """PointCloud2 (unorganised, height 1) from xyz float32 [M, 3] metres, labels uint8 [M], confidence [M]."""
    from sensor_msgs.msg import PointCloud2, PointField

    count = int(labels.shape[0])
    if xyz.shape != (count, 3) or confidence.shape != (count,):
        raise EasyOccError(
            f"point cloud: xyz {xyz.shape}, labels {labels.shape}, confidence {confidence.shape} disagree"
        )
    data = zero_bytes(CLOUD_DTYPE.itemsize * count)  # zeroed: the padding bytes go out as 0
    points = np.frombuffer(data, dtype=CLOUD_DTYPE)  # a view: the fields are written into the message buffer
    points["x"], points["y"], points["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    points["label"] = labels
    points["confidence"] = confidence
    points["rgb"] = RGB_PACKED[labels]
    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = 1, count
    msg.fields = [
        PointField(name=name, offset=CLOUD_DTYPE.fields[name][1], datatype=datatype, count=1)
        for name, datatype in (
            ("x", _FLOAT32),
            ("y", _FLOAT32),
            ("z", _FLOAT32),
            ("label", _UINT8),
            ("confidence", _FLOAT32),
            ("rgb", _FLOAT32),  # RViz and Foxglove expect the packed colour as a FLOAT32 field named rgb
        )
    ]
    msg.is_bigendian = False
    msg.point_step = CLOUD_DTYPE.itemsize
    msg.row_step = CLOUD_DTYPE.itemsize * count
    msg.is_dense = True
    set_array_field(msg, "data", data)
    return msg


def cloud_to_arrays(msg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PointCloud2 with fields x, y, z, label, confidence -> (xyz float32 [M, 3], labels uint8 [M], confidence [M])."""
    if msg.is_bigendian:
        raise EasyOccError("point cloud: big-endian data is not supported")
    fields = {f.name: f for f in msg.fields}
    for name in ("x", "y", "z", "label", "confidence"):
        if name not in fields:
            raise EasyOccError(f"point cloud: field '{name}' is missing (has {', '.join(fields)})")
    dtype = np.dtype(
        {
            "names": list(fields),
            "formats": [_ROS_TO_NUMPY[f.datatype] for f in fields.values()],
            "offsets": [f.offset for f in fields.values()],
            "itemsize": msg.point_step,
        }
    )
    points = np.frombuffer(msg.data, dtype=dtype, count=msg.width * msg.height)
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float32)
    return xyz, points["label"].astype(np.uint8), points["confidence"].astype(np.float32)


def cloud_rgb(msg) -> np.ndarray:
    """The rgb field of a PointCloud2 as uint32 0x00RRGGBB [M] (its FLOAT32 bytes read as an integer)."""
    fields = {f.name: f for f in msg.fields}
    if "rgb" not in fields:
        raise EasyOccError(f"point cloud: field 'rgb' is missing (has {', '.join(fields)})")
    dtype = np.dtype(
        {"names": ["rgb"], "formats": ["<u4"], "offsets": [fields["rgb"].offset], "itemsize": msg.point_step}
    )
    return np.frombuffer(msg.data, dtype=dtype, count=msg.width * msg.height)["rgb"].copy()


def bev_msg(bev: np.ndarray, grid: GridSpec, header, z_m: float = 0.0, target_T_ego: np.ndarray | None = None):
    """nav_msgs/OccupancyGrid from int8 cells [Y, X] (row = y index); origin = the grid's lower xy corner.

    With target_T_ego (4x4, e.g. odom_T_base_link from TF at the frame's stamp) the cells stay aligned
    with the vehicle and the origin pose (position and orientation) is given in the target frame, which
    header.frame_id must name; OccupancyGrid's origin is a full pose (RViz places it; consumers that assume
    a map-aligned grid and ignore the orientation would need it resampled).
    """
    from easyocc.calibration.geometry import matrix_to_quaternion
    from nav_msgs.msg import OccupancyGrid

    size_x, size_y, _ = grid.shape
    if bev.shape != (size_y, size_x) or bev.dtype != np.int8:
        raise EasyOccError(f"BEV grid: expected int8 {(size_y, size_x)}, got {bev.dtype} {bev.shape}")
    msg = OccupancyGrid()
    msg.header = header
    msg.info.map_load_time = header.stamp
    msg.info.resolution = float(grid.voxel_size)
    msg.info.width, msg.info.height = size_x, size_y
    corner_ego = np.array([grid.lower[0], grid.lower[1], z_m, 1.0])
    target_T_ego = np.eye(4) if target_T_ego is None else np.asarray(target_T_ego, np.float64)
    if target_T_ego.shape != (4, 4) or not np.isfinite(target_T_ego).all():
        raise EasyOccError(f"BEV grid: target_T_ego must be a finite 4x4 transform, got shape {target_T_ego.shape}")
    x, y, z = (target_T_ego @ corner_ego)[:3]
    msg.info.origin.position.x, msg.info.origin.position.y, msg.info.origin.position.z = float(x), float(y), float(z)
    w, qx, qy, qz = matrix_to_quaternion(target_T_ego[:3, :3])
    orientation = msg.info.origin.orientation
    orientation.w, orientation.x, orientation.y, orientation.z = float(w), float(qx), float(qy), float(qz)
    set_array_field(msg, "data", byte_array("b", bev))
    return msg


def bev_from_msg(msg) -> np.ndarray:
    """nav_msgs/OccupancyGrid -> int8 [height, width] (row = y index)."""
    return np.frombuffer(msg.data, dtype=np.int8).reshape(msg.info.height, msg.info.width)


def _montage(semantics: np.ndarray, grid: GridSpec, observed: np.ndarray | None) -> np.ndarray:
    """uint8 [Z, Y, X]: the slice montage's pixels, UNOBSERVED where `observed` (bool [X, Y, Z]) is False."""
    if semantics.shape != grid.shape or semantics.dtype != np.uint8:
        raise EasyOccError(f"dense grid: expected uint8 {grid.shape}, got {semantics.dtype} {semantics.shape}")
    if observed is not None:
        if observed.shape != grid.shape:
            raise EasyOccError(f"dense grid: observed mask has shape {observed.shape}, the grid {grid.shape}")
        semantics = np.where(observed, semantics, np.uint8(UNOBSERVED))
    return np.ascontiguousarray(semantics.transpose(2, 1, 0))


def _image(header, height: int, width: int, encoding: str, pixels: np.ndarray):
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header = header
    msg.height, msg.width = height, width
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = width * (3 if encoding == "rgb8" else 1)
    set_array_field(msg, "data", byte_array("B", pixels))
    return msg


def dense_grid_msg(semantics: np.ndarray, grid: GridSpec, header, observed: np.ndarray | None = None):
    """sensor_msgs/Image mono8 slice montage (height Z*Y, width X) of semantics uint8 [X, Y, Z]; voxels
    where `observed` (bool [X, Y, Z], the cameras' visibility) is False read UNOBSERVED (255)."""
    size_x, size_y, size_z = grid.shape
    return _image(header, size_z * size_y, size_x, "mono8", _montage(semantics, grid, observed))


def colour_grid_msg(semantics: np.ndarray, grid: GridSpec, header, observed: np.ndarray | None = None):
    """The same slice montage as rgb8 in class colours (GRID_COLOURS: free dark grey, unobserved black)."""
    size_x, size_y, size_z = grid.shape
    montage = _montage(semantics, grid, observed).reshape(size_z * size_y, size_x)
    # a table lookup per channel (cv2.LUT): ~10x faster than GRID_COLOURS[montage]
    pixels = cv2.LUT(cv2.merge([montage, montage, montage]), GRID_COLOURS.reshape(256, 1, 3))
    return _image(header, size_z * size_y, size_x, "rgb8", pixels)


def dense_grid_from_msg(msg, grid: GridSpec) -> np.ndarray:
    """The slice-montage Image back to uint8 [X, Y, Z] for `grid` (raises when the sizes disagree)."""
    size_x, size_y, size_z = grid.shape
    if (msg.width, msg.height, msg.step, msg.encoding) != (size_x, size_z * size_y, size_x, "mono8"):
        raise EasyOccError(
            f"dense grid: image {msg.width}x{msg.height} {msg.encoding} does not match grid {grid.describe()}"
        )
    return np.frombuffer(msg.data, dtype=np.uint8).reshape(size_z, size_y, size_x).transpose(2, 1, 0)


def grid_info_json(grid: GridSpec, frame_id: str, manifest_summary: str = "") -> str:
    """The dense grid's geometry and meaning, published latched beside it (std_msgs/String)."""
    return json.dumps(
        {
            "format": GRID_INFO_FORMAT,
            "frame_id": frame_id,
            "grid": grid.to_dict(),
            "layout": GRID_LAYOUT,
            "class_names": list(CLASS_NAMES),
            "free_class": FREE,
            "unobserved_value": UNOBSERVED,
            "model": manifest_summary,
        }
    )


def grid_from_info(text: str) -> GridSpec:
    """GridSpec from a grid_info JSON string."""
    data = json.loads(text)
    if data.get("format") != GRID_INFO_FORMAT:
        raise EasyOccError(f"grid info: format '{data.get('format')}' is not {GRID_INFO_FORMAT}")
    return GridSpec.from_dict(data["grid"])


def markers_msg(xyz: np.ndarray, labels: np.ndarray, grid: GridSpec, header, alpha: float = 1.0, classes=None):
    """visualization_msgs/MarkerArray: one CUBE_LIST per class present (namespace = class name), or per
    class of `classes` when given.

    The first marker is a DELETEALL so classes that vanish from one frame to the next disappear.
    """
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker, MarkerArray

    out = MarkerArray()
    clear = Marker()
    clear.header = header
    clear.action = Marker.DELETEALL
    out.markers.append(clear)
    for label in np.unique(labels) if classes is None else classes:
        marker = Marker()
        marker.header = header
        marker.ns = CLASS_NAMES[int(label)]
        marker.id = int(label)
        marker.type = Marker.CUBE_LIST
        marker.action = Marker.ADD
        marker.pose.orientation.w = 1.0
        marker.scale.x = marker.scale.y = marker.scale.z = float(grid.voxel_size)
        red, green, blue = (float(c) / 255.0 for c in PALETTE[int(label)])
        marker.color.r, marker.color.g, marker.color.b, marker.color.a = red, green, blue, float(alpha)
        marker.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in xyz[labels == label].tolist()]
        out.markers.append(marker)
    return out


_SENTINEL_BASE = 123456.0  # marker m's template point is (base + m, -(base + m), 0.25): unique bytes


def markers_bytes(xyz: np.ndarray, labels: np.ndarray, grid: GridSpec, header, alpha: float = 1.0) -> bytes:
    """The serialised (CDR) MarkerArray of `markers_msg`, built without a Python object per point.

    rclpy takes a message's serialised bytes in Publisher.publish. A template array (the same markers,
    each with one sentinel point) is serialised by rclpy, then each sentinel is replaced by the class's
    points as float64 triples and its sequence length by their count. A Point is 24 bytes, a multiple
    of CDR's 8-byte alignment, so every later field keeps its alignment: the result is what rclpy would
    serialise (tests/ros_node/test_conversions.py compares them), whatever the distribution's Marker fields.
    """
    from geometry_msgs.msg import Point
    from rclpy.serialization import serialize_message

    counts = np.bincount(labels, minlength=256)
    present = np.flatnonzero(counts)  # np.unique, without its sort or hash
    counts = counts[present]
    template = markers_msg(np.zeros((0, 3), np.float32), np.zeros(0, np.uint8), grid, header, alpha, present)
    for index, marker in enumerate(template.markers[1:]):
        marker.points = [Point(x=_SENTINEL_BASE + index, y=-(_SENTINEL_BASE + index), z=0.25)]
    data = serialize_message(template)
    # points grouped by class, each class in its order in `labels` (np.take: ~4x faster than xyz[order])
    grouped = np.take(xyz, np.argsort(labels, kind="stable"), axis=0)
    out = np.empty(len(data) + 24 * int(counts.sum()) - 24 * len(present), np.uint8)
    source = target = taken = 0
    for index, count in enumerate(counts.tolist()):
        sentinel = np.array([_SENTINEL_BASE + index, -(_SENTINEL_BASE + index), 0.25], "<f8").tobytes()
        at = data.find(sentinel, source)
        # the uint32 length sits right before the point, or before 4 bytes of padding to the 8-byte boundary
        length_at = at - 4 if data[at - 4 : at] == b"\x01\0\0\0" else at - 8
        if at < 8 or data[length_at : length_at + 4] != b"\x01\0\0\0":
            raise EasyOccError("marker array: the template's point sequence was not found in its serialised bytes")
        head = np.frombuffer(data, np.uint8, at - source, source)
        out[target : target + len(head)] = head
        out[target + length_at - source : target + length_at - source + 4] = np.frombuffer(
            np.uint32(count).tobytes(), np.uint8
        )
        target += len(head)
        # widened to float64 straight into the message bytes
        np.copyto(out[target : target + 24 * count].view("<f8").reshape(count, 3), grouped[taken : taken + count])
        target, source, taken = target + 24 * count, at + 24, taken + count
    out[target:] = np.frombuffer(data, np.uint8, len(data) - source, source)
    return out.tobytes()
