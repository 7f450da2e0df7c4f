"""benchmarks/bench_ros_node.py without ROS: its argument check and the table it writes from node stats."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ros_node.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_ros_node", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_negative_warmup_is_refused_in_one_line():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", "nowhere", "--warmup", "-1"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "--warmup must be 0 or more, got -1" in done.stderr


def test_node_parameter_without_assignment_is_refused():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", "nowhere", "-p", "keep_heap=false"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "parameter 'keep_heap=false': expected name:=value" in done.stderr
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", "nowhere", "-p", "keep_heep:=false"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "unknown parameter 'keep_heep'; known: model_path," in done.stderr


def test_table_states_steady_state_all_frames_and_the_first_frame():
    bench = load_bench()
    samples = {series: [20.0, 5.0, 6.0, 7.0] for series in bench.SERIES}
    steady = {series: bench.percentiles(values[1:]) for series, values in samples.items()}
    everything = {series: bench.percentiles(values) for series, values in samples.items()}
    result = {
        "model": "m.onnx",
        "transport": "raw",
        "budget_ms": 15.0,
        "warmup_frames": 1,
        "steady_latency_ms": steady,
        "first_frame_ms": {series: values[0] for series, values in samples.items()},
        "latency_ms": everything,
        "drops": {},
        "frames_published": 4,
    }
    table = bench.markdown(result)
    assert "model m.onnx; overhead p99 budget 15 ms" in table  # no node parameters given
    assert ", -p keep_heap:=false;" in bench.markdown({**result, "node_params": ["keep_heap:=false"]})
    assert "| series (ms, all 3 frames) |" in bench.markdown({**result, "warmup_frames": 0})
    assert "| series (ms, 3 frames after the first 1) |" in table
    assert "| 6.0 | 6.8 | 7.0 | 7.0 |" in table  # p50, p90, p99, max of 5, 6, 7
    assert "Over all frames the overhead is 6.5 / 19.6 / 20.0 ms" in table
    assert "the first frame's 20.0 ms" in table and "dropped: none" in table
    assert math.isnan(bench._ms({"p99": None}, "p99")) and math.isnan(bench._ms({"count": 0}, "p99"))


def test_stall_summary_attributes_slow_hand_offs():
    bench = load_bench()
    stats = {
        "gc": {"collections": [40, 4, 1], "pause_ms": {"0": [0.1, 0.2], "1": [0.5], "2": [30.0]}},
        "per_frame_ms": {
            "columns": ["handoff", "gc_during_queue_wait", "gc_during_process_publish"],
            "rows": [[1.0, 0.0, 0.1], [120.0, 30.0, 0.0], [80.0, 0.0, 0.0], [2.0, 0.0, 0.0]],
        },
    }
    line = bench.stall_summary(stats)
    assert line == (
        "Garbage collections: 40 / 4 / 1 (generation 0 / 1 / 2), longest pause 30.0 ms. "
        "Hand-off over 50 ms: 2 of 4 frames (max 120.0 ms; the collector's share 15.0 %)."
    )
    assert bench.stall_summary({}) == ""


@pytest.mark.parametrize(("flag", "value", "least"), [("--loops", "0", 1), ("--runs", "0", 1), ("--runs", "-2", 1)])
def test_too_few_loops_or_runs_are_refused_in_one_line(flag, value, least):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", "nowhere", flag, value], capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{flag} must be {least} or more, got {value}" in done.stderr


def test_play_items_loops_with_rising_stamps(nuscenes_root):
    from easyocc.ros_node.player import play_items

    once = play_items(nuscenes_root)
    twice = play_items(nuscenes_root, loops=2)
    assert len(once) == 246 and len(twice) == 2 * len(once)
    stamps = [item.stamp_us for item in twice]
    assert stamps == sorted(stamps)
    shift = twice[len(once)].stamp_us - once[0].stamp_us
    span = 1538984253447765 - 1538984233547259  # first to last key frame of scene-0916 (19.9 s, 41 frames)
    assert shift == span + span // 40  # one loop later: the span plus one mean key-frame period
    assert [(a.channel, a.path) for a in twice[len(once) :]] == [(a.channel, a.path) for a in once]


def test_soak_summary_from_samples():
    bench = load_bench()
    soak = object.__new__(bench.Soak)  # the summary alone: no ROS context needed
    # 100 s: RSS 200 MB up to 20 s (warm-up), then 210 MB, 212 MB over the last 5 s
    soak.samples = [(t, 200.0 if t < 10 else 210.0 if t < 95 else 212.0, t * 0.5, t * 0.4) for t in range(1, 101)]
    soak.at_end = {"easyocc: pipeline": (0, "2000 frames published")}
    summary = bench.Soak.summary(soak)
    assert summary["rss_mb"] == {"early": 210.0, "end": 212.0, "max": 212.0}
    assert summary["rss_growth_percent"] == round(100 * 2 / 210, 2)
    assert summary["cpu_s"] == {"node": 50.0, "player": 40.0}
    assert summary["diagnostics_at_end"] == {"easyocc: pipeline": {"level": "OK", "message": "2000 frames published"}}


def test_input_timing_tells_a_late_input_from_a_stalled_node():
    """Frame 1 waits for frame 0, whose last image the player published 300 ms late; frame 2's last
    image took 200 ms to reach the callback while the node's own threads were stalled 150 ms."""
    bench = load_bench()
    player = {
        "columns": ["stamp_us", "channel", "due_s", "ready_s", "published_s"],
        "rows": [
            [0, "A", 10.0, 9.9, 10.3],
            [500_000, "A", 10.5, 10.4, 10.501],
            [1_000_000, "A", 11.0, 10.9, 11.001],
            [1_500_000, "A", 11.5, 11.4, 11.501],  # the node never saw it
        ],
    }
    stats = {
        "samples_ms": {"node_overhead": [4.0, 105.0, 12.0]},
        "per_frame_times": {
            "columns": ["stamp_us", "last_camera", "last_camera_stamp_us", "last_receipt_s", "start_s", "published_s"],
            "rows": [
                [0, "A", 0, 10.305, 10.306, 10.605],  # busy until 10.605
                [500_000, "A", 500_000, 10.505, 10.605, 10.75],
                [1_000_000, "A", 1_000_000, 11.201, 11.205, 11.35],
            ],
        },
        "receipts": {
            "columns": ["camera", "stamp_us", "receipt_s"],
            "rows": [["A", 0, 10.305], ["A", 500_000, 10.505], ["A", 1_000_000, 11.201]],
        },
        "stalls": {"columns": ["start_s", "seconds"], "threshold_s": 0.04, "rows": [[11.0, 0.15]]},
        "machine_stalls": {"columns": ["start_s", "seconds"], "rows": []},
    }
    timing = bench.input_timing(stats, player, budget_ms=15.0)
    assert (timing["frames"], timing["matched_frames"], timing["images_not_received"]) == (3, 3, 1)
    (slow,) = timing["over_budget"]  # frame 2's 12 ms are within the budget
    assert slow["stamp_us"] == 500_000
    assert slow["previous_busy_ms"] == pytest.approx(100.0) and slow["previous_player_late_ms"] == pytest.approx(300.0)
    assert slow["handoff_ms"] == pytest.approx(0.0) and slow["transport_ms"] == pytest.approx(4.0)
    assert timing["image_transport_ms"]["max"] == pytest.approx(200.0)
    assert timing["process_stalls"] == {"count": 1, "threshold_ms": 40.0, "max_ms": 150.0, "total_ms": 150.0}
    text = bench.input_summary({"input_timing": timing})
    assert "1 of 4 never received" in text and "1 in the node, longest 150.0 ms; 0 in the idle benchmark" in text
    assert "105.0 ms = previous frame busy 100.0 (its input 300.0 late) + hand-off 0.0" in text
