"""Frame assembly: approximate time synchronisation of cameras arriving one at a time, and the one
restart rule (a jump back beyond REWIND_S starts a new stream) in the sync and in StampGuard."""

from __future__ import annotations

import pytest
from easyocc.runtime.assembly import REWIND_S, ApproximateSync, StampGuard
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import MISSING_CAMERA, OUT_OF_SYNC, STAMP_BACKWARDS, SUPERSEDED, FrameError

CAMS = ("A", "B", "C")


def feed(sync, camera, stamp_us, receipt=0.0):
    return sync.add(camera, stamp_us, f"{camera}@{stamp_us}", receipt)


def test_group_emitted_when_last_camera_arrives_within_tolerance():
    sync = ApproximateSync(CAMS, tolerance_us=50_000)
    assert feed(sync, "A", 1_000_000, 1.0) is None
    assert feed(sync, "B", 1_030_000, 2.0) is None
    group = feed(sync, "C", 1_045_000, 3.0)
    assert group is not None
    assert {n: e.item for n, e in group.entries.items()} == {"A": "A@1000000", "B": "B@1030000", "C": "C@1045000"}
    assert group.stamp_us == 1_045_000 and group.spread_us == 45_000 and group.last_receipt_s == 3.0


def test_spread_beyond_tolerance_is_not_grouped():
    sync = ApproximateSync(CAMS, tolerance_us=50_000)
    feed(sync, "A", 1_000_000)
    feed(sync, "B", 1_000_000)
    assert feed(sync, "C", 1_050_001) is None  # 50.001 ms > 50 ms
    sync2 = ApproximateSync(CAMS, tolerance_us=50_000)
    feed(sync2, "A", 1_000_000)
    feed(sync2, "B", 1_000_000)
    assert feed(sync2, "C", 1_050_000) is not None  # exactly at the tolerance


def test_nearest_message_is_chosen_and_older_ones_discarded():
    sync = ApproximateSync(CAMS, tolerance_us=20_000)
    for stamp in (0, 100_000, 200_000):
        feed(sync, "A", stamp)
    feed(sync, "B", 195_000)
    group = feed(sync, "C", 205_000)
    assert group.entries["A"].stamp_us == 200_000
    # the next frame groups from fresh messages only
    feed(sync, "A", 300_000)
    feed(sync, "B", 300_000)
    assert feed(sync, "C", 300_000).stamp_us == 300_000


def test_out_of_order_stamp_is_rejected_with_reason():
    sync = ApproximateSync(CAMS, tolerance_us=50_000)
    feed(sync, "A", 2_000_000)
    with pytest.raises(FrameError, match="camera A: stamp 1999999 us is not after the previous") as info:
        feed(sync, "A", 1_999_999)
    assert info.value.reason == STAMP_BACKWARDS
    assert feed(sync, "A", 2_000_001) is None  # the stream goes on after a rejected message


def test_lost_frames_are_counted_once_by_reason():
    drops = []
    sync = ApproximateSync(CAMS, tolerance_us=10_000, queue_size=2, on_drop=lambda r, m: drops.append((r, m)))
    for i in range(4):  # camera C is silent: A's frames leave the queue unmatched
        feed(sync, "A", i * 100_000)
        feed(sync, "B", i * 100_000)
    assert [r for r, _ in drops] == [MISSING_CAMERA, MISSING_CAMERA]
    assert "no image from C" in drops[0][1]
    drops.clear()
    sync = ApproximateSync(CAMS, tolerance_us=10_000, queue_size=1, on_drop=lambda r, m: drops.append((r, m)))
    feed(sync, "B", 0)
    feed(sync, "C", 0)
    feed(sync, "A", 50_000)  # B and C have messages, but 50 ms away
    feed(sync, "A", 150_000)
    assert [r for r, _ in drops] == [MISSING_CAMERA]  # nothing within 10 ms of A@50000 any more


