"""keep_heap / prefault (ROS-free): large message buffers stop page-faulting after a prefault.

Measured in a child process, because keep_heap changes the allocator of the whole process for good.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from easyocc.ros_node import memory
from easyocc.runtime.contract.errors import EasyOccError

PROJECT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from easyocc.ros_node import memory
    from easyocc.ros_node.images import zero_bytes

    def faults_of_messages(count=5, size=6_000_000):
        # The node's pattern: a new multi-MB zeroed buffer per frame, growing, freed after publication.
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        for k in range(count):
            buffer = zero_bytes(size + k * 400_000)
            del buffer
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

    if sys.argv[1] == "keep":
        assert memory.keep_heap()
        touched = memory.prefault(3 * 8_000_000)
    else:
        touched = 0
    print(json.dumps({"faults": faults_of_messages(), "touched": touched}))
    """
)


def _child(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], cwd=PROJECT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(memory._glibc() is None, reason="keep_heap needs glibc (Linux)")
def test_prefaulted_heap_takes_large_buffers_without_page_faults():
    default, kept = _child("default"), _child("keep")
    assert kept["touched"] == 24_000_000
    # Default glibc: each buffer larger than any freed before is mmap'd and faulted in page by page
    # (6 MB = 1,465 pages; five growing buffers fault several thousand times).
    assert default["faults"] > 5_000
    assert kept["faults"] < 0.05 * default["faults"]


def test_prefault_counts_and_rejects_negative_sizes():
    assert memory.prefault(0) == 0
    assert memory.prefault(memory.PREFAULT_CHUNK + 5) == memory.PREFAULT_CHUNK + 5
    with pytest.raises(EasyOccError, match="nbytes must be >= 0, got -1"):
        memory.prefault(-1)


def test_freeze_hides_start_up_objects_from_the_collector_until_thawed():
    import gc

    try:
        frozen = memory.freeze_startup_objects()
        assert frozen == gc.get_freeze_count() > 1000  # pytest and numpy alone hold thousands
        cycle = []
        cycle.append(cycle)  # created after the freeze: still collected
        del cycle
        assert gc.collect() >= 1
    finally:
        memory.thaw()
    assert gc.get_freeze_count() == 0


def test_gc_monitor_times_collections_and_attributes_them_to_intervals():
    import gc
    import time

    from easyocc.ros_node.memory import GcMonitor

    monitor = GcMonitor().install()
    try:
        assert monitor.install() is monitor and gc.callbacks.count(monitor._callback) == 1  # idempotent
        before = time.perf_counter()
        junk = [[i] for i in range(200_000)]
        gc.collect()
        after = time.perf_counter()
        del junk
    finally:
        monitor.uninstall()
    assert monitor._callback not in gc.callbacks
    start, generation, pause = monitor.events[-1]
    assert generation == 2 and monitor.counts[2] >= 1 and pause > 0
    assert before <= start <= after
    assert monitor.between(before, after) >= pause  # the whole collection lies inside the interval
    assert monitor.between(after + 1.0, after + 2.0) == 0.0
    summary = monitor.summary()
    assert summary["collections"] == monitor.counts and summary["pause_ms"]["2"][-1] == round(1e3 * pause, 3)


def test_stall_monitor_sees_the_gil_held_and_heap_stats_account_for_the_heap():
    """sorted() of a long list holds the GIL throughout: the monitor thread cannot run and records it."""
    import random

    values = [random.random() for _ in range(1_500_000)]
    monitor = memory.StallMonitor(period_s=0.005, threshold_s=0.03).start()
    try:
        import time

        time.sleep(0.05)
        start = time.perf_counter()
        sorted(values)
        held = time.perf_counter() - start
        time.sleep(0.05)
    finally:
        monitor.stop()
    stalls = monitor.stalls()
    if held < 0.06:
        pytest.skip(f"sorting took only {1e3 * held:.0f} ms here: too short to tell a stall from scheduling")
    assert stalls and max(seconds for _, seconds in stalls) >= 0.5 * held
    stats = memory.heap_stats()
    if stats is not None:  # glibc 2.33 or newer
        assert set(stats) == {"in_use", "free", "mmapped", "arena"} and stats["in_use"] > 0
    assert memory.python_blocks() > 0


def test_preloaded_player_decodes_each_image_once_and_restamps_it(ros_context, nuscenes_root):
    """ros play --preload: the 6 images of one key frame, played twice over, are decoded once (six
    cached messages) and every publication carries its own item's stamp."""
    import rclpy
    from easyocc.ros_node.images import stamp_to_us
    from easyocc.ros_node.player import DatasetPlayer, play_items

    node = rclpy.create_node("easyocc_test_preload", context=ros_context)
    try:
        items = play_items(nuscenes_root, max_frames=1, loops=2)
        player = DatasetPlayer(node, items, namespace="/preload_test", rate=50.0, camera_info=False, preload=True)
        sent = []
        for channel, publisher in player.image_pubs.items():
            original = publisher.publish
            publisher.publish = lambda msg, original=original, c=channel: (
                sent.append((c, stamp_to_us(msg.header.stamp))),
                original(msg),
            )
        assert player.run() == 12
        assert len(player._cache) == 6
        assert sent == [(item.channel, item.stamp_us) for item in items]
        assert [row[0] for row in player.timing] == [item.stamp_us for item in items]
    finally:
        node.destroy_node()
