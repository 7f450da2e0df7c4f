"""Class-agnostic occupancy from lidar: occupied where returns fall, free along the rays before them,
unknown elsewhere; and the scores of a predicted grid against a real sweep (recall@1, free-space
violation). Torch-free: the pretraining targets (training) and the real-scene benchmark share it.

Accumulation over key frames (`accumulated_occupancy`): past sweeps are moved into the current ego
frame with the ego poses. Dynamic objects leave no trail: in PAST sweeps, points inside the annotated
box of an object that moved (more than `min_motion_m` between that frame and the current one, or
that is absent from the current frame) are removed, together with their rays' hits; the current
sweep keeps every point. Boxes are used for nothing else (no class comes from them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from easyocc.calibration import invert_transform, transform_points
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.dataset.nuscenes import Box, NuScenesDataset, Sample, load_lidar

# The ego vehicle's own body in the ego frame (nuScenes Renault Zoe, 4.1 x 1.7 x 1.6 m, origin at the
# rear axle, plus the roof-mounted lidar): returns inside it are the car itself.
EGO_BOX_LOWER = (-1.0, -1.0, -0.5)
EGO_BOX_UPPER = (3.3, 1.0, 2.1)
# Returns higher than this above the ego frame's ground plane (z = 0) are obstacles rather than road.
ABOVE_GROUND_M = 0.5


@dataclass(frozen=True)
class Sweep:
    """Lidar returns [N, 3] and the sensor origin [3], both in one ego frame (metres)."""

    points_ego: np.ndarray
    origin_ego: np.ndarray


@dataclass(frozen=True, eq=False)
class LidarOccupancy:
    """bool [X, Y, Z] each: `occupied` (a return falls inside), `free` (a ray passes through before its
    hit, and no return falls inside). Voxels that are neither are unknown."""

    occupied: np.ndarray
    free: np.ndarray

    @property
    def known(self) -> np.ndarray:
        return self.occupied | self.free


def outside_ego(points_ego: np.ndarray) -> np.ndarray:
    """bool [N]: the points that are not on the ego vehicle's body (EGO_BOX_*)."""
    inside = np.all((points_ego >= EGO_BOX_LOWER) & (points_ego <= EGO_BOX_UPPER), axis=1)
    return ~inside


def sample_sweep(sample: Sample) -> Sweep:
    """The key frame's own sweep in its ego frame (at the lidar's time), the ego body removed."""
    if sample.lidar is None:
        raise EasyOccError(f"sample {sample.token} has no LIDAR_TOP data")
    points = transform_points(sample.lidar.ego_T_sensor, load_lidar(sample.lidar.path)[:, :3])
    return Sweep(points[outside_ego(points)], sample.lidar.ego_T_sensor[:3, 3].copy())


def points_in_box(points_global: np.ndarray, box: Box, margin_m: float = 0.2) -> np.ndarray:
    """bool [N]: points (global frame) inside `box` grown by `margin_m` on every side."""
    local = (points_global - box.centre_global) @ box.rotation_global  # box axes: x length, y width, z up
    width, length, height = box.size_wlh
    half = np.array([length, width, height]) / 2 + margin_m
    return np.all(np.abs(local) <= half, axis=1)


def moving_boxes(past: list[Box], current: list[Box], min_motion_m: float = 0.3) -> list[Box]:
    """Boxes of `past` whose instance moved more than `min_motion_m` by the current frame, or is gone."""
    now = {box.instance_token: box.centre_global for box in current}
    return [
        box
        for box in past
        if box.instance_token not in now or np.linalg.norm(now[box.instance_token] - box.centre_global) > min_motion_m
    ]


def accumulated_sweeps(
    dataset: NuScenesDataset, samples: list[Sample], index: int, past_frames: int, min_motion_m: float = 0.3
) -> list[Sweep]:
    """Sweeps of key frames index-past_frames .. index of `samples` (one scene, in order), all in the
    ego frame of samples[index]; past sweeps lose the points inside boxes of moving objects."""
    current = samples[index]
    ego_T_global = invert_transform(current.lidar.global_T_ego)
    current_boxes = dataset.boxes(current)
    sweeps = []
    for past_index in range(max(0, index - past_frames), index + 1):
        sample = samples[past_index]
        sweep = sample_sweep(sample)
        global_T_past = sample.lidar.global_T_ego
        points_global = transform_points(global_T_past, sweep.points_ego)
        if past_index != index:
            keep = np.ones(len(points_global), bool)
            for box in moving_boxes(dataset.boxes(sample), current_boxes, min_motion_m):
                keep &= ~points_in_box(points_global, box)
            points_global = points_global[keep]
        origin = transform_points(ego_T_global @ global_T_past, sweep.origin_ego[None])[0]
        sweeps.append(Sweep(transform_points(ego_T_global, points_global), origin))
    return sweeps


AZIMUTH_BIN_DEG = 0.5  # coarser than the lidar's azimuth step (0.33 deg for a 1080-step spinning lidar)
ELEVATION_BIN_DEG = 2.0  # coarser than the HDL-32E's 1.33 deg beam spacing, so no bin between beams is empty


