"""Dynamic objects and masks in the 3-D stage: a synthetic car moving through the key frames, its
points given to the labeler's frame-cloud cache (the path providers fill), past frames' static
observations where the car is now."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.calibration import transform_points
from easyocc.runtime.contract.classes import CLASS_ID, FREE
from easyocc.runtime.dataset.nuscenes import NuScenesDataset
from easyocc.training.pseudo.pipeline import FrameCloud, PseudoLabelConfig, PseudoLabeler, label_frame_pose
from easyocc.training.pseudo.registry import build_depth, build_segmenter

CAR, MANMADE, ROAD = CLASS_ID["car"], CLASS_ID["manmade"], CLASS_ID["driveable_surface"]


def _box(x0, y0=-0.9, size=(3.8, 1.8, 1.4), step=0.1):
    xs, ys, zs = (np.arange(0, s, step) for s in size)
    grid = np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), -1).reshape(-1, 3)
    return grid + [x0, y0, 0.0]


def _cloud(sample, parts):
    """FrameCloud of (points in the key frame's label frame, class) parts; cameras at the origin."""
    pose = label_frame_pose(sample)
    points = np.concatenate([p for p, _ in parts])
    classes = np.concatenate([np.full(len(p), c, np.uint8) for p, c in parts])
    origin = transform_points(pose, np.array([[0.0, 0.0, 1.5]]))
    return FrameCloud(transform_points(pose, points), classes, np.zeros(len(points), np.uint8), origin)


@pytest.fixture
def moving_car(synth_root):
    dataset = NuScenesDataset(synth_root)
    samples = dataset.samples()[:3]
    key = samples[2]
    ground = np.stack(np.meshgrid(np.arange(2, 20, 0.2), np.arange(-3, 3, 0.2), [-0.2], indexing="ij"), -1).reshape(
        -1, 3
    )
    clouds = {
        # the car drove from x = 4 (oldest) to x = 12 (now); the past frames saw a wall where it is now
        samples[0].token: [(_box(4.1), CAR), (_box(12.1, size=(3.8, 1.8, 0.4), step=0.05) + [0, 0, 0.6], MANMADE)],
        samples[1].token: [(_box(8.1), CAR), (ground, ROAD)],
        key.token: [(_box(12.1), CAR), (ground[ground[:, 0] < 12], ROAD)],
    }

    def labeler(**config):
        made = PseudoLabeler(
            dataset, build_segmenter("ground-truth"), build_depth("ground-truth"), PseudoLabelConfig(past_frames=2, outlier_removal=False, **config), read_lidar=False
        )  # fmt: skip
        for sample in samples:  # every part is given in the key frame; global points are frame-free
            made._clouds[sample.token] = _cloud(key, clouds[sample.token])
        return made

    return samples, labeler


def _voxels(grid, points):
    index, inside = grid.index_of(points)
    return {tuple(i) for i in index[inside]}


def test_moving_car_keeps_its_class_and_leaves_no_trail(moving_car):
    samples, labeler = moving_car
    made = labeler()
    labels, info = made.label(samples, 2)
    grid = made.config.grid
    now = _voxels(grid, _box(12.1))
    assert all(labels.semantics[v] == CAR for v in now)  # past frames' wall votes do not win
    trail = _voxels(grid, np.concatenate([_box(4.1), _box(8.1)])) - now
    assert not any(labels.semantics[v] == CAR for v in trail)
    assert info["frames_used"] == 3


def test_without_the_dynamic_filter_past_positions_leave_a_trail(moving_car):
    samples, labeler = moving_car
    made = labeler(dynamic_filter=False)
    labels, _ = made.label(samples, 2)
    trail = _voxels(made.config.grid, _box(4.1)) - _voxels(made.config.grid, _box(12.1))
    assert np.mean([labels.semantics[v] == CAR for v in trail]) > 0.9


def test_mask_camera_is_the_key_frames_own_visibility(moving_car):
    samples, labeler = moving_car
    made = labeler()
    labels, info = made.label(samples, 2)
    grid = made.config.grid
    road_seen_only_before = _voxels(grid, np.array([[x, 0.1, -0.2] for x in np.arange(16.2, 19.8, 0.4)]))
    labelled = [v for v in road_seen_only_before if labels.semantics[v] == ROAD]
    assert labelled and not any(labels.mask_camera[v] for v in labelled)  # labelled by the past, not seen now
    seen_now = _voxels(grid, np.array([[x, 0.1, -0.2] for x in np.arange(4.2, 11.8, 0.4)]))
    assert all(labels.mask_camera[v] for v in seen_now if labels.semantics[v] != FREE)
    assert info["observed_now"] < info["observed_accumulated"]
    assert np.array_equal(labels.mask_lidar, labels.mask_camera)  # camera-only: no lidar read
