"""Training data on the synthetic world: shapes, determinism, and geometry-consistent augmentation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from easyocc.calibration import build_view_transform  # noqa: E402
from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from easyocc.runtime.contract.grid import GridSpec  # noqa: E402
from easyocc.training.data import Augment, OccDataset, split_scenes  # noqa: E402

# The tiny training setup is shared with other tests and the benchmarks (easyocc.testing).
from easyocc.testing import make_tiny_world  # noqa: E402
from easyocc.testing import tiny_model_config as tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp("synth"))


def test_item_shapes_and_types(world):
    dataset = OccDataset(world, "", tiny_config())
    assert len(dataset) == 4
    item = dataset[0]
    assert item["images"].shape == (6, 64, 128, 3) and item["images"].dtype == torch.uint8
    assert item["vt_uv"].shape == (6, 1250, 2) and item["vt_weights"].shape == (6, 1250)
    assert item["semantics"].shape == (50, 50, 4) and item["semantics"].dtype == torch.int64
    assert item["mask"].dtype == torch.bool and item["mask"].any()
    # every cell a camera sees has weights summing to one over the cameras
    total = item["vt_weights"].sum(0)
    assert torch.allclose(total[total > 0], torch.ones(1))


def test_augmentation_is_a_function_of_key_only(world):
    a = OccDataset(world, "", tiny_config(), augment=True, seed=3)
    b = OccDataset(world, "", tiny_config(), augment=True, seed=3)
    for key in (1, 5):
        assert torch.equal(a[key]["images"], b[key]["images"]) and torch.equal(a[key]["vt_uv"], b[key]["vt_uv"])
    draws = {a.draw_augment(1, epoch) for epoch in range(20)}
    assert len(draws) > 10 and any(d.flip_x for d in draws) and any(d.scale > 1 for d in draws)


def test_bev_flip_equals_tables_of_the_mirrored_rig(world):
    """Reversing cell order equals projecting mirrored cell centres (the rig seen in a mirrored
    ego frame), and the labels flip with it."""
    config = tiny_config()
    dataset = OccDataset(world, "", config)
    plain = dataset.item(0, Augment())
    flipped = dataset.item(0, Augment(flip_x=True, flip_y=True))
    rig = dataset.network_rig(dataset.samples[0]).resized(*config.input_size)
    centres = config.grid_spec.centres(config.stride_xy, config.stride_z) * np.array([-1.0, -1.0, 1.0])
    mirrored = build_view_transform(rig, centres, config.min_depth_m)
    np.testing.assert_allclose(flipped["vt_uv"].numpy(), mirrored.uv_norm, atol=1e-5)
    np.testing.assert_array_equal(flipped["vt_weights"].numpy(), mirrored.weights)
    assert torch.equal(flipped["semantics"], plain["semantics"].flip(0, 1))
    assert torch.equal(flipped["images"], plain["images"])


def test_resize_crop_keeps_pixels_and_tables_consistent(world):
    """Colours sampled at the tables' coordinates are the same scene points with and without the
    resize-and-crop augmentation; with a stale (unaugmented) K they are not."""
    dataset = OccDataset(world, "", tiny_config(stride_xy=1, stride_z=1))
    plain = dataset.item(1, Augment())
    augmented = dataset.item(1, Augment(scale=1.25, crop_xy=(20, 10)))

    def colours(item, uv):
        images = item["images"].permute(0, 3, 1, 2).float()
        return torch.nn.functional.grid_sample(images, uv[:, None], align_corners=False)[:, :, 0]  # [N, 3, M]

    seen = (plain["vt_weights"] > 0) & (augmented["vt_weights"] > 0)
    reference = colours(plain, plain["vt_uv"])
    consistent = (colours(augmented, augmented["vt_uv"]) - reference).abs().mean(1)[seen].mean()
    stale = (colours(augmented, plain["vt_uv"]) - reference).abs().mean(1)[seen].mean()
    assert consistent < 0.5 * stale


def test_split_and_missing_labels(world, tmp_path):
    assert split_scenes(["a", "b", "c"], 1) == (["a", "b"], ["c"])
    with pytest.raises(EasyOccError, match="cannot hold out 3 of 3"):
        split_scenes(["a", "b", "c"], 3)
    with pytest.raises(EasyOccError, match="has labels under"):
        OccDataset(world, tmp_path, tiny_config())
    with pytest.raises(EasyOccError, match="grid expects"):
        OccDataset(world, "", tiny_config(grid=GridSpec(voxel_size=3.2).to_dict(), stride_xy=1, stride_z=1))[0]
