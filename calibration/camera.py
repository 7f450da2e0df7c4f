"""Cameras and the camera rig: intrinsics, distortion, extrinsics, projection and unprojection.

Conventions: the ego frame is x forward, y left, z up; camera frames are OpenCV (x right, y down,
z forward); pixel (0, 0) is the centre of the top-left pixel; `ego_T_cam` maps camera points to ego.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from easyocc.calibration.errors import EasyOccError
from easyocc.calibration.geometry import check_rotation, invert_transform, transform_points

# OpenCV distortion models by number of coefficients: (k1 k2 p1 p2 [k3 [k4 k5 k6]]).
_DISTORTION_LENGTHS = (0, 4, 5, 8)


def _as_matrix(value, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EasyOccError(f"{what}: not a numeric array ({exc})") from None
    if array.shape != shape:
        raise EasyOccError(f"{what}: expected shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise EasyOccError(f"{what}: contains NaN or inf")
    return array


@dataclass(frozen=True, eq=False)
class Camera:
    """One pinhole camera with optional OpenCV distortion.

    K: 3x3 intrinsics in pixels; dist: 0, 4, 5 or 8 OpenCV coefficients; width, height: image size
    in pixels; ego_T_cam: 4x4 transform from the camera frame to the ego frame (metres).
    """

    name: str
    K: np.ndarray
    width: int
    height: int
    ego_T_cam: np.ndarray
    dist: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise EasyOccError(f"camera name must be a non-empty string, got {self.name!r}")
        where = f"camera {self.name}"
        K = _as_matrix(self.K, (3, 3), f"{where}: K")
        ego_T_cam = _as_matrix(self.ego_T_cam, (4, 4), f"{where}: ego_T_cam")
        dist = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        if dist.size not in _DISTORTION_LENGTHS:
            raise EasyOccError(f"{where}: dist must have 0, 4, 5 or 8 coefficients, got {dist.size}")
        if not np.all(np.isfinite(dist)):
            raise EasyOccError(f"{where}: dist contains NaN or inf")
        for value, label in ((self.width, "width"), (self.height, "height")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise EasyOccError(f"{where}: {label} must be a positive integer, got {value!r}")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise EasyOccError(f"{where}: focal length must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
        if not (0 <= K[0, 2] <= self.width and 0 <= K[1, 2] <= self.height):
            raise EasyOccError(
                f"{where}: principal point ({K[0, 2]:.1f}, {K[1, 2]:.1f}) is outside the "
                f"{self.width}x{self.height} image"
            )
        if not np.allclose(ego_T_cam[3], [0, 0, 0, 1]):
            raise EasyOccError(f"{where}: ego_T_cam last row must be [0, 0, 0, 1]")
        check_rotation(ego_T_cam[:3, :3], f"{where}: ego_T_cam")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "ego_T_cam", ego_T_cam)
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def cam_T_ego(self) -> np.ndarray:
        return invert_transform(self.ego_T_cam)

    @property
    def centre_ego(self) -> np.ndarray:
        """Optical centre in the ego frame, [3] metres."""
        return self.ego_T_cam[:3, 3].copy()

    @property
    def has_distortion(self) -> bool:
        return bool(self.dist.size) and bool(np.any(self.dist != 0))

    def project(self, points_ego: np.ndarray, min_depth_m: float = 1e-3):
        """Project ego points to pixels.

        points_ego: [N, 3] metres. Returns (uv [N, 2] pixels float64, depth_m [N] camera z,
        in_image [N] bool: depth above `min_depth_m` and uv inside [-0.5, size - 0.5)).
        """
        points_cam = transform_points(self.cam_T_ego, np.asarray(points_ego).reshape(-1, 3))
        depth_m = points_cam[:, 2]
        safe_depth = np.where(depth_m > min_depth_m, depth_m, np.nan)
        x = points_cam[:, 0] / safe_depth
        y = points_cam[:, 1] / safe_depth
        if self.has_distortion:
            x, y = _distort(x, y, self.dist)
        uv = np.stack([self.K[0, 0] * x + self.K[0, 1] * y + self.K[0, 2], self.K[1, 1] * y + self.K[1, 2]], axis=1)
        in_image = (
            (depth_m > min_depth_m)
            & (uv[:, 0] >= -0.5)
            & (uv[:, 0] < self.width - 0.5)
            & (uv[:, 1] >= -0.5)
            & (uv[:, 1] < self.height - 0.5)
        )
        return uv, depth_m, in_image

    def unproject(self, uv: np.ndarray, depth_m: np.ndarray) -> np.ndarray:
        """Pixels [N, 2] with camera z-depth [N] metres -> ego points [N, 3] metres."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        depth_m = np.asarray(depth_m, dtype=np.float64).reshape(-1)
        y = (uv[:, 1] - self.K[1, 2]) / self.K[1, 1]
        x = (uv[:, 0] - self.K[0, 2] - self.K[0, 1] * y) / self.K[0, 0]
        if self.has_distortion:
            x, y = _undistort(x, y, self.dist)
        points_cam = np.stack([x * depth_m, y * depth_m, depth_m], axis=1)
        return transform_points(self.ego_T_cam, points_cam)

    def rays_ego(self, uv: np.ndarray) -> np.ndarray:
        """Unit viewing directions [N, 3] in the ego frame for pixels [N, 2]."""
        direction = self.unproject(uv, np.ones(len(np.asarray(uv).reshape(-1, 2)))) - self.centre_ego
        return direction / np.linalg.norm(direction, axis=1, keepdims=True)

    def resized(self, scale_x: float, scale_y: float, crop: tuple[int, int, int, int] | None = None) -> Camera:
        """The camera after cv2.resize by (scale_x, scale_y) and then a crop (x0, y0, width, height).

        cv2.resize maps pixel centres as u' = (u + 0.5) * s - 0.5, so the principal point follows
        the same rule and a projected point lands on the same image content.
        """
        if scale_x <= 0 or scale_y <= 0:
            raise EasyOccError(f"camera {self.name}: resize scale must be positive, got ({scale_x}, {scale_y})")
        K = self.K.copy()
        K[0, 0] *= scale_x
        K[0, 1] *= scale_x
        K[1, 1] *= scale_y
        K[0, 2] = (K[0, 2] + 0.5) * scale_x - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * scale_y - 0.5
        width = int(round(self.width * scale_x))
        height = int(round(self.height * scale_y))
        if crop is not None:
            x0, y0, width, height = (int(v) for v in crop)
            K[0, 2] -= x0
            K[1, 2] -= y0
        return Camera(self.name, K, width, height, self.ego_T_cam, self.dist)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "K": self.K.round(9).tolist(),
            "dist": self.dist.round(12).tolist(),
            "ego_T_cam": self.ego_T_cam.round(12).tolist(),
        }

    def allclose(self, other: Camera, atol: float = 1e-6) -> bool:
        return (
            self.name == other.name
            and (self.width, self.height) == (other.width, other.height)
            and np.allclose(self.K, other.K, atol=atol)
            and np.allclose(self.ego_T_cam, other.ego_T_cam, atol=atol)
            and self.dist.shape == other.dist.shape
            and np.allclose(self.dist, other.dist, atol=atol)
        )