def test_a_frame_evicted_while_other_cameras_are_behind_is_superseded_not_missing():
    """Input backlog: the reference camera's next frames arrive before the others' images of this one
    (callbacks served out of order on a loaded host). The frame is superseded by newer ones; the late
    images still form the next group. A camera that stops delivering turns 'missing' once it lags by
    more than the queue holds."""
    drops = []
    sync = ApproximateSync(CAMS, tolerance_us=10_000, queue_size=1, on_drop=lambda r, m: drops.append((r, m)))
    for camera in CAMS:
        feed(sync, camera, 0)
    feed(sync, "A", 100_000)
    feed(sync, "A", 200_000)  # A@100000 leaves the queue; B and C are at 0, one frame behind
    assert [r for r, _ in drops] == [SUPERSEDED]
    assert "B, C had not delivered it when newer frames filled the sync queue (input backlog)" in drops[0][1]
    feed(sync, "B", 100_000)
    feed(sync, "C", 100_000)
    feed(sync, "B", 200_000)
    assert feed(sync, "C", 200_000) is not None  # the newest frame is complete
    drops.clear()
    sync = ApproximateSync(CAMS, tolerance_us=10_000, queue_size=2, on_drop=lambda r, m: drops.append(r))
    for i in range(6):  # C delivers frame 0 only, then stops
        feed(sync, "A", i * 100_000)
        feed(sync, "B", i * 100_000)
        if i == 0:
            feed(sync, "C", 0)
    assert drops == [SUPERSEDED, SUPERSEDED, MISSING_CAMERA]  # frames 1, 2: maybe late; frame 3: C is gone


def test_out_of_sync_reason_when_all_cameras_present_but_spread():
    drops = []
    sync = ApproximateSync(CAMS, tolerance_us=10_000, queue_size=1, on_drop=lambda r, m: drops.append(r))
    feed(sync, "B", 92_000)
    feed(sync, "A", 100_000)
    assert feed(sync, "C", 108_000) is None  # each within 10 ms of A, but the set spans 16 ms
    feed(sync, "A", 200_000)  # A@100000 leaves the queue unmatched
    assert drops == [OUT_OF_SYNC]
    with pytest.raises(EasyOccError, match="unknown camera 'Z'"):
        feed(sync, "Z", 1)


def test_invalid_settings():
    with pytest.raises(EasyOccError, match="no cameras"):
        ApproximateSync((), 1)
    with pytest.raises(EasyOccError, match="tolerance"):
        ApproximateSync(CAMS, -1)


def test_a_jump_back_beyond_the_rewind_restarts_synchronisation():
    restarts, drops = [], []
    sync = ApproximateSync(
        CAMS, tolerance_us=10_000, queue_size=2, on_drop=lambda r, m: drops.append(r), on_restart=restarts.append
    )
    start = 100_000_000
    for i in range(3):  # the first pass of a replayed scene
        assert [feed(sync, cam, start + i * 500_000) for cam in CAMS][-1] is not None
    feed(sync, "A", start + 1_500_000)  # a frame left incomplete when the replay starts over
    replay = start - int(REWIND_S * 1e6) + 1_000_000  # 1.5 s + 5 s back: beyond the rewind of 5 s
    assert feed(sync, "A", replay) is None
    assert sync.restarts == 1 and restarts == [
        "camera A: stamp 96000000 us is 5.5 s before the previous one; synchronisation restarted"
    ]
    assert feed(sync, "B", replay) is None and feed(sync, "C", replay).stamp_us == replay  # the second pass
    assert drops == []  # the unmatched old message is not a lost frame of the new stream
    for i in range(1, 3):
        assert [feed(sync, cam, replay + i * 500_000) for cam in CAMS][-1] is not None
    assert sync.restarts == 1


def test_a_small_step_back_is_still_refused():
    sync = ApproximateSync(CAMS, tolerance_us=10_000)
    feed(sync, "A", 10_000_000)
    with pytest.raises(FrameError, match="camera A: stamp 5000000 us is not after the previous 10000000 us"):
        feed(sync, "A", 10_000_000 - int(REWIND_S * 1e6))  # exactly the rewind: not beyond it
    assert sync.restarts == 0


def test_stamp_guard_applies_the_same_restart_rule():
    guard = StampGuard()
    guard.check(20_000_000, seq=1)
    with pytest.raises(FrameError, match="frame 2 stamp 19000000 us is 1000.0 ms older than or equal to") as info:
        guard.check(19_000_000, seq=2)
    assert info.value.reason == STAMP_BACKWARDS and guard.restarts == 0
    guard.check(20_000_000 - int(REWIND_S * 1e6) - 1, seq=3)  # a replay from the start: a new stream
    assert guard.restarts == 1 and guard.last_us == 14_999_999
