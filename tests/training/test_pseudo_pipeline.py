"""Pseudo-labels end to end: the synthetic world with simulated providers, the real nuScenes scene
with lidar depth and box semantics, bad inputs, relative-depth alignment."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from easyocc.runtime.contract.classes import FREE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.labels import labels_path, read_labels
from easyocc.runtime.dataset.nuscenes import NuScenesDataset
from easyocc.training.pseudo.cache import ProviderCache
from easyocc.training.pseudo.evaluate import LabelQuality, next_frame_lidar_fraction
from easyocc.training.pseudo.lidar_boxes import BoxSegmenter, LidarDepth
from easyocc.training.pseudo.pipeline import ProviderError, PseudoLabelConfig, PseudoLabeler
from easyocc.training.pseudo.providers import DepthEstimator
from easyocc.training.pseudo.registry import build_depth, build_segmenter


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory):
    synth = pytest.importorskip("easyocc.training.synth")
    root = tmp_path_factory.mktemp("pseudo-synth")
    synth.generate_dataset(root, synth.SynthConfig(scenes=1, frames=4, image_size=(176, 64), seed=3), progress=False)
    return root


def test_simulated_low_noise_labels_free_space_correctly(small_synth):
    dataset = NuScenesDataset(small_synth)
    samples = dataset.samples()
    labeler = PseudoLabeler(
        dataset, build_segmenter("simulated-low"), build_depth("simulated-low"), PseudoLabelConfig(past_frames=3)
    )
    quality = LabelQuality()
    for index in (2, 3):
        labels, info = labeler.label(samples, index)
        assert info["frames_used"] == index + 1 and info["occupied"] > 0
        quality.update(labels, read_labels(dataset.labels_path(samples[index])))
    results = quality.results()
    assert results["free_precision"] >= 95.0  # percent
    assert results["occupied_precision"] > 70.0 and results["geometry_iou"] > 30.0


def test_simulated_noise_levels_differ_and_are_reproducible(small_synth):
    dataset = NuScenesDataset(small_synth)
    sample = dataset.samples()[0]
    from easyocc.training.pseudo.providers import ImageView

    camera = dataset.rig(sample)["CAM_FRONT"]
    view = ImageView(dataset, sample, "CAM_FRONT", sample.cameras["CAM_FRONT"], camera)
    image = np.zeros((*view.shape, 3), np.uint8)
    truth = build_depth("ground-truth").estimate(image, view)
    low, high = (build_depth(f"simulated-{n}").estimate(image, view) for n in ("low", "high"))
    valid = truth > 0
    error = [np.median(np.abs(d[valid] / truth[valid] - 1)) for d in (low, high)]
    assert 0 < error[0] < error[1]
    assert np.array_equal(low, build_depth("simulated-low").estimate(image, view))
    assert np.all(low[~valid] == 0)
    seg_truth = build_segmenter("ground-truth").segment(image, view).classes
    seg_high = build_segmenter("simulated-high").segment(image, view).classes
    assert 0 < (seg_high != seg_truth).mean() < 0.5


def test_real_scene_three_frames_lidar_and_boxes(nuscenes_dataset, tmp_path):
    samples = nuscenes_dataset.samples()[:4]
    labeler = PseudoLabeler(
        nuscenes_dataset, BoxSegmenter(), LidarDepth(), PseudoLabelConfig(past_frames=2), ProviderCache(tmp_path)
    )
    labels, info = labeler.label(samples, 2)
    assert info["frames_used"] == 3
    assert labels.semantics.shape == (200, 200, 16)
    assert (labels.semantics != FREE).sum() > 5000 and labels.mask_camera.sum() > 50000
    assert labels.mask_lidar.sum() > 0 and not np.array_equal(labels.mask_lidar, labels.mask_camera)
    result = next_frame_lidar_fraction(nuscenes_dataset, labels, samples[2], samples[3], labeler.config.grid)
    assert result["points"] > 10000
    assert result["fraction"] > 0.45 and result["fraction_within_1_voxel"] > 0.65


class _Broken(DepthEstimator):
    name = "broken"

    def __init__(self, mode, bad_channel="CAM_BACK"):
        self.mode, self.bad_channel = mode, bad_channel

    def estimate(self, image_rgb, view):
        if view.channel != self.bad_channel:
            return np.full(view.shape, 10.0, np.float32)
        if self.mode == "raise":
            raise RuntimeError("CUDA out of memory (simulated)")
        return np.zeros((view.shape[0] + 1, view.shape[1]), np.float32)


@pytest.mark.parametrize("mode, message", [("raise", "RuntimeError: CUDA out of memory"), ("shape", "depth map shape")])
def test_provider_failure_names_the_image(small_synth, mode, message):
    dataset = NuScenesDataset(small_synth)
    labeler = PseudoLabeler(dataset, build_segmenter("ground-truth"), _Broken(mode), PseudoLabelConfig(past_frames=1))
    with pytest.raises(ProviderError, match=f"image .*CAM_BACK.*{message}"):
        labeler.label(dataset.samples(), 0)


def test_missing_image_is_a_named_failure_and_past_frames_are_dropped(small_synth, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(small_synth, root)
    dataset = NuScenesDataset(root)
    samples = dataset.samples()
    samples[0].cameras["CAM_FRONT"].path.unlink()
    labeler = PseudoLabeler(dataset, build_segmenter("ground-truth"), LidarDepth(), PseudoLabelConfig(past_frames=3))
    with pytest.raises(ProviderError, match="CAM_FRONT.*not found|No such file"):
        labeler.label(samples, 0)
    labels, info = labeler.label(samples, 1)  # the broken past frame is dropped with its reason
    assert info["frames_used"] == 1 and "CAM_FRONT" in info["past_frames_dropped"][0]


def test_relative_depth_alignment_recovers_scale_and_shift(small_synth):
    """A relative model's disparity x = 7 (1/z - 0.01): the fit in disparity space recovers
    1/z = x / 7 + 0.01 with lidar and, camera-only, from the ground and photometry."""
    from easyocc.training.pseudo.align import AlignedDepth
    from easyocc.training.pseudo.providers import ImageView
    from easyocc.training.pseudo.simulated import SimulatedDepth

    class Relative(SimulatedDepth):
        relative = True

        def estimate(self, image_rgb, view):
            depth = super().estimate(image_rgb, view)
            return np.where(depth > 0, 7.0 * (1.0 / np.maximum(depth, 1e-6) - 0.01), -0.07).astype(np.float32)

    dataset = NuScenesDataset(small_synth)
    sample = dataset.samples()[1]
    view = ImageView(dataset, sample, "CAM_FRONT", sample.cameras["CAM_FRONT"], dataset.rig(sample)["CAM_FRONT"])
    from easyocc.runtime.contract.preprocess import read_image

    image = read_image(view.path)
    x_at_36 = 7.0 * (1 / 36 - 0.01)
    for anchor, tolerance in (("lidar", 0.02), ("none", 0.10)):
        aligned = AlignedDepth(Relative(noise="none"), anchor=anchor)
        aligned.estimate(image, view)
        fit = aligned.last_fit
        assert abs(1 / (fit.scale * x_at_36 + fit.shift) - 36.0) / 36.0 < tolerance, (anchor, fit)


def test_config_from_dict_round_trips():
    config = PseudoLabelConfig(past_frames=4, dynamic_filter=False)
    assert PseudoLabelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(EasyOccError, match="grid"):
        PseudoLabelConfig.from_dict({"grid": {"lower": [0, 0, 0], "upper": [1, 1, 1], "voxel_size": 0.3}})


def test_labels_written_by_the_pipeline_read_back(small_synth, tmp_path):
    from easyocc.runtime.dataset.labels import write_labels

    dataset = NuScenesDataset(small_synth)
    labels, _ = PseudoLabeler(
        dataset, build_segmenter("ground-truth"), build_depth("ground-truth"), PseudoLabelConfig(past_frames=0)
    ).label(dataset.samples(), 0)
    path = labels_path(tmp_path, "s", "t")
    write_labels(path, labels)
    again = read_labels(path)
    assert np.array_equal(again.semantics, labels.semantics) and set(np.unique(again.mask_camera)) <= {0, 1}
