"""RayIoU (SparseOcc) on hand-built grids: exact copy, empty prediction, shifted copy, ray casting."""

import numpy as np
import pytest
from easyocc.runtime.contract.classes import CLASS_ID, FREE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.dataset.rayiou import (
    DEFAULT_LIDAR_ORIGIN_EGO,
    RayMetric,
    first_hits,
    lidar_ray_directions,
    scene_lidar_origins,
    select_origins,
)

GRID = GridSpec()


def street() -> np.ndarray:
    """Road everywhere, a car ahead (x 8-12 m), a building along the left (y >= 32 m)."""
    grid = np.full(GRID.shape, FREE, np.uint8)
    grid[:, :, 0:2] = CLASS_ID["driveable_surface"]
    grid[120:130, 90:110, 2:6] = CLASS_ID["car"]
    grid[:, 180:, :] = CLASS_ID["manmade"]
    return grid


def test_beam_pattern_is_sparseocc_s():
    directions = lidar_ray_directions()
    assert directions.shape == (39 * 360, 3)
    assert np.allclose(np.linalg.norm(directions, axis=1), 1.0)
    elevation = np.arcsin(directions[::360, 2])
    assert elevation[0] == pytest.approx(-np.pi / 4) and 0.21 <= elevation[-1] < 0.23


def test_first_hit_depth_and_class():
    classes, depth = first_hits(
        street(), GRID, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    )
    assert classes.tolist() == [CLASS_ID["car"], CLASS_ID["manmade"], FREE]
    assert depth[:2] == pytest.approx([8.0, 32.0]) and np.isinf(depth[2])


def test_identical_grids_score_100():
    metric = RayMetric(GRID)
    metric.update(street(), street())
    results = metric.results()
    assert results["rayiou"] == 100.0 and results["rayiou@1"] == results["rayiou@4"] == 100.0
    assert results["per_class_rayiou"]["car"]["@1"] == 100.0 and results["per_class_rayiou"]["bus"]["@1"] is None


def test_empty_prediction_scores_0():
    metric = RayMetric(GRID)
    metric.update(np.full(GRID.shape, FREE, np.uint8), street())
    assert metric.results()["rayiou"] == 0.0 and metric.rays > 1000


def test_shift_by_two_voxels_scores_lower_at_1m_than_at_4m():
    metric = RayMetric(GRID)
    metric.update(np.roll(street(), -2, axis=1), street())  # building 0.8 m nearer: oblique rays err > 1 m
    results = metric.results()
    assert results["rayiou@1"] < results["rayiou@2"] <= results["rayiou@4"]
    assert results["rayiou@1"] + 10 < results["rayiou@4"] < 100.0  # measured 81.1 / 94.0 / 94.0
    assert results["rayiou"] == pytest.approx(np.mean([results[f"rayiou@{t}"] for t in (1, 2, 4)]))


def test_several_origins_and_their_selection():
    origins = np.array([[x, 0.0, 1.8] for x in np.arange(-60.0, 61.0, 5.0)])
    chosen = select_origins(origins)
    assert len(chosen) == 8 and np.abs(chosen[:, 0]).max() < 39
    pose = [np.eye(4) for _ in range(3)]
    for i, x in enumerate((-10.0, 0.0, 10.0)):
        pose[i][0, 3] = x
    lidar = np.eye(4)
    lidar[:3, 3] = (1.0, 0.0, 1.8)
    assert scene_lidar_origins(pose, [lidar] * 3, 1)[:, 0].tolist() == [-9.0, 1.0, 11.0]
    metric = RayMetric(GRID)
    metric.update(street(), street(), chosen)
    assert metric.results()["rayiou"] == 100.0 and metric.rays > 8 * 1000


def test_shape_mismatch_is_one_line():
    with pytest.raises(EasyOccError, match=r"^rayiou: prediction shape \(2, 2, 2\) != label shape"):
        RayMetric(GRID).update(np.zeros((2, 2, 2), np.uint8), street())


def test_the_voxel_holding_the_origin_is_not_a_hit():
    """A model's guess inside the ego vehicle (unseen, free in Occ3D) must not end every ray at 0 m."""
    prediction = street()
    index, _ = GRID.index_of(np.array([DEFAULT_LIDAR_ORIGIN_EGO]))
    prediction[tuple(index[0])] = CLASS_ID["car"]
    metric = RayMetric(GRID)
    metric.update(prediction, street())
    assert metric.results()["rayiou"] == 100.0
