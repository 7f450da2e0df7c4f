"""Model outputs -> what planners use: occupied voxels and a BEV occupancy grid (pictures: runtime/topdown.py).

All vectorized with numpy; inputs are the model's semantics uint8 [X, Y, Z] and confidence float32
[X, Y, Z] on a GridSpec (index order [x, y, z], ego frame x forward, y left, z up).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from easyocc.runtime.contract.classes import CLASS_ID, FREE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec

# Classes a vehicle may drive or stand on: not obstacles in the BEV grid.
GROUND_CLASSES: tuple[int, ...] = tuple(CLASS_ID[n] for n in ("driveable_surface", "other_flat", "sidewalk", "terrain"))
# nav_msgs/OccupancyGrid cell values.
BEV_FREE, BEV_OCCUPIED, BEV_UNKNOWN = 0, 100, -1
DEFAULT_Z_BAND_M = (-0.2, 2.2)


@dataclass(frozen=True, eq=False)
class OccupiedVoxels:
    """Occupied (non-free) voxels in C order of their [x, y, z] indices.

    xyz_ego: float32 [M, 3] voxel centres (metres, ego frame); labels: uint8 [M] class ids 0-16;
    confidence: float32 [M].
    """

    xyz_ego: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _check(semantics: np.ndarray, grid: GridSpec, what: str = "semantics") -> None:
    if semantics.shape != grid.shape:
        raise EasyOccError(f"{what} has shape {semantics.shape}, grid expects {grid.shape}")


@functools.lru_cache(maxsize=4)
def _centre_table(grid: GridSpec) -> np.ndarray:
    """float32 [X*Y*Z, 3] voxel centres in C order, built once per grid (a gather beats recomputing)."""
    table = grid.centres().reshape(-1, 3).astype(np.float32)
    table.setflags(write=False)
    return table


def occupied_voxels(semantics: np.ndarray, confidence: np.ndarray, grid: GridSpec) -> OccupiedVoxels:
    """Voxels whose class is not free: centres lower + voxel_size * (index + 0.5), labels, confidence."""
    _check(semantics, grid)
    _check(confidence, grid, "confidence")
    flat = np.flatnonzero(semantics.reshape(-1) != FREE)  # C order
    return OccupiedVoxels(  # np.take: 3x faster than table[flat] for [N, 3] rows, and faster for 1-D ones
        np.take(_centre_table(grid), flat, axis=0),
        np.take(semantics.reshape(-1), flat),
        np.take(confidence.reshape(-1), flat).astype(np.float32, copy=False),
    )


def z_band_slice(grid: GridSpec, z_band_m: tuple[float, float]) -> slice:
    """Voxel layers whose centres lie in [lo, hi) metres; raises when the band holds no layer."""
    lo, hi = z_band_m
    centres = grid.lower[2] + grid.voxel_size * (np.arange(grid.shape[2]) + 0.5)
    inside = np.nonzero((centres >= lo) & (centres < hi))[0]
    if inside.size == 0:
        raise EasyOccError(f"z band {z_band_m} m holds no voxel layer of grid {grid.describe()}")
    return slice(int(inside[0]), int(inside[-1]) + 1)


def bev_occupancy(
    semantics: np.ndarray,
    grid: GridSpec,
    z_band_m: tuple[float, float] = DEFAULT_Z_BAND_M,
    observed: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    min_confidence: float = 0.0,
    ground_classes=GROUND_CLASSES,
    observed_columns: np.ndarray | None = None,
) -> np.ndarray:
    """OccupancyGrid cells int8 [Y, X] (row = y index, column = x index) from a height band.

    A column is 100 (occupied) when a voxel of the band holds an obstacle (not free, not a ground
    class) with confidence >= min_confidence; else 0 (free) when some voxel of the band is observed
    (`observed` bool [X, Y, Z], e.g. seen by a camera; or `observed_columns` bool [X, Y], that mask
    reduced once by `band_observed` for a stream; all observed when both are None); else -1 (unknown).
    """
    _check(semantics, grid)
    band = z_band_slice(grid, z_band_m)
    is_obstacle = np.ones(256, dtype=bool)  # class id -> obstacle; a table lookup beats np.isin by ~2x
    is_obstacle[[FREE, *ground_classes]] = False
    thresholded = confidence is not None and min_confidence > 0
    if thresholded:
        _check(confidence, grid, "confidence")
    occupied = np.zeros(grid.shape[:2], dtype=bool)
    for k in range(band.start, band.stop):  # layer by layer: 2-D lookups beat one 3-D lookup + any() ~4x
        layer = np.take(is_obstacle, semantics[:, :, k])
        if thresholded:
            layer &= confidence[:, :, k] >= min_confidence
        occupied |= layer
    if observed_columns is not None:
        if observed_columns.shape != grid.shape[:2]:
            raise EasyOccError(f"observed columns have shape {observed_columns.shape}, grid expects {grid.shape[:2]}")
        known = observed_columns
    elif observed is not None:
        known = band_observed(observed, grid, z_band_m)
    else:
        known = np.ones(occupied.shape, dtype=bool)
    cells = np.where(occupied, BEV_OCCUPIED, np.where(known, BEV_FREE, BEV_UNKNOWN)).astype(np.int8)
    return np.ascontiguousarray(cells.T)


def band_observed(observed: np.ndarray, grid: GridSpec, z_band_m: tuple[float, float] = DEFAULT_Z_BAND_M) -> np.ndarray:
    """bool [X, Y]: columns with an observed voxel (observed bool [X, Y, Z]) in the height band."""
    _check(observed, grid, "observed mask")
    return observed[:, :, z_band_slice(grid, z_band_m)].any(axis=2)


def observed_mask(vt_weights: np.ndarray, grid: GridSpec, stride_xy: int, stride_z: int) -> np.ndarray:
    """bool [X, Y, Z]: voxels inside some camera's view, from vt_weights [N_cam, N_cell] on cells of strides."""
    x, y, z = grid.shape
    cells = (vt_weights > 0).any(axis=0).reshape(x // stride_xy, y // stride_xy, z // stride_z)
    return np.repeat(np.repeat(np.repeat(cells, stride_xy, 0), stride_xy, 1), stride_z, 2)
