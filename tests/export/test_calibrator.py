"""INT8 calibration logic on the CPU: batching in TensorRT's name order, limits, validation, cache files."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.export.calibrator import CalibrationCache, CalibrationFeeder
from easyocc.export.feeds import dataset_feeds, synthetic_feeds
from easyocc.runtime.contract.errors import EasyOccError


def test_batches_follow_the_requested_name_order_and_limit(standin, rig):
    _, manifest = standin
    feeds = synthetic_feeds(manifest, rig, 3)
    feeder = CalibrationFeeder(manifest, feeds, limit=2)
    names = ["vt_weights", "images", "vt_uv"]
    first = feeder.next_batch(names)
    assert [a.dtype for a in first] == [np.float32, np.uint8, np.float32]
    np.testing.assert_array_equal(first[1], feeds[0]["images"])
    assert all(a.flags.c_contiguous for a in first)
    assert feeder.next_batch(names) is not None
    assert feeder.next_batch(names) is None  # limit reached
    assert feeder.served == 2 and feeder.batch_size == 1
    assert feeder.nbytes("images") == feeds[0]["images"].nbytes


def test_unknown_input_and_bad_frames_are_refused(standin, rig):
    _, manifest = standin
    feeds = synthetic_feeds(manifest, rig, 1)
    with pytest.raises(EasyOccError, match="asked for input 'image'"):
        CalibrationFeeder(manifest, feeds).next_batch(["image"])
    bad = dict(feeds[0], images=feeds[0]["images"][:, :-1])
    with pytest.raises(EasyOccError, match="calibration: input .images. has shape"):
        CalibrationFeeder(manifest, [bad]).next_batch(["images"])


def test_cache_is_bound_to_one_onnx_model(tmp_path):
    cache = CalibrationCache(tmp_path / "calib.cache", "a" * 64)
    assert cache.read() is None and "no cache file" in cache.status
    cache.write(b"TRT-8601-EntropyCalibration2\n", frames=32)
    assert cache.read() == b"TRT-8601-EntropyCalibration2\n"
    assert "32 frames" in cache.status
    other = CalibrationCache(tmp_path / "calib.cache", "b" * 64)
    assert other.read() is None and "another ONNX model" in other.status


def test_real_frames_are_preprocessed_like_the_runtime(standin, nuscenes_root):
    _, manifest = standin
    feeds = list(dataset_feeds(manifest, nuscenes_root, count=2, stride=10))
    assert len(feeds) == 2
    width, height = manifest.input_size
    assert feeds[0]["images"].shape == (6, height, width, 3)
    assert feeds[0]["images"].std() > 10  # real pictures, not blank
    assert (feeds[0]["vt_weights"] > 0).any()
    feeder = CalibrationFeeder(manifest, feeds)
    assert feeder.next_batch(["images", "vt_uv", "vt_weights"]) is not None
