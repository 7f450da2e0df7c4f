"""View-transform tables: sampling coordinates agree with project(); weights are 1/num cameras."""

import numpy as np
import pytest
from easyocc.calibration import build_view_transform, default_rig
from easyocc.runtime.contract.grid import OCC3D_NUSCENES


@pytest.fixture(scope="module")
def rig():
    return default_rig().resized(704, 256)


def test_sampling_coordinate_is_the_projected_pixel(rig):
    torch = pytest.importorskip("torch", reason="grid_sample reference needs torch")
    centres = OCC3D_NUSCENES.centres(2, 2).reshape(-1, 3)
    tables = build_view_transform(rig, centres)
    camera = rig["CAM_FRONT"]
    seen = tables.weights[0] > 0
    uv, _, inside = camera.project(centres)
    assert np.array_equal(seen, inside)
    # Ramps whose value is the pixel's own u and v: bilinear sampling returns the sampled position.
    v_grid, u_grid = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float32)
    ramps = torch.from_numpy(np.stack([u_grid, v_grid]))[None]
    grid = torch.from_numpy(tables.uv_norm[0][seen])[None, :, None, :]
    sampled = torch.nn.functional.grid_sample(ramps, grid, mode="bilinear", align_corners=False)[0, :, :, 0].T.numpy()
    # Away from the border (where zero padding blends in) the sample is exactly the projection.
    interior = (
        (uv[seen, 0] > 1) & (uv[seen, 0] < camera.width - 2) & (uv[seen, 1] > 1) & (uv[seen, 1] < camera.height - 2)
    )
    assert interior.sum() > 1000
    np.testing.assert_allclose(sampled[interior], uv[seen][interior], atol=2e-3)


def test_weights_sum_to_one_where_seen_and_zero_elsewhere(rig):
    centres = OCC3D_NUSCENES.centres(2, 2).reshape(-1, 3)
    tables = build_view_transform(rig, centres)
    total = tables.weights.sum(axis=0)
    seen_by_any = (tables.weights > 0).any(axis=0)
    np.testing.assert_allclose(total[seen_by_any], 1.0, atol=1e-6)
    assert np.all(total[~seen_by_any] == 0)
    # Voxels seen by two cameras get 1/2 each.
    counts = (tables.weights > 0).sum(axis=0)
    assert (counts == 2).any()
    np.testing.assert_allclose(tables.weights[:, counts == 2].max(axis=0), 0.5)
    # Unseen voxels sample outside [-1, 1] so zero padding returns 0.
    assert np.all(np.abs(tables.uv_norm[tables.weights == 0]) > 1)


def test_voxel_seen_by_no_camera_gets_zero_weight(rig):
    # Directly above the car and far below the ground: no camera sees these.
    tables = build_view_transform(rig, np.array([[0.0, 0.0, 30.0], [0.0, 0.0, -30.0], [20.0, 0.0, 1.0]]))
    assert tables.weights[:, 0].sum() == 0
    assert tables.weights[:, 1].sum() == 0
    assert tables.weights[rig.names.index("CAM_FRONT"), 2] == 1.0


def test_missing_camera_renormalises(rig):
    centres = OCC3D_NUSCENES.centres(4, 4).reshape(-1, 3)
    tables = build_view_transform(rig, centres).with_cameras_zeroed([0])
    assert np.all(tables.weights[0] == 0)
    total = tables.weights.sum(axis=0)
    np.testing.assert_allclose(total[total > 0], 1.0, atol=1e-6)
