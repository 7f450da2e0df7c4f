"""Postprocessing values on hand-made grids: voxel centres, BEV cells."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.runtime.contract.classes import CLASS_ID, FREE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.postprocess import (
    BEV_FREE,
    BEV_OCCUPIED,
    BEV_UNKNOWN,
    band_observed,
    bev_occupancy,
    observed_mask,
    occupied_voxels,
)

GRID = GridSpec((-2.0, -1.0, -1.0), (2.0, 1.0, 3.0), 1.0)  # X=4, Y=2, Z=4; z centres -0.5, 0.5, 1.5, 2.5


def empty():
    return np.full(GRID.shape, FREE, np.uint8)


def test_occupied_voxels_centres_labels_confidence_in_c_order():
    sem = empty()
    sem[3, 1, 2] = CLASS_ID["car"]
    sem[0, 0, 0] = CLASS_ID["driveable_surface"]
    conf = np.zeros(GRID.shape, np.float32)
    conf[3, 1, 2], conf[0, 0, 0] = 0.9, 0.4
    voxels = occupied_voxels(sem, conf, GRID)
    assert voxels.xyz_ego.dtype == np.float32
    assert np.allclose(voxels.xyz_ego, [[-1.5, -0.5, -0.5], [1.5, 0.5, 1.5]])
    assert voxels.labels.tolist() == [CLASS_ID["driveable_surface"], CLASS_ID["car"]]
    assert np.allclose(voxels.confidence, [0.4, 0.9])


def test_occupied_voxels_rejects_wrong_shape():
    with pytest.raises(EasyOccError, match="semantics has shape \\(2, 2, 2\\), grid expects \\(4, 2, 4\\)"):
        occupied_voxels(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 2), np.float32), GRID)


def test_bev_occupied_free_unknown_from_height_band():
    sem = empty()
    sem[0, 0, 1] = CLASS_ID["pedestrian"]  # in band (z 0.5)
    sem[1, 0, 3] = CLASS_ID["vegetation"]  # above the band (z 2.5): not an obstacle for the grid
    sem[2, 1, 1] = CLASS_ID["driveable_surface"]  # ground class in band: free
    observed = np.ones(GRID.shape, bool)
    observed[3, 1] = False  # a column nobody sees
    bev = bev_occupancy(sem, GRID, z_band_m=(0.0, 2.0), observed=observed)
    assert bev.shape == (2, 4) and bev.dtype == np.int8  # [Y, X]
    expected = np.full((2, 4), BEV_FREE, np.int8)
    expected[0, 0] = BEV_OCCUPIED
    expected[1, 3] = BEV_UNKNOWN
    assert np.array_equal(bev, expected)


def test_bev_from_precomputed_columns_matches_the_voxel_mask():
    """The runtime reduces the observed mask to columns once per stream; the cells must not change."""
    rng = np.random.default_rng(3)
    sem = rng.choice([FREE, CLASS_ID["car"], CLASS_ID["terrain"]], size=GRID.shape).astype(np.uint8)
    observed = rng.random(GRID.shape) < 0.5
    columns = band_observed(observed, GRID, (0.0, 2.0))
    assert columns.shape == (4, 2)
    from_voxels = bev_occupancy(sem, GRID, (0.0, 2.0), observed=observed)
    assert np.array_equal(bev_occupancy(sem, GRID, (0.0, 2.0), observed_columns=columns), from_voxels)
    with pytest.raises(EasyOccError, match="observed columns have shape \\(2, 4\\), grid expects \\(4, 2\\)"):
        bev_occupancy(sem, GRID, (0.0, 2.0), observed_columns=columns.T)


def test_bev_confidence_threshold_and_empty_band():
    sem = empty()
    sem[1, 1, 2] = CLASS_ID["car"]
    conf = np.full(GRID.shape, 0.3, np.float32)
    assert bev_occupancy(sem, GRID, (0.0, 2.0))[1, 1] == BEV_OCCUPIED
    assert bev_occupancy(sem, GRID, (0.0, 2.0), confidence=conf, min_confidence=0.5)[1, 1] == BEV_FREE
    with pytest.raises(EasyOccError, match="z band \\(5.0, 6.0\\) m holds no voxel layer"):
        bev_occupancy(sem, GRID, (5.0, 6.0))


def test_observed_mask_upsamples_cells_by_strides():
    grid = GridSpec((0.0, 0.0, 0.0), (4.0, 4.0, 2.0), 1.0)  # 4 x 4 x 2
    weights = np.zeros((2, 2 * 2 * 1), np.float32)  # cells of stride 2 in xy, 2 in z
    weights[1, 3] = 0.5  # cell (1, 1, 0)
    mask = observed_mask(weights, grid, 2, 2)
    assert mask.shape == (4, 4, 2) and mask.sum() == 8
    assert mask[2:, 2:, :].all()
