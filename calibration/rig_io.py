"""Camera rigs from and to files and other sources: YAML rig files, nuScenes tables, ROS CameraInfo."""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import yaml
from easyocc.calibration.camera import Camera, CameraRig
from easyocc.calibration.errors import EasyOccError
from easyocc.calibration.geometry import make_transform, matrix_to_quaternion, quaternion_to_matrix

RIG_FILE_VERSION = 1
DEFAULT_RIG_RESOURCE = "nuscenes_rig.yaml"
# The one list of the nuScenes camera channels, in the dataset's (and the default rig's) order.
NUSCENES_CAMERAS: tuple[str, ...] = (
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
)
RIG_KEYS = ("version", "cameras")
CAMERA_KEYS = ("name", "width", "height", "K", "dist", "ego_T_cam")
EXTRINSIC_KEYS = ("translation", "rotation_wxyz")


def _field(mapping, key: str, where: str):
    if not isinstance(mapping, dict):
        raise EasyOccError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    if key not in mapping:
        raise EasyOccError(f"{where}: missing field '{key}'")
    return mapping[key]


def _known_keys(mapping: dict, known: tuple[str, ...], where: str) -> None:
    """Refuse a key the rig format does not have (a typo such as `distortion:` for `dist:` would
    otherwise be silently ignored)."""
    for key in mapping:
        if key not in known:
            raise EasyOccError(f"{where}: unknown key '{key}'; known: {', '.join(known)}")


def _extrinsic_from_dict(value, where: str) -> np.ndarray:
    """`ego_T_cam` as a 4x4 matrix or as {translation: [x, y, z], rotation_wxyz: [w, x, y, z]}."""
    if isinstance(value, dict):
        _known_keys(value, EXTRINSIC_KEYS, where)
        translation = np.asarray(_field(value, "translation", where), dtype=np.float64)
        rotation = _field(value, "rotation_wxyz", where)
        if translation.shape != (3,):
            raise EasyOccError(f"{where}: translation must have 3 values, got shape {translation.shape}")
        try:
            rotation_matrix = quaternion_to_matrix(rotation)
        except EasyOccError as exc:
            raise EasyOccError(f"{where}: {exc}") from None
        if not np.all(np.isfinite(translation)):
            raise EasyOccError(f"{where}: translation contains NaN or inf")
        # A quaternion that is far from unit length is a typo, not a rotation.
        if abs(np.linalg.norm(np.asarray(rotation, dtype=np.float64)) - 1.0) > 1e-3:
            raise EasyOccError(f"{where}: rotation_wxyz is not a unit quaternion (norm != 1)")
        return make_transform(rotation_matrix, translation)
    return np.asarray(value, dtype=np.float64)


def camera_from_dict(entry: dict, index: int = 0) -> Camera:
    """One camera from a rig-file entry (see `rig_to_dict` for the layout)."""
    name = _field(entry, "name", f"rig camera #{index}")
    where = f"rig camera {name}"
    _known_keys(entry, CAMERA_KEYS, where)
    return Camera(
        name=str(name),
        K=_field(entry, "K", where),
        width=_field(entry, "width", where),
        height=_field(entry, "height", where),
        ego_T_cam=_extrinsic_from_dict(_field(entry, "ego_T_cam", where), f"{where}: ego_T_cam"),
        dist=entry.get("dist") or [],
    )


def rig_from_dict(data: dict) -> CameraRig:
    cameras = _field(data, "cameras", "rig file")
    _known_keys(data, RIG_KEYS, "rig file")
    if not isinstance(cameras, list) or not cameras:
        raise EasyOccError("rig file: 'cameras' must be a non-empty list")
    return CameraRig(camera_from_dict(entry, i) for i, entry in enumerate(cameras))


def rig_to_dict(rig: CameraRig) -> dict:
    """A human-editable dict: K as rows, extrinsics as translation plus a [w, x, y, z] quaternion."""
    cameras = []
    for camera in rig:
        cameras.append(
            {
                "name": camera.name,
                "width": camera.width,
                "height": camera.height,
                "K": [[round(float(v), 6) for v in row] for row in camera.K],
                "dist": [float(v) for v in camera.dist],
                "ego_T_cam": {
                    "translation": [round(float(v), 9) for v in camera.ego_T_cam[:3, 3]],
                    "rotation_wxyz": [round(float(v), 12) for v in matrix_to_quaternion(camera.ego_T_cam[:3, :3])],
                },
            }
        )
    return {"version": RIG_FILE_VERSION, "cameras": cameras}


def load_rig(path) -> CameraRig:
    """Read a YAML rig file."""
    path = Path(path)
    if not path.is_file():
        raise EasyOccError(f"rig file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise EasyOccError(f"rig file {path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    try:
        return rig_from_dict(data)
    except EasyOccError as exc:
        raise EasyOccError(f"{path.name}: {exc}") from None


def save_rig(rig: CameraRig, path) -> None:
    """Write a YAML rig file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# EasyOcc camera rig: K in pixels, ego_T_cam maps camera (OpenCV) points to ego (x fwd, y left, z up)\n"
    text += yaml.safe_dump(rig_to_dict(rig), sort_keys=False, default_flow_style=None)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def default_rig() -> CameraRig:
    """The nuScenes rig (scene-0916 calibration, 1600x900) embedded in the package."""
    text = resources.files("easyocc.calibration").joinpath("data", DEFAULT_RIG_RESOURCE).read_text()
    return rig_from_dict(yaml.safe_load(text))  # cameras in NUSCENES_CAMERAS order (a test checks it)


def camera_from_nuscenes(name: str, calibrated_sensor: dict, width: int, height: int) -> Camera:
    """A camera from a nuScenes `calibrated_sensor` record (sensor -> ego) and the image size."""
    where = f"camera {name}: calibrated_sensor"
    intrinsic = _field(calibrated_sensor, "camera_intrinsic", where)
    if not intrinsic:
        raise EasyOccError(f"{where}: camera_intrinsic is empty (not a camera?)")
    ego_T_cam = make_transform(
        quaternion_to_matrix(_field(calibrated_sensor, "rotation", where)),
        _field(calibrated_sensor, "translation", where),
    )
    return Camera(name, intrinsic, int(width), int(height), ego_T_cam)


def camera_from_camera_info(name: str, info: dict, ego_T_cam) -> Camera:
    """A camera from a ROS CameraInfo-like dict and a 4x4 extrinsic.

    info: {width, height, k (9 values, row-major), d (coefficients), distortion_model}; the keys `K`
    and `D` of ROS 1 are accepted too. Only the plumb_bob / rational_polynomial models are supported.
    """
    where = f"camera {name}: CameraInfo"
    k = info.get("k", info.get("K"))
    if k is None:
        raise EasyOccError(f"{where}: missing field 'k'")
    model = info.get("distortion_model", "plumb_bob") or "plumb_bob"
    if model not in ("plumb_bob", "rational_polynomial", "none"):
        raise EasyOccError(f"{where}: distortion_model '{model}' is not supported (plumb_bob, rational_polynomial)")
    d = list(info.get("d", info.get("D", [])) or [])
    K = np.asarray(k, dtype=np.float64)
    if K.size != 9:
        raise EasyOccError(f"{where}: k must have 9 values, got {K.size}")
    return Camera(
        name, K.reshape(3, 3), int(_field(info, "width", where)), int(_field(info, "height", where)), ego_T_cam, d
    )
