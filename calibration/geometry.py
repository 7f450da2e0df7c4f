"""Rigid transforms and rotations. A transform named `a_T_b` maps points from frame b into frame a."""

from __future__ import annotations

import numpy as np
from easyocc.calibration.errors import EasyOccError


def quaternion_to_matrix(q_wxyz) -> np.ndarray:
    """Rotation matrix (3x3, float64) from a unit quaternion in nuScenes order [w, x, y, z]."""
    q = np.asarray(q_wxyz, dtype=np.float64)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise EasyOccError(f"quaternion must be 4 finite numbers [w, x, y, z], got {q_wxyz!r}")
    norm = np.linalg.norm(q)
    if norm < 1e-9:
        raise EasyOccError("quaternion has zero norm")
    w, x, y, z = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion [w, x, y, z] (w >= 0) of a 3x3 rotation matrix."""
    r = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(r)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    return q * np.sign(q[0]) if q[0] != 0 else q


def make_transform(rotation, translation) -> np.ndarray:
    """4x4 homogeneous transform from a 3x3 rotation and a 3-vector translation."""
    transform = np.eye(4)
    transform[:3, :3] = np.asarray(rotation, dtype=np.float64)
    transform[:3, 3] = np.asarray(translation, dtype=np.float64)
    return transform


def transform_from_nuscenes(record: dict) -> np.ndarray:
    """4x4 transform from a nuScenes record with `rotation` [w, x, y, z] and `translation` (m)."""
    return make_transform(quaternion_to_matrix(record["rotation"]), record["translation"])


def invert_transform(a_T_b: np.ndarray) -> np.ndarray:
    """b_T_a for a rigid 4x4 a_T_b."""
    rotation = a_T_b[:3, :3]
    inverse = np.eye(4)
    inverse[:3, :3] = rotation.T
    inverse[:3, 3] = -rotation.T @ a_T_b[:3, 3]
    return inverse


def transform_points(a_T_b: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """Points [N, 3] in frame b -> [N, 3] in frame a (float64)."""
    points_b = np.asarray(points_b, dtype=np.float64)
    return points_b @ a_T_b[:3, :3].T + a_T_b[:3, 3]


def check_rotation(rotation: np.ndarray, what: str, tol: float = 1e-5) -> None:
    """Raise unless `rotation` is a proper rotation (orthonormal, det = +1)."""
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=tol):
        raise EasyOccError(f"{what}: rotation is not orthonormal (R @ R.T != I)")
    det = float(np.linalg.det(rotation))
    if abs(det - 1.0) > tol:
        raise EasyOccError(f"{what}: rotation has det {det:.6f}, expected +1")
