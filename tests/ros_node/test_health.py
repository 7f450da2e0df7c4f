"""Node health bookkeeping (ROS-free): staleness, drops, and the change signature the timer publishes on."""

from __future__ import annotations

from easyocc.ros_node.diagnostics import NODE_LATENCY, RUNTIME_PROCESS, Health
from easyocc.runtime.contract.frames import CORRUPT_IMAGE, SUPERSEDED


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_signature_changes_with_staleness_and_drops_not_with_latency():
    clock = Clock()
    health = Health(["CAM_A", "CAM_B"], stale_timeout_s=1.0, clock=clock)
    health.image_received("CAM_A")
    health.image_received("CAM_B")
    quiet = health.signature()
    assert quiet == ((), (), 0)
    health.frame_done({NODE_LATENCY: 250.0, RUNTIME_PROCESS: 240.0})
    assert health.signature() == quiet  # a new latency sample alone does not force a message

    clock.now += 1.5
    health.image_received("CAM_A")
    assert health.signature() == (("CAM_B",), (), 0)
    assert health.signature(active=False) == ((), (), 0)  # an inactive node does not warn on silence

    health.dropped(SUPERSEDED, "newer frame")
    assert health.signature(active=False) == ((), (), 1)  # counted, but load shedding is no warning
    health.dropped(CORRUPT_IMAGE, "camera CAM_A: not a decodable JPEG or PNG (10 bytes)")
    assert health.signature(active=False) == ((), (CORRUPT_IMAGE,), 2)
    clock.now += 6.0  # the warning expires, the count stays
    assert health.signature(active=False) == ((), (), 2)

    report = health.report()
    assert report["latency"][NODE_LATENCY]["p50"] == 250.0
    assert report["drops"] == {SUPERSEDED: 1, CORRUPT_IMAGE: 1}


def test_a_drop_is_counted_and_warned_in_one_step():
    """No snapshot may show a bad-input drop's count without its WARN (the diagnostics timer runs on
    another thread; a message with the count but level OK was published once and made a test flaky)."""
    import sys
    import threading

    health = Health(["CAM_A"], stale_timeout_s=1.0)
    stop = threading.Event()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so that a torn update shows

    def drop_forever():
        while not stop.is_set():
            health.dropped(CORRUPT_IMAGE, "camera CAM_A: not a decodable JPEG or PNG (10 bytes)")

    dropper = threading.Thread(target=drop_forever)
    dropper.start()
    try:
        torn = 0
        for _ in range(3000):
            _, recent, total = health.signature(active=False)
            torn += total > 0 and not recent
            report = health.report()
            torn += report["drops"].get(CORRUPT_IMAGE, 0) > 0 and CORRUPT_IMAGE not in report["recent_drops"]
    finally:
        stop.set()
        dropper.join()
        sys.setswitchinterval(interval)
    assert torn == 0
