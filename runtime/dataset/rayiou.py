"""RayIoU, the ray-based occupancy metric of SparseOcc (Liu et al., CVPR 2024 challenge metric).

Query rays leave the lidar origins of the current key frame and of neighbouring key frames of the same
scene (all key frames whose lidar lies within 39 m in x and y of the current ego, at most 8 of them,
evenly spaced in time), along the nuScenes lidar's beam pattern: 1 degree in azimuth, and elevations
from -pi/4 up to about +0.21 rad, dense near the horizon. Each ray is cast through the ground truth and
the prediction (occupied = any class but free); the first voxel hit gives a class and a depth (the
distance from the origin to where the ray enters that voxel). Rays that hit nothing in the ground truth
are dropped. The voxel that holds a ray's origin is not a hit: the lidar sits on the ego vehicle, which
Occ3D labels free and no camera sees (a model's guess there would otherwise end every ray at 0 m; on
a coarse grid that voxel is metres wide). For each class and each depth threshold (1, 2, 4 m) a ray is a true positive when both
first hits carry that class and their depths differ by less than the threshold; IoU = TP / (rays whose
ground-truth hit has the class + rays whose predicted hit has it - TP), accumulated over the whole set.
RayIoU@t is the mean over classes 0-16 (classes absent from both are skipped), RayIoU the mean of the
three. No camera or visibility mask is used. Results are in percent.

Without a dataset (hand-built grids) `DEFAULT_LIDAR_ORIGIN_EGO` is the single origin: the nuScenes
LIDAR_TOP mount in the ego frame, the one SparseOcc's code notes.
"""

from __future__ import annotations

import numpy as np
from easyocc.runtime.contract.classes import CLASS_NAMES, FREE, NUM_CLASSES
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec

RAY_THRESHOLDS_M: tuple[float, ...] = (1.0, 2.0, 4.0)
MAX_ORIGINS = 8
ORIGIN_RANGE_M = 39.0
DEFAULT_LIDAR_ORIGIN_EGO = (0.9858, 0.0, 1.8402)


def lidar_ray_directions(azimuth_step_deg: float = 1.0) -> np.ndarray:
    """Unit directions [R, 3] (ego frame) of the nuScenes-like beam pattern: 10 elevations at
    -(pi/2 - atan(k)) for k = 1..10, then continuing with the last spacing up to >= 0.21 rad (the top
    of the sensor's field of view), each at every `azimuth_step_deg` degrees."""
    pitch = [-(np.pi / 2 - np.arctan(k)) for k in range(1, 11)]
    while pitch[-1] < 0.21:
        pitch.append(pitch[-1] + (pitch[-1] - pitch[-2]))
    pitch = np.asarray(pitch)[:, None]
    azimuth = np.deg2rad(np.arange(0.0, 360.0, azimuth_step_deg))[None, :]
    directions = np.stack(
        [
            np.cos(pitch) * np.cos(azimuth),
            np.cos(pitch) * np.sin(azimuth),
            np.broadcast_to(np.sin(pitch), (pitch.size, azimuth.size)),
        ],
        axis=-1,
    )
    return directions.reshape(-1, 3)


def select_origins(
    origins_ego: np.ndarray, max_origins: int = MAX_ORIGINS, range_m: float = ORIGIN_RANGE_M
) -> np.ndarray:
    """[T, 3] -> the origins within `range_m` in x and y, thinned to `max_origins` evenly spaced ones."""
    origins = np.asarray(origins_ego, dtype=np.float64).reshape(-1, 3)
    origins = origins[(np.abs(origins[:, 0]) < range_m) & (np.abs(origins[:, 1]) < range_m)]
    if len(origins) > max_origins:
        origins = origins[np.round(np.linspace(0, len(origins) - 1, max_origins)).astype(np.int64)]
    return origins


def scene_lidar_origins(global_T_egos: list[np.ndarray], ego_T_lidars: list[np.ndarray], current: int) -> np.ndarray:
    """Lidar origins [T, 3] of all key frames of a scene, in the ego frame of key frame `current`,
    selected as SparseOcc does (`select_origins`). Poses are 4x4 (`global_T_ego` at the lidar's time)."""
    ego_T_global = np.linalg.inv(global_T_egos[current])
    origins = [(ego_T_global @ g @ e)[:3, 3] for g, e in zip(global_T_egos, ego_T_lidars)]
    return select_origins(np.stack(origins))