def _distort(x: np.ndarray, y: np.ndarray, dist: np.ndarray):
    k = np.zeros(8)
    k[: dist.size] = dist
    k1, k2, p1, p2, k3, k4, k5, k6 = k
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def _undistort(xd: np.ndarray, yd: np.ndarray, dist: np.ndarray, iterations: int = 20):
    # Fixed-point iteration as in cv2.undistortPoints; converges for the mild distortion of
    # automotive pinhole cameras.
    x, y = xd.copy(), yd.copy()
    for _ in range(iterations):
        xe, ye = _distort(x, y, dist)
        x = x - (xe - xd)
        y = y - (ye - yd)
    return x, y


class CameraRig:
    """An ordered set of cameras with unique names. The order is the model's camera order."""

    def __init__(self, cameras):
        cameras = tuple(cameras)
        if not cameras:
            raise EasyOccError("camera rig has no cameras")
        seen = set()
        for camera in cameras:
            if not isinstance(camera, Camera):
                raise EasyOccError(f"camera rig entries must be Camera objects, got {type(camera).__name__}")
            if camera.name in seen:
                raise EasyOccError(f"camera rig: duplicate camera name {camera.name}")
            seen.add(camera.name)
        self._cameras = cameras

    @property
    def cameras(self) -> tuple[Camera, ...]:
        return self._cameras

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(camera.name for camera in self._cameras)

    def __len__(self) -> int:
        return len(self._cameras)

    def __iter__(self):
        return iter(self._cameras)

    def __getitem__(self, key) -> Camera:
        if isinstance(key, str):
            for camera in self._cameras:
                if camera.name == key:
                    return camera
            raise EasyOccError(f"camera rig has no camera named {key}; it has {', '.join(self.names)}")
        return self._cameras[key]

    def resized(self, width: int, height: int) -> CameraRig:
        """Every camera resized (no crop) to width x height pixels."""
        return CameraRig(camera.resized(width / camera.width, height / camera.height) for camera in self._cameras)

    def allclose(self, other: CameraRig, atol: float = 1e-6) -> bool:
        return len(self) == len(other) and all(a.allclose(b, atol) for a, b in zip(self, other))

    def to_dict(self) -> dict:
        return {"cameras": [camera.to_dict() for camera in self._cameras]}

    def __repr__(self) -> str:
        return f"CameraRig({', '.join(f'{c.name} {c.width}x{c.height}' for c in self._cameras)})"
