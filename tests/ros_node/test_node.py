"""The node as a real ROS 2 process: outputs equal the runtime's, faults are dropped and reported, SIGINT is clean.

One node process (tiny contract model, small rig) serves the tests of this module in order; the test
process publishes cameras and collects outputs over Fast DDS on loopback.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tests.ros_node.helpers import CameraPublisher, Collector, RosProcess

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

LEVELS = (60, 130, 200)


class Rig:
    """What the tests of this module share."""


@pytest.fixture(scope="module")
def live(tiny_model, ros_context, tmp_path_factory):
    from easyocc.ros_node.params import PARAMETERS  # noqa: F401  (fails early when ros_node is broken)

    from tests.runtime.stream_fixtures import small_rig

    model, rig_file = tiny_model
    folder = tmp_path_factory.mktemp("ros_node")
    rig = small_rig()
    proc = RosProcess(
        [
            "run",
            "--model",
            str(model),
            "--rig",
            str(rig_file),
            "--frame-id",
            "ego",
            "-p",
            "stale_timeout_s:=0.5",
            "-p",
            "diagnostics_period_s:=0.5",
            "-p",
            "publish_markers:=true",
            "-p",
            "input_reliability:=reliable",
            "-p",
            "input_depth:=20",
            "-p",
            "threads:=1",
            "--json",
            str(folder / "stats.json"),
        ],
        _env(),
        folder / "node.log",
    )
    collector = cameras = None
    try:
        assert proc.wait_for_output("active:", 60), proc.output
        collector = Collector(ros_context, markers=True)
        cameras = CameraPublisher(ros_context, rig.names)
        assert cameras.wait_for_subscribers(30), "the node never subscribed to the camera topics"
        assert collector.publishers_ready("points", 30)
        state = Rig()
        state.proc, state.collector, state.cameras, state.rig, state.model, state.folder = (
            proc,
            collector,
            cameras,
            rig,
            model,
            folder,
        )
        state.stamp_us = 1_000_000
        yield state
    finally:
        if collector:
            collector.close()
        if cameras:
            cameras.close()
        proc.close()


def _env():
    import os

    return dict(os.environ)  # the session fixture has set the test domain in this process's environment


def _next_stamp(live, step_us: int = 100_000) -> int:
    live.stamp_us += step_us
    return live.stamp_us


def _send_frame(live, level: int, **kwargs) -> int:
    stamp = _next_stamp(live)
    live.cameras.publish_grey(live.rig, level, stamp, **kwargs)
    return stamp


def _pipeline_status(live, reason: str, timeout_s: float = 5.0):
    """The newest pipeline status that counts drops for `reason` (None when none arrives in time)."""
    from easyocc.ros_node.diagnostics import values_of

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for array in reversed(live.collector.get("diagnostics")):
            for status in array.status:
                if status.name.endswith("pipeline") and f"dropped/{reason}" in values_of(status):
                    return status
        time.sleep(0.05)
    return None


def _was_warned(live, text: str) -> bool:
    from easyocc.ros_node.diagnostics import WARN, level_of

    return any(
        level_of(s) == WARN and text in s.message for array in live.collector.get("diagnostics") for s in array.status
    )


def _good_frame_goes_through(live) -> None:
    """The frame's own cloud arrives (matched by its stamp: on a loaded machine an earlier frame's cloud
    may still be on its way, so the newest message is not necessarily this frame's)."""
    stamp = _send_frame(live, 120)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(_stamp_us(msg.header.stamp) == stamp for msg in live.collector.get("points")):
            return
        time.sleep(0.02)
    raise AssertionError(f"no output for the good frame at {stamp} us after a bad one")


def _stamp_us(stamp) -> int:
    return stamp.sec * 1_000_000 + stamp.nanosec // 1000


