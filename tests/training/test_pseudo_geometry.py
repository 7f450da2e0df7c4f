"""The 3-D stage's geometry: ray traversal, voxel vote, lifting, outlier removal, config validation."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.calibration import default_rig
from easyocc.runtime.contract.classes import FREE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec
from easyocc.training.pseudo.lift import lift_image, outlier_mask
from easyocc.training.pseudo.pipeline import PseudoLabelConfig, guard_band
from easyocc.training.pseudo.voxelize import free_space, traverse, unique_rays, vote

GRID = GridSpec((-8.0, -8.0, -2.0), (8.0, 8.0, 2.0), 0.5)


def _sampled_voxels(origin, end, grid):
    t = np.linspace(0, 1, 40001)[:-1]
    index, inside = grid.index_of(origin + t[:, None] * (end - origin))
    voxels = set(grid.flat_index(index[inside]).tolist())
    end_index, end_inside = grid.index_of(end[None])
    if end_inside[0]:
        voxels.discard(int(grid.flat_index(end_index)[0]))
    return voxels


def test_traverse_matches_dense_sampling_and_excludes_the_hit_voxel():
    rng = np.random.default_rng(0)
    origins = rng.uniform(-12, 12, (200, 3))
    ends = rng.uniform(-12, 12, (200, 3))
    for origin, end in zip(origins, ends):
        got = set(traverse(origin[None], end[None], GRID).tolist())
        reference = _sampled_voxels(origin, end, GRID)
        # Dense sampling can miss a voxel the ray only clips at an edge; it never finds one DDA misses.
        assert reference <= got
        assert len(got - reference) <= 2


def test_axis_aligned_ray_frees_exactly_the_voxels_before_the_hit():
    free = free_space(np.array([[0.1, 0.1, 0.1]]), np.array([[3.1, 0.1, 0.1]]), GRID)
    i0, _ = GRID.index_of(np.array([[0.1, 0.1, 0.1]]))
    expected = {(i0[0, 0] + k, i0[0, 1], i0[0, 2]) for k in range(6)}  # 0.1..3.1 m crosses 6 voxels, hit in the 7th
    assert set(map(tuple, np.argwhere(free))) == expected


def test_ray_ending_outside_the_grid_is_clipped_and_frees_up_to_the_border():
    free = free_space(np.array([[0.1, 0.1, 0.1]]), np.array([[30.0, 0.1, 0.1]]), GRID)
    assert free.sum() == 16  # x from voxel 16 (0.1 m) to the last voxel 31
    assert free[-1].any()


def test_vote_takes_the_majority_class_and_needs_min_points():
    points = np.array([[0.1, 0.1, 0.1]] * 3 + [[2.1, 0.1, 0.1]])
    classes = np.array([4, 4, 10, 7], np.uint8)
    semantics, occupied, hit = vote(points, classes, GRID, min_points=2)
    index, _ = GRID.index_of(points)
    assert semantics[tuple(index[0])] == 4 and occupied[tuple(index[0])]
    assert semantics[tuple(index[3])] == FREE and not occupied[tuple(index[3])] and hit[tuple(index[3])]
    assert occupied.sum() == 1


def test_unique_rays_deduplicates_per_origin_and_end_voxel():
    origins = np.zeros((2, 3))
    targets = np.array([[2.1, 0.1, 0.1], [2.2, 0.2, 0.2], [2.1, 0.1, 0.1], [50.0, 0, 0]])
    ray_origins, ray_ends = unique_rays(origins, np.array([0, 0, 1, 0]), targets, GRID)
    assert len(ray_origins) == 3  # two origins x one voxel, plus the target outside the grid kept as is
    assert np.allclose(ray_ends[-1], [50, 0, 0])


def test_lift_image_round_trips_camera_projection():
    camera = default_rig().resized(160, 90)["CAM_FRONT"]
    depth = np.full((90, 160), 10.0, np.float32)
    classes = np.full((90, 160), 4, np.uint8)
    classes[:10] = FREE  # sky rows are dropped
    global_T_ego = np.eye(4)
    global_T_ego[:3, 3] = [100.0, 50.0, 0.0]
    part = lift_image(depth, classes, camera, global_T_ego, max_points=2000)
    assert 0 < len(part.classes) <= 2000 * 1.2 and np.all(part.classes == 4)
    uv, depth_m, in_image = camera.project(part.points_global - [100.0, 50.0, 0.0])
    assert in_image.all() and np.allclose(depth_m, 10.0, atol=1e-6)
    assert np.allclose(part.origin_global, camera.centre_ego + [100.0, 50.0, 0.0])


def test_outlier_mask_drops_isolated_points():
    rng = np.random.default_rng(1)
    cloud = rng.normal(0, 0.2, (2000, 3))
    points = np.concatenate([cloud, [[5.0, 5.0, 5.0], [-6.0, 4.0, 0.0]]])
    keep = outlier_mask(points, neighbours=8, std_ratio=2.0)
    assert not keep[-2:].any() and keep[:-2].mean() > 0.9


def test_guard_band_grows_horizontally_only():
    occupied = np.zeros(GRID.shape, bool)
    occupied[5, 5, 3] = True
    grown = guard_band(occupied, 1)
    assert grown[4:7, 4:7, 3].all() and grown.sum() == 9


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"past_frames": -1}, "^config past_frames: -1 is below the minimum 0$"),
        ({"min_points": 0}, "^config min_points: 0 is below the minimum 1$"),
        ({"free_margin": 1.5}, "^config free_margin: 1.5 is above the maximum 0.99$"),
        ({"bogus": 1}, "^unknown config key 'bogus'; known: past_frames, "),
    ],
)
def test_config_rejects_bad_values(fields, message):
    with pytest.raises(EasyOccError, match=message):
        PseudoLabelConfig.from_dict(fields)