def first_hits(semantics: np.ndarray, grid: GridSpec, origins_ego: np.ndarray, directions: np.ndarray):
    """Cast every direction [R, 3] (unit) from every origin [T, 3] (ego, metres) through `semantics`
    uint8 [X, Y, Z] by exact voxel traversal (Amanatides-Woo, all rays in lockstep).

    Returns classes int64 [T * R] (FREE where the ray leaves the grid without a hit) and depth_m
    float64 [T * R] (distance to where the ray enters the hit voxel; inf without a hit). The voxel that
    holds the origin never counts as a hit."""
    if semantics.shape != grid.shape:
        raise EasyOccError(f"rayiou: grid shape {semantics.shape} != grid {grid.shape}")
    shape = np.asarray(grid.shape)
    occupied = semantics != FREE
    origins = (np.asarray(origins_ego, np.float64).reshape(-1, 3) - np.asarray(grid.lower)) / grid.voxel_size
    dirs = np.asarray(directions, np.float64).reshape(-1, 3)
    start = np.repeat(origins, len(dirs), axis=0)  # voxel units
    d = np.tile(dirs, (len(origins), 1))
    n = len(start)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t_lo = np.where(d != 0, (0 - start) * inv, -np.inf)
        t_hi = np.where(d != 0, (shape - start) * inv, np.inf)
        inside_axis = (d != 0) | ((start >= 0) & (start < shape))
    t_enter = np.maximum(np.max(np.minimum(t_lo, t_hi), axis=1), 0.0)
    t_exit = np.min(np.maximum(t_lo, t_hi), axis=1)
    alive = inside_axis.all(axis=1) & (t_enter < t_exit)
    point = start + d * (t_enter[:, None] + 1e-9)
    index = np.clip(np.floor(point).astype(np.int64), 0, shape - 1)
    step = np.sign(d).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        next_boundary = index + (step > 0)
        t_max = np.where(d != 0, (next_boundary - start) * inv, np.inf)
        t_delta = np.where(d != 0, np.abs(inv), np.inf)
    in_grid = ((start >= 0) & (start < shape)).all(axis=1, keepdims=True)
    own = np.where(in_grid, np.floor(start).astype(np.int64), -1)  # the origin's voxel: never a hit
    classes = np.full(n, FREE, np.int64)
    depth = np.full(n, np.inf)
    t_now = t_enter.copy()
    active = np.flatnonzero(alive)
    for _ in range(int(shape.sum()) + 3):
        if active.size == 0:
            break
        i, j, k = index[active].T
        hit = occupied[i, j, k] & (index[active] != own[active]).any(axis=1)
        hit_rays = active[hit]
        classes[hit_rays] = semantics[i[hit], j[hit], k[hit]]
        depth[hit_rays] = t_now[hit_rays] * grid.voxel_size
        active = active[~hit]
        axis = np.argmin(t_max[active], axis=1)
        t_now[active] = t_max[active, axis]
        index[active, axis] += step[active, axis]
        t_max[active, axis] += t_delta[active, axis]
        moved = index[active, axis]
        active = active[(moved >= 0) & (moved < shape[axis])]
    return classes, depth