def test_outputs_equal_the_runtime_for_the_same_frames(live):
    from easyocc.ros_node import conversions
    from easyocc.runtime.contract.frames import CameraImage, FrameSet
    from easyocc.runtime.occupancy import OccupancyRuntime

    stamps = []
    for index, level in enumerate(LEVELS):
        stamps.append(_send_frame(live, level))
        assert live.collector.wait_for("points", index + 1, 15), live.proc.output[-2000:]
    assert live.collector.wait_for("grid", 3, 5) and live.collector.wait_for("bev", 3, 5)
    info = live.collector.get("grid_info")
    assert info, "grid_info is latched and must reach a late subscriber"
    grid = conversions.grid_from_info(info[-1].data)
    with OccupancyRuntime(live.model, rig=live.rig, threads=1) as runtime:
        assert grid == runtime.grid
        for index, (level, stamp) in enumerate(zip(LEVELS, stamps)):
            images = {
                c.name: CameraImage(c.name, stamp, image=np.full((c.height, c.width, 3), level, np.uint8))
                for c in live.rig
            }
            expected = runtime.process(FrameSet(stamp, images, seq=index + 1))
            cloud = live.collector.get("points")[index]
            bev = live.collector.get("bev")[index]
            dense = live.collector.get("grid")[index]
            for msg in (cloud, bev, dense):
                assert _stamp_us(msg.header.stamp) == stamp and msg.header.frame_id == "ego"
            xyz, labels, confidence = conversions.cloud_to_arrays(cloud)
            assert len(labels) > 0
            np.testing.assert_array_equal(labels, expected.voxels.labels)  # bit-exact
            np.testing.assert_array_equal(xyz, expected.voxels.xyz_ego)
            # float reductions may be ordered differently across ONNX Runtime threads: 1e-6, not bit-exact
            np.testing.assert_allclose(confidence, expected.voxels.confidence, rtol=0, atol=1e-6)
            np.testing.assert_array_equal(conversions.bev_from_msg(bev), expected.bev)
            unobserved = np.where(expected.observed, expected.semantics, conversions.UNOBSERVED)
            np.testing.assert_array_equal(conversions.dense_grid_from_msg(dense, grid), unobserved)
    markers = live.collector.get("markers")
    assert markers and sum(len(m.points) for m in markers[-1].markers) == len(labels)


def test_wrong_encoding_is_dropped_with_a_diagnostic(live):
    from easyocc.ros_node.diagnostics import values_of

    before = len(live.collector.get("points"))
    stamp = _next_stamp(live)
    live.cameras.publish_grey(live.rig, 90, stamp, skip=("CAM_BACK",))
    live.cameras.publish_grey([live.rig["CAM_BACK"]], 90, stamp, encoding="yuv422")
    status = _pipeline_status(live, "unsupported_encoding")
    assert status is not None, "no diagnostic for the bad encoding"
    values = values_of(status)
    assert int(values["dropped/unsupported_encoding"]) >= 1
    assert values["last_drop/unsupported_encoding"] == (
        "camera CAM_BACK: image encoding 'yuv422' is not supported (rgb8, bgr8, rgba8, bgra8)"
    )
    assert _was_warned(live, "yuv422")
    time.sleep(0.3)
    assert len(live.collector.get("points")) == before  # that frame produced nothing
    _good_frame_goes_through(live)


def test_wrong_size_is_dropped_with_a_diagnostic(live):
    from easyocc.ros_node.diagnostics import values_of

    stamp = _next_stamp(live)
    live.cameras.publish_grey(live.rig, 90, stamp, skip=("CAM_FRONT",))
    live.cameras.publish_grey([live.rig["CAM_FRONT"]], 90, stamp, size=(160, 90))
    status = _pipeline_status(live, "image_size")
    assert status is not None and int(values_of(status)["dropped/image_size"]) >= 1
    assert values_of(status)["last_drop/image_size"] == "camera CAM_FRONT: image is 160x90, the rig expects 320x180"
    assert _was_warned(live, "160x90")
    _good_frame_goes_through(live)


