"""Occupancy results -> standard ROS messages, and back (for tests and for consumers written in Python).

- PointCloud2 of occupied voxel centres: fields x, y, z (float32), label (uint8), confidence (float32),
  point_step 20 (3 padding bytes after `label` keep `confidence` 4-byte aligned).
- nav_msgs/OccupancyGrid from the runtime's BEV cells (row = y index, column = x index; 0/100/-1).
- The dense grid as sensor_msgs/Image mono8, a "slice montage": height = Z * Y, width = X; rows
  k*Y .. (k+1)*Y-1 hold height layer k as a BEV image (row = y index, column = x index), the same
  layout as the OccupancyGrid. Pixel value = class id (17 free). Its geometry travels on a latched
  std_msgs/String (JSON, `grid_info_json`). See docs/readme/ros.md for why.
- MarkerArray: one CUBE_LIST per class present, coloured with the class palette.
"""

from __future__ import annotations

import json

import numpy as np
from easyocc.ros_node.images import byte_array, set_array_field, zero_bytes
from easyocc.runtime.contract.classes import CLASS_NAMES, FREE, PALETTE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec

GRID_LAYOUT = "mono8 slice montage: height = Z*Y, width = X, pixel (k*Y + j, i) = class of voxel (i, j, k)"
GRID_INFO_FORMAT = "easyocc-grid-info/1"

# PointCloud2 datatypes (sensor_msgs/PointField constants).
_INT8, _UINT8, _FLOAT32 = 1, 2, 7
CLOUD_DTYPE = np.dtype(
    {
        "names": ["x", "y", "z", "label", "confidence"],
        "formats": ["<f4", "<f4", "<f4", "u1", "<f4"],
        "offsets": [0, 4, 8, 12, 16],
        "itemsize": 20,
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


def bev_msg(bev: np.ndarray, grid: GridSpec, header, z_m: float = 0.0):
    """nav_msgs/OccupancyGrid from int8 cells [Y, X] (row = y index); origin = the grid's lower xy corner."""
    from nav_msgs.msg import OccupancyGrid

    size_x, size_y, _ = grid.shape
    if bev.shape != (size_y, size_x) or bev.dtype != np.int8:
        raise EasyOccError(f"BEV grid: expected int8 {(size_y, size_x)}, got {bev.dtype} {bev.shape}")
    msg = OccupancyGrid()
    msg.header = header
    msg.info.map_load_time = header.stamp
    msg.info.resolution = float(grid.voxel_size)
    msg.info.width, msg.info.height = size_x, size_y
    msg.info.origin.position.x, msg.info.origin.position.y = float(grid.lower[0]), float(grid.lower[1])
    msg.info.origin.position.z = float(z_m)
    msg.info.origin.orientation.w = 1.0
    set_array_field(msg, "data", byte_array("b", bev))
    return msg


def bev_from_msg(msg) -> np.ndarray:
    """nav_msgs/OccupancyGrid -> int8 [height, width] (row = y index)."""
    return np.frombuffer(msg.data, dtype=np.int8).reshape(msg.info.height, msg.info.width)


def dense_grid_msg(semantics: np.ndarray, grid: GridSpec, header):
    """sensor_msgs/Image mono8 slice montage (height Z*Y, width X) of semantics uint8 [X, Y, Z]."""
    from sensor_msgs.msg import Image

    if semantics.shape != grid.shape or semantics.dtype != np.uint8:
        raise EasyOccError(f"dense grid: expected uint8 {grid.shape}, got {semantics.dtype} {semantics.shape}")
    size_x, size_y, size_z = grid.shape
    montage = np.ascontiguousarray(semantics.transpose(2, 1, 0))  # [Z, Y, X]
    msg = Image()
    msg.header = header
    msg.height, msg.width = size_z * size_y, size_x
    msg.encoding = "mono8"
    msg.is_bigendian = 0
    msg.step = size_x
    set_array_field(msg, "data", byte_array("B", montage))
    return msg


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
            "model": manifest_summary,
        }
    )


def grid_from_info(text: str) -> GridSpec:
    """GridSpec from a grid_info JSON string."""
    data = json.loads(text)
    if data.get("format") != GRID_INFO_FORMAT:
        raise EasyOccError(f"grid info: format '{data.get('format')}' is not {GRID_INFO_FORMAT}")
    return GridSpec.from_dict(data["grid"])


def markers_msg(xyz: np.ndarray, labels: np.ndarray, grid: GridSpec, header, alpha: float = 1.0):
    """visualization_msgs/MarkerArray: one CUBE_LIST per class present (namespace = class name).

    The first marker is a DELETEALL so classes that vanish from one frame to the next disappear.
    """
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker, MarkerArray

    out = MarkerArray()
    clear = Marker()
    clear.header = header
    clear.action = Marker.DELETEALL
    out.markers.append(clear)
    for label in np.unique(labels):
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