def ray_occupancy(grid: GridSpec, sweeps: list[Sweep]) -> LidarOccupancy:
    """Occupied, free and (implicitly) unknown voxels of `grid` from sweeps in the grid's ego frame.

    A voxel holding a return of any sweep is occupied. A voxel is free when, seen from a sweep's
    origin, its centre lies in an (azimuth, elevation) bin holding returns and is nearer than the
    nearest return of that bin by more than half a voxel: every ray of the bin passes through it
    before its hit. The range-image form costs O(voxels) per sweep instead of tracing each ray;
    bins without returns (sky, beyond range) leave their voxels unknown.
    """
    occupied = np.zeros(grid.num_voxels, bool)
    free = np.zeros(grid.num_voxels, bool)
    centres = grid.centres().reshape(-1, 3)
    azimuth_bins, elevation_bins = int(round(360 / AZIMUTH_BIN_DEG)), int(round(180 / ELEVATION_BIN_DEG))
    for sweep in sweeps:
        if len(sweep.points_ego) == 0:
            continue
        index, inside = grid.index_of(sweep.points_ego)
        occupied[grid.flat_index(index[inside])] = True
        origin = np.asarray(sweep.origin_ego, np.float64)
        point_bin, point_range = _bins(sweep.points_ego - origin, azimuth_bins, elevation_bins)
        nearest = np.full(azimuth_bins * elevation_bins, np.inf)  # inf: the bin has no return
        np.minimum.at(nearest, point_bin, point_range)
        voxel_bin, voxel_range = _bins(centres - origin, azimuth_bins, elevation_bins)
        bound = nearest[voxel_bin]
        free |= np.isfinite(bound) & (voxel_range < bound - grid.voxel_size / 2)
    free &= ~occupied
    return LidarOccupancy(occupied.reshape(grid.shape), free.reshape(grid.shape))


def _bins(offsets: np.ndarray, azimuth_bins: int, elevation_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat (azimuth, elevation) bin [N] and range [N] (m) of offsets [N, 3] from a sensor origin."""
    distance = np.linalg.norm(offsets, axis=1)
    azimuth = np.arctan2(offsets[:, 1], offsets[:, 0])  # -pi .. pi
    elevation = np.arcsin(np.clip(offsets[:, 2] / np.maximum(distance, 1e-9), -1.0, 1.0))  # -pi/2 .. pi/2
    a = np.minimum(((azimuth + np.pi) / (2 * np.pi) * azimuth_bins).astype(np.int64), azimuth_bins - 1)
    e = np.minimum(((elevation + np.pi / 2) / np.pi * elevation_bins).astype(np.int64), elevation_bins - 1)
    return a * elevation_bins + e, distance


@dataclass(frozen=True)
class RealOccupancyScores:
    """Scores of one predicted grid against one key frame's own sweep."""

    recall_at_1: float  # returns (outside the ego body, inside the grid) with an occupied voxel within 1 voxel
    recall_at_1_above_ground: float  # the same for returns higher than ABOVE_GROUND_M (obstacles, not road)
    free_violation: float  # voxels the rays pass through before their hit that are predicted occupied
    occupied_voxels: int  # predicted occupied voxels
    occupied_share: float  # of the whole grid
    returns: int  # returns scored by recall@1
    free_voxels: int  # voxels scored by the free-space violation


def score_prediction(grid: GridSpec, occupied_pred: np.ndarray, sweep: Sweep) -> RealOccupancyScores:
    """recall@1 (all returns, and returns above ABOVE_GROUND_M), free-space violation and occupied count
    of `occupied_pred` (bool [X, Y, Z])."""
    occupied_pred = np.asarray(occupied_pred, bool)
    if occupied_pred.shape != grid.shape:
        raise EasyOccError(f"prediction has shape {occupied_pred.shape}, grid expects {grid.shape}")
    # Dilate by one voxel in all 26 directions: a return counts when its voxel or a neighbour is occupied.
    padded = np.pad(occupied_pred, 1)
    dilated = np.zeros_like(occupied_pred)
    x, y, z = grid.shape
    for dx in range(3):
        for dy in range(3):
            for dz in range(3):
                dilated |= padded[dx : dx + x, dy : dy + y, dz : dz + z]
    index, inside = grid.index_of(sweep.points_ego)
    hits = dilated.reshape(-1)[grid.flat_index(index[inside])]
    above = hits[sweep.points_ego[inside, 2] > ABOVE_GROUND_M]
    free = ray_occupancy(grid, [sweep]).free
    return RealOccupancyScores(
        recall_at_1=float(hits.mean()) if len(hits) else float("nan"),
        recall_at_1_above_ground=float(above.mean()) if len(above) else float("nan"),
        free_violation=float(occupied_pred[free].mean()) if free.any() else float("nan"),
        occupied_voxels=int(occupied_pred.sum()),
        occupied_share=float(occupied_pred.mean()),
        returns=int(len(hits)),
        free_voxels=int(free.sum()),
    )