def test_out_of_order_stamps_are_dropped_with_a_diagnostic(live):
    from easyocc.ros_node.diagnostics import values_of

    before = len(live.collector.get("points"))
    live.cameras.publish_grey(live.rig, 90, live.stamp_us - 50_000)  # older than the last frame
    status = _pipeline_status(live, "stamp_backwards")
    assert status is not None and int(values_of(status)["dropped/stamp_backwards"]) >= 1
    assert "is not after the previous" in values_of(status)["last_drop/stamp_backwards"]
    time.sleep(0.3)
    assert len(live.collector.get("points")) == before
    _good_frame_goes_through(live)


def test_stale_camera_warns_within_a_second_and_frames_resume(live):
    from easyocc.ros_node.diagnostics import WARN, level_of

    def inputs_statuses(since):
        return [
            (t, s)
            for t, array in live.collector.timed("diagnostics")
            if t > since
            for s in array.status
            if s.name.endswith("inputs")
        ]

    for _ in range(5):  # all cameras at 10 Hz
        last_complete = _send_frame(live, 150)
        time.sleep(0.1)
    stopped_at = time.monotonic()
    warned_at = None
    while time.monotonic() - stopped_at < 2.0 and warned_at is None:
        _send_frame(live, 150, skip=("CAM_BACK",))
        time.sleep(0.1)
        warn = [t for t, s in inputs_statuses(stopped_at) if level_of(s) == WARN and "CAM_BACK" in s.message]
        warned_at = warn[0] if warn else None
    assert warned_at is not None, "no stale-camera WARN"
    assert warned_at - stopped_at <= 1.0, f"WARN after {warned_at - stopped_at:.2f} s"
    stamps = [_stamp_us(m.header.stamp) for m in live.collector.get("points")]
    assert max(stamps) <= last_complete, "a frame without CAM_BACK was published"
    resumed_at = time.monotonic()
    for _ in range(5):
        _send_frame(live, 150)
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while (
        time.monotonic() < deadline
        and max(_stamp_us(m.header.stamp) for m in live.collector.get("points")) <= last_complete
    ):
        time.sleep(0.05)
    assert max(_stamp_us(m.header.stamp) for m in live.collector.get("points")) > last_complete, "frames did not resume"
    assert any(level_of(s) == 0 for _, s in inputs_statuses(resumed_at)), "inputs status did not return to OK"


def test_replayed_stamps_restart_synchronisation_and_are_reported(live):
    """A scene replayed from its start (stamps jump back beyond the runtime's 5 s restart rule) is a new
    stream: the node resets its synchronisation, says so in diagnostics, and publishes the second pass.
    (Runs after the tests that compare stamps with all earlier outputs.)"""
    from easyocc.ros_node.diagnostics import values_of

    live.stamp_us += 60_000_000  # the first pass ends a minute later
    _good_frame_goes_through(live)
    live.stamp_us -= 30_000_000  # the replay starts 30 s back
    for _ in range(3):
        _good_frame_goes_through(live)  # every frame of the second pass comes out
    deadline, values = time.monotonic() + 5.0, {}
    while time.monotonic() < deadline and values.get("stream_restarts") != "1":
        for array in live.collector.get("diagnostics"):
            for status in array.status:
                if status.name.endswith("pipeline") and "stream_restarts" in values_of(status):
                    values = values_of(status)
        time.sleep(0.05)
    assert values.get("stream_restarts") == "1"
    assert "s before the previous one; synchronisation restarted" in values["last_restart"]


def test_sigint_shuts_down_cleanly(live):
    assert live.proc.interrupt(20) == 0, live.proc.output[-3000:]
    assert "shut down cleanly" in live.proc.output
    assert "Traceback" not in live.proc.output, live.proc.output[-3000:]
    stats = json.loads((live.folder / "stats.json").read_text())
    assert stats["frames_published"] >= 8
    assert stats["drops"].get("unsupported_encoding", 0) >= 1 and stats["drops"].get("image_size", 0) >= 1
