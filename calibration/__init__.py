"""Camera rig calibration: cameras, projection, image resize/crop of intrinsics, view-transform tables.

Depends on numpy, OpenCV and PyYAML only.
"""

from easyocc.calibration.camera import Camera, CameraRig
from easyocc.calibration.errors import EasyOccError
from easyocc.calibration.geometry import (
    invert_transform,
    make_transform,
    quaternion_to_matrix,
    transform_from_nuscenes,
    transform_points,
)
from easyocc.calibration.image_ops import resize_and_crop
from easyocc.calibration.rig_io import (
    NUSCENES_CAMERAS,
    camera_from_camera_info,
    camera_from_nuscenes,
    default_rig,
    load_rig,
    rig_from_dict,
    rig_to_dict,
    save_rig,
)
from easyocc.calibration.view_transform import ViewTransformTables, build_view_transform

__all__ = [
    "NUSCENES_CAMERAS",
    "Camera",
    "CameraRig",
    "EasyOccError",
    "ViewTransformTables",
    "build_view_transform",
    "camera_from_camera_info",
    "camera_from_nuscenes",
    "default_rig",
    "invert_transform",
    "load_rig",
    "make_transform",
    "quaternion_to_matrix",
    "resize_and_crop",
    "rig_from_dict",
    "rig_to_dict",
    "save_rig",
    "transform_from_nuscenes",
    "transform_points",
]
