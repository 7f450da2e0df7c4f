"""Faults: each is dropped, counted and logged once with a clear message, and the stream goes on."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from easyocc.runtime.backends import create_runner
from easyocc.runtime.backends.base import Runner
from easyocc.runtime.contract.frames import (
    BACKEND_ERROR,
    CORRUPT_IMAGE,
    IMAGE_SIZE,
    MISSING_CAMERA,
    OUT_OF_SYNC,
    STAMP_BACKWARDS,
    CameraImage,
    FrameError,
    FrameSet,
)
from easyocc.runtime.occupancy import OccupancyRuntime
from easyocc.runtime.pipeline import StreamPipeline
from easyocc.runtime.sources import IterableSource

from tests.runtime.stream_fixtures import (
    encode_jpeg,
    expected_class,
    grey_frame,
    rig,  # noqa: F401  (pytest fixture)
    tiny_model,  # noqa: F401  (pytest fixture)
)


class FailingOnce(Runner):
    """Fault injection around a real ONNX Runtime runner: raises on chosen frames' inference calls."""

    name = "failing-once"

    def __init__(self, inner: Runner, fail_calls=(2,)):
        super().__init__()
        self.inner, self.fail_calls, self.calls = inner, set(fail_calls), 0

    def _activate(self):
        self.inner.activate()
        self.manifest = self.inner.manifest

    def _deactivate(self):
        self.inner.deactivate()

    def _static_changed(self, names):
        self.inner.set_static({n: self._static[n] for n in names})

    def _infer(self, feed):
        self.calls += 1
        if self.calls in self.fail_calls:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self.inner.infer({"images": feed["images"]})


def corrupt(frame: FrameSet, camera: str) -> FrameSet:
    """Replace one camera's JPEG by a start-of-image marker followed by garbage."""
    frame.images[camera].data = b"\xff\xd8garbage"
    return frame


def run_one_fault(tiny_model, rig, make_bad, reason: str, match: str, caplog, **options):  # noqa: F811
    """good frame, two bad frames (make_bad(stamp_us, seq)), good frame: the bad ones raise
    FrameError(reason) and are counted, the fault is logged once, the good ones pass."""
    caplog.set_level(logging.WARNING, logger="easyocc.runtime")
    with OccupancyRuntime(tiny_model, rig=rig, **options) as runtime:
        first = runtime.process(grey_frame(rig, 150, stamp_us=1_000_000, seq=0))
        with pytest.raises(FrameError, match=match) as info:
            runtime.process(make_bad(2_000_000, 1))
        assert info.value.reason == reason
        with pytest.raises(FrameError):  # the same fault again: counted, not logged again
            runtime.process(make_bad(2_500_000, 2))
        after = runtime.process(grey_frame(rig, 150, stamp_us=3_000_000, seq=3))
        drops = runtime.drops.as_dict()
    assert drops == {reason: 2}
    assert np.array_equal(first.semantics, after.semantics)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and reason in r.getMessage()]
    assert len(warnings) == 1


def test_corrupt_jpeg(tiny_model, rig, caplog):  # noqa: F811
    def bad(stamp_us, seq):
        return corrupt(grey_frame(rig, 150, stamp_us, seq), "CAM_BACK")

    run_one_fault(tiny_model, rig, bad, CORRUPT_IMAGE, "camera CAM_BACK: not a decodable JPEG or PNG", caplog)


def test_wrong_image_size(tiny_model, rig, caplog):  # noqa: F811
    def bad(stamp_us, seq):
        frame = grey_frame(rig, 150, stamp_us, seq)
        small = np.full((90, 160, 3), 150, np.uint8)
        frame.images["CAM_FRONT_LEFT"] = CameraImage("CAM_FRONT_LEFT", stamp_us, data=encode_jpeg(small))
        return frame

    run_one_fault(
        tiny_model,
        rig,
        bad,
        IMAGE_SIZE,
        r"camera CAM_FRONT_LEFT: image is (about )?160x90.*, its calibration is for 320x180",
        caplog,
    )


def test_missing_camera_dropped(tiny_model, rig, caplog):  # noqa: F811
    def bad(stamp_us, seq):
        return grey_frame(rig, 150, stamp_us, seq, skip=("CAM_BACK_RIGHT",))

    run_one_fault(tiny_model, rig, bad, MISSING_CAMERA, "camera CAM_BACK_RIGHT is missing from frame 1", caplog)


