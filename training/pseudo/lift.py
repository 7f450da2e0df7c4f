"""Pixels with depth -> points in the global frame, and statistical outlier removal.

Lifting: K^-1 (through `Camera.unproject`, which also undoes distortion), `ego_T_cam`, then the ego
pose at that camera's own timestamp (`global_T_ego`), so rolling capture times across the six
cameras are compensated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from easyocc.calibration import Camera, transform_points
from easyocc.runtime.contract.classes import FREE


@dataclass(frozen=True)
class CloudPart:
    """Points of one camera image: points_global float64 [N, 3] m, classes uint8 [N], origin [3] m."""

    points_global: np.ndarray
    classes: np.ndarray
    origin_global: np.ndarray


def lift_image(
    depth_m: np.ndarray,
    classes: np.ndarray,
    camera: Camera,
    global_T_ego: np.ndarray,
    max_points: int = 20000,
    max_depth_m: float = 80.0,
) -> CloudPart:
    """Lift valid pixels of one image into the global frame.

    depth_m: float32 [H, W] camera z-depth (0 = none); classes: uint8 [H, W] (17 = sky, dropped).
    Dense maps are sampled on a regular pixel lattice so that at most about `max_points` remain;
    sparse maps (lidar) keep every valid pixel.
    """
    valid = (depth_m > 0) & (depth_m <= max_depth_m) & (classes != FREE)
    count = int(valid.sum())
    if count > max_points:
        stride = int(np.ceil(np.sqrt(count / max_points)))
        lattice = np.zeros_like(valid)
        lattice[stride // 2 :: stride, stride // 2 :: stride] = True
        valid &= lattice
    v, u = np.nonzero(valid)
    uv = np.stack([u, v], axis=1).astype(np.float64)
    points_ego = camera.unproject(uv, depth_m[v, u])
    global_T_cam = global_T_ego @ camera.ego_T_cam
    return CloudPart(
        transform_points(global_T_ego, points_ego), classes[v, u].astype(np.uint8), global_T_cam[:3, 3].copy()
    )


def outlier_mask(
    points: np.ndarray, neighbours: int = 8, std_ratio: float = 2.0, ranges_m: np.ndarray | None = None
) -> np.ndarray:
    """Statistical outlier removal: keep [N] bool where the mean distance to the `neighbours` nearest
    points is at most mean + std_ratio * std over the cloud (scipy cKDTree).

    points: [N, 3] m. ranges_m: optional [N] distance of each point from its sensor; the neighbour
    distance is then divided by it, because pixel-lattice (and lidar) sampling is uniform in angle,
    so far points are sparser without being outliers.
    """
    from scipy.spatial import cKDTree

    if len(points) <= neighbours + 1:
        return np.ones(len(points), dtype=bool)
    tree = cKDTree(points, balanced_tree=False, compact_nodes=False)  # faster to build, same answers
    distances, _ = tree.query(points, k=neighbours + 1)
    mean_distance = distances[:, 1:].mean(axis=1)
    if ranges_m is not None:
        mean_distance = mean_distance / np.maximum(ranges_m, 1.0)
    return mean_distance <= mean_distance.mean() + std_ratio * mean_distance.std()
