"""benchmarks/bench_ros_node.py without ROS: its argument check and the table it writes from node stats."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

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