def test_camera_out_of_sync_dropped(tiny_model, rig, caplog):  # noqa: F811
    def bad(stamp_us, seq):
        frame = grey_frame(rig, 150, stamp_us, seq)
        frame.images["CAM_FRONT"].stamp_us = stamp_us - 80_000
        return frame

    run_one_fault(tiny_model, rig, bad, OUT_OF_SYNC, "camera CAM_FRONT is 80.0 ms off the frame stamp", caplog)


def test_timestamp_backwards(tiny_model, rig, caplog):  # noqa: F811
    def bad(stamp_us, seq):
        return grey_frame(rig, 150, 900_000 - 100_000 * seq, seq)  # older than the first frame (1 s)

    run_one_fault(tiny_model, rig, bad, STAMP_BACKWARDS, "frame 1 stamp 800000 us is 200.0 ms older", caplog)


def test_backend_exception_on_one_frame(tiny_model, rig, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING, logger="easyocc.runtime")
    runner = FailingOnce(create_runner(tiny_model), fail_calls=(2,))
    with OccupancyRuntime(backend=runner, rig=rig) as runtime:
        runtime.process(grey_frame(rig, 150, stamp_us=1, seq=0))
        with pytest.raises(FrameError, match="failing-once failed on frame 1: CUDA error: an illegal memory") as info:
            runtime.process(grey_frame(rig, 150, stamp_us=2, seq=1))
        assert info.value.reason == BACKEND_ERROR
        result = runtime.process(grey_frame(rig, 150, stamp_us=3, seq=2))
        assert runtime.drops.as_dict() == {BACKEND_ERROR: 1}
    assert np.mean(result.semantics[result.semantics != 17] == expected_class(150)) > 0.7


def test_missing_camera_zero_policy_runs_with_zeroed_weights(tiny_model, rig):  # noqa: F811
    with OccupancyRuntime(tiny_model, rig=rig, missing_camera="zero") as runtime:
        full = runtime.process(grey_frame(rig, 150, stamp_us=1, seq=0))
        partial = runtime.process(grey_frame(rig, 150, stamp_us=2, seq=1, skip=("CAM_BACK",)))
        seen_full, seen_partial = runtime.observed(()), runtime.observed((3,))
        again = runtime.process(grey_frame(rig, 150, stamp_us=3, seq=2))
        assert runtime.drops.total == 0
    assert partial.missing_cameras == ("CAM_BACK",) and full.missing_cameras == ()
    only_back = seen_full & ~seen_partial  # cells only CAM_BACK sees: now unseen, hence free
    assert only_back.sum() > 10
    assert np.all(partial.semantics[only_back] == 17) and np.any(full.semantics[only_back] != 17)
    # Cells other cameras still see keep their class (weights renormalised, not halved).
    assert np.mean(partial.semantics[seen_partial] == expected_class(150)) > 0.7
    assert np.array_equal(full.semantics, again.semantics)  # the full rig's tables are restored


def test_all_faults_in_one_stream_are_counted_and_the_stream_continues(tiny_model, rig, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING, logger="easyocc.runtime")
    frames = [grey_frame(rig, 150, stamp_us=100_000 * (i + 1), seq=i) for i in range(12)]
    corrupt(frames[2], "CAM_FRONT")
    del frames[4].images["CAM_BACK_LEFT"]
    frames[6].images["CAM_FRONT"] = CameraImage(
        "CAM_FRONT", frames[6].stamp_us, data=encode_jpeg(np.zeros((50, 50, 3), np.uint8))
    )
    frames[8].stamp_us = frames[7].stamp_us - 50_000
    for image in frames[8].images.values():
        image.stamp_us = frames[8].stamp_us
    runner = FailingOnce(create_runner(tiny_model), fail_calls=(6,))  # the 6th inference call
    with OccupancyRuntime(backend=runner, rig=rig) as runtime:
        report = StreamPipeline(runtime, IterableSource(frames)).run()
    assert report.frames_in == 12 and report.frames_out == 7
    assert report.drops == {CORRUPT_IMAGE: 1, MISSING_CAMERA: 1, IMAGE_SIZE: 1, STAMP_BACKWARDS: 1, BACKEND_ERROR: 1}
    assert [r.seq for r in report.records] == [0, 1, 3, 5, 7, 10, 11]
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(logged) == 5