class RayMetric:
    """Accumulates SparseOcc's ray counts over a set; `update` takes uint8 [X, Y, Z] grids and the
    ray origins of the frame (ego frame, metres; default: `DEFAULT_LIDAR_ORIGIN_EGO`)."""

    def __init__(self, grid: GridSpec, thresholds_m=RAY_THRESHOLDS_M, azimuth_step_deg: float = 1.0):
        self.grid = grid
        self.thresholds = tuple(float(t) for t in thresholds_m)
        self.directions = lidar_ray_directions(azimuth_step_deg)
        self.gt_count = np.zeros(NUM_CLASSES, np.int64)
        self.pred_count = np.zeros(NUM_CLASSES, np.int64)
        self.tp_count = np.zeros((len(self.thresholds), NUM_CLASSES), np.int64)
        self.frames = 0
        self.rays = 0

    def update(self, prediction: np.ndarray, target: np.ndarray, origins_ego: np.ndarray | None = None) -> None:
        if prediction.shape != target.shape:
            raise EasyOccError(f"rayiou: prediction shape {prediction.shape} != label shape {target.shape}")
        origins = np.asarray(DEFAULT_LIDAR_ORIGIN_EGO if origins_ego is None else origins_ego, np.float64).reshape(
            -1, 3
        )
        gt_class, gt_depth = first_hits(target, self.grid, origins, self.directions)
        pred_class, pred_depth = first_hits(prediction, self.grid, origins, self.directions)
        valid = gt_class != FREE
        gt_class, gt_depth, pred_class, pred_depth = (
            gt_class[valid],
            gt_depth[valid],
            pred_class[valid],
            pred_depth[valid],
        )
        self.gt_count += np.bincount(gt_class, minlength=NUM_CLASSES)
        self.pred_count += np.bincount(pred_class, minlength=NUM_CLASSES)
        same = gt_class == pred_class
        error = np.abs(pred_depth - gt_depth)
        for row, threshold in enumerate(self.thresholds):
            self.tp_count[row] += np.bincount(gt_class[same & (error < threshold)], minlength=NUM_CLASSES)
        self.frames += 1
        self.rays += int(valid.sum())

    def merge(self, other: RayMetric) -> None:
        self.gt_count += other.gt_count
        self.pred_count += other.pred_count
        self.tp_count += other.tp_count
        self.frames += other.frames
        self.rays += other.rays

    def per_class_iou(self) -> np.ndarray:
        """[thresholds, 17] IoU in percent over classes 0-16, NaN where a class has no ray at all."""
        tp = self.tp_count[:, :FREE].astype(np.float64)
        union = (self.gt_count + self.pred_count)[None, :FREE] - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, 100.0 * tp / np.maximum(union, 1), np.nan)

    def results(self) -> dict:
        """{"rayiou", "rayiou@1", "rayiou@2", "rayiou@4", "per_class_rayiou": {class: {"@1": ...}}} in percent."""
        iou = self.per_class_iou()
        results = {}
        with np.errstate(invalid="ignore"):
            per_threshold = [float(np.nanmean(row)) if np.isfinite(row).any() else float("nan") for row in iou]
        results["rayiou"] = float(np.mean(per_threshold))
        for threshold, value in zip(self.thresholds, per_threshold):
            results[f"rayiou@{threshold:g}"] = value
        results["per_class_rayiou"] = {
            name: {
                f"@{t:g}": (float(iou[r, c]) if np.isfinite(iou[r, c]) else None) for r, t in enumerate(self.thresholds)
            }
            for c, name in enumerate(CLASS_NAMES[:FREE])
        }
        results["ray_frames"] = self.frames
        results["rays"] = self.rays
        return results

    def table(self, title: str = "") -> str:
        """Per-class RayIoU text table (percent) at each threshold, the means at the bottom."""
        iou = self.per_class_iou()
        results = self.results()
        head = "".join(f"{'@' + format(t, 'g') + ' m':>8}" for t in self.thresholds)
        lines = ([title] if title else []) + [f"{'class':<22}{head}"]
        for c, name in enumerate(CLASS_NAMES[:FREE]):
            lines.append(f"{name:<22}" + "".join(f"{'-' if not np.isfinite(v) else f'{v:.2f}':>8}" for v in iou[:, c]))
        lines.append(f"{'RayIoU':<22}" + "".join(f"{results[f'rayiou@{t:g}']:>8.2f}" for t in self.thresholds))
        lines.append(f"{'RayIoU (mean)':<22}{results['rayiou']:>8.2f}")
        return "\n".join(lines)


def sample_lidar_origins(dataset, sample) -> np.ndarray | None:
    """RayIoU origins [T, 3] of a `NuScenesDataset` sample from the lidar poses of its scene's key
    frames, or None (= the default origin) when the sample has no lidar."""
    if sample.lidar is None:
        return None
    frames = [s.lidar for s in dataset.samples(sample.scene_name) if s.lidar is not None]
    tokens = [s.token for s in dataset.samples(sample.scene_name) if s.lidar is not None]
    return scene_lidar_origins(
        [f.global_T_ego for f in frames], [f.ego_T_sensor for f in frames], tokens.index(sample.token)
    )
