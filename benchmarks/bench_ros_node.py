"""The ROS 2 node's latency on a real scene: `easyocc ros play` -> `easyocc ros run`, two processes over
Fast DDS on loopback, at the recorded pace.

    .venv/bin/python benchmarks/bench_ros_node.py --data ../shared/data/nuscenes-scene-0916 --out runs/bench_ros

Reports, from the node's own `--json`, p50/p90/p99/max of: the node's added latency (last camera
image of a frame received -> all outputs published), the runtime's share of it (decode, resize,
inference, postprocess) and the node's overhead beyond that; frames published and dropped by reason.
Writes <out>/ros_bench.json and <out>/ros_bench.md; exits 1 when the overhead p99 exceeds --budget-ms
(15 ms, the issue's budget) or a frame was dropped.

The table is over every frame by default: the node warms its backend and message serialization up
while configuring, prefaults its heap and freezes its start-up objects, so that the first frame runs
like the others. --warmup N leaves the first N frames out of the table; the JSON also holds the
statistics over all frames and every frame's samples, and the table states the first frame's overhead.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from easyocc.models import bundled_model
from easyocc.ros_node.params import parse_parameter
from easyocc.runtime.benchmark import percentiles
from easyocc.runtime.contract.errors import EasyOccError

from easyocc.commands.ros import add_param_option
from easyocc.testing import RosProcess, ros_env

PROJECT = Path(__file__).resolve().parents[1]
SERIES = {
    "node_added": "node added latency: last image received -> all outputs published",
    "runtime_process": "of which `OccupancyRuntime.process` (decode/resize of six images, inference, postprocess)",
    "node_overhead": "node overhead beyond inference (sync hand-off, wait, conversion, publish)",
    "queue_wait": "of which: last image -> worker starts the frame (hand-off, or previous frame still running)",
    "publish": "of which: output conversion and publication",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="nuScenes-layout dataset played as camera topics")
    parser.add_argument("--model", default=str(bundled_model(".onnx")))
    parser.add_argument("--out", default="runs/bench_ros")
    parser.add_argument("--compressed", action="store_true", help="JPEG CompressedImage instead of raw rgb8")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads in the node (0 = default)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--budget-ms", type=float, default=15.0, help="node overhead p99 budget")
    parser.add_argument("--warmup", type=int, default=0, help="first frames left out of the table (default 0)")
    parser.add_argument("--domain-id", type=int, default=77, help="ROS_DOMAIN_ID for both processes")
    add_param_option(parser, "a further node parameter, e.g. -p keep_heap:=false (repeatable)")
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error(f"--warmup must be 0 or more, got {args.warmup}")
    for param in args.param:  # before any process starts; the node parses the value itself
        try:
            parse_parameter(param)
        except EasyOccError as exc:
            parser.error(str(exc))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = ros_env(args.domain_id)
    stats_path = out / "node_stats.json"
    stats_path.unlink(missing_ok=True)
    transport = ["--transport", "compressed"] if args.compressed else []
    node_args = ["run", "--model", args.model, "--json", str(stats_path), "-p", f"threads:={args.threads}"]
    for param in args.param:
        node_args += ["-p", param]
    node = RosProcess(node_args + transport, env, out / "node.log", cwd=PROJECT)
    player = None
    try:
        if not node.wait_for_output("active:", 120):
            raise SystemExit(f"the node did not become active:\n{node.output[-2000:]}")
        play = ["play", "--data", args.data, "--wait-subscribers", "60", "--delay", "1", "--rate", str(args.rate)]
        player = RosProcess(play + (["--compressed"] if args.compressed else []), env, out / "player.log", cwd=PROJECT)
        if player.wait(900) != 0:
            raise SystemExit(f"the player failed:\n{player.output[-2000:]}")
        time.sleep(1.0)
        if node.interrupt(60) != 0:
            raise SystemExit(f"the node did not exit cleanly:\n{node.output[-2000:]}")
    finally:
        for process in (player, node):
            if process is not None:
                process.close()
    stats = json.loads(stats_path.read_text())
    steady = {series: percentiles(samples[args.warmup :]) for series, samples in stats["samples_ms"].items()}
    result = {
        "model": args.model,
        "data": args.data,
        "transport": "compressed" if args.compressed else "raw",
        "threads": args.threads,
        "node_params": args.param,
        "budget_ms": args.budget_ms,
        "warmup_frames": args.warmup,
        "steady_latency_ms": steady,
        "first_frame_ms": {series: samples[0] for series, samples in stats["samples_ms"].items() if samples},
        **stats,
    }
    (out / "ros_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (out / "ros_bench.md").write_text(table + "\n")
    print(table)
    overhead_p99 = _ms(steady["node_overhead"], "p99")
    return 0 if overhead_p99 <= args.budget_ms and not stats["drops"] else 1


def _ms(row: dict, key: str) -> float:
    """A percentile from a stats row; NaN where there were no frames (missing key or JSON null)."""
    value = row.get(key)
    return math.nan if value is None else float(value)


def markdown(result: dict) -> str:
    latency = result["steady_latency_ms"]
    count = latency["node_added"].get("count", 0)
    frames = (
        f"{count} frames after the first {result['warmup_frames']}"
        if result["warmup_frames"]
        else f"all {count} frames"
    )
    header = f"| series (ms, {frames}) | p50 | p90 | p99 | max |"
    lines = [header, "| --- | ---: | ---: | ---: | ---: |"]
    for key, label in SERIES.items():
        row = latency[key]
        cells = " | ".join(f"{_ms(row, stat):.1f}" for stat in ("p50", "p90", "p99", "max"))
        lines.append(f"| {label} | {cells} |")
    drops = ", ".join(f"{k} {v}" for k, v in sorted(result["drops"].items())) or "none"
    every = result["latency_ms"]["node_overhead"]
    params = "".join(f", -p {param}" for param in result.get("node_params", ()))
    lines.append(
        f"\n{result['frames_published']} frames published, dropped: {drops}; {result['transport']} images, "
        f"model {Path(result['model']).name}{params}; overhead p99 budget {result['budget_ms']:.0f} ms. "
        f"Over all frames the overhead is {_ms(every, 'p50'):.1f} / {_ms(every, 'p99'):.1f} / {_ms(every, 'max'):.1f} ms "
        f"(p50 / p99 / max); the first frame's {result['first_frame_ms'].get('node_overhead', math.nan):.1f} ms."
    )
    stalls = stall_summary(result)
    if stalls:
        lines.append(f"\n{stalls}")
    return "\n".join(lines)


def stall_summary(result: dict, slow_ms: float = 50.0) -> str:
    """One line on what slow hand-offs waited for, from the node's per-frame log and GC timings:
    collections per generation and their longest pause, and how many frames' hand-off (last image,
    or the previous frame's end if later -> worker starts) exceeded `slow_ms`, with the collector's
    share of those. '' when the node's stats carry no such log."""
    gc, log = result.get("gc"), result.get("per_frame_ms")
    if not gc or not log:
        return ""
    columns = log["columns"]
    rows = [dict(zip(columns, row)) for row in log["rows"]]
    slow = [row for row in rows if row["handoff"] > slow_ms]
    pauses = [ms for series in gc["pause_ms"].values() for ms in series]
    gen0, gen1, gen2 = gc["collections"]
    text = (
        f"Garbage collections: {gen0} / {gen1} / {gen2} (generation 0 / 1 / 2), longest pause "
        f"{max(pauses, default=0.0):.1f} ms. Hand-off over {slow_ms:.0f} ms: {len(slow)} of {len(rows)} frames"
    )
    if slow:
        gc_share = sum(row["gc_during_queue_wait"] for row in slow) / sum(row["handoff"] for row in slow)
        text += f" (max {max(row['handoff'] for row in slow):.1f} ms; the collector's share {100 * gc_share:.1f} %)"
    return text + "."


if __name__ == "__main__":
    raise SystemExit(main())
