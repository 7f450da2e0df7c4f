"""The ROS 2 node's latency on a real scene: `easyocc ros play` -> `easyocc ros run`, two processes over
Fast DDS on loopback, at the recorded pace.

    .venv/bin/python benchmarks/bench_ros_node.py --data ../shared/data/nuscenes-scene-0916 --out runs/bench_ros

Reports, from the node's own `--json`, p50/p90/p99/max of: the node's added latency (last camera
image of a frame received -> all outputs published), the runtime's share of it (decode, resize,
inference, postprocess) and the node's overhead beyond that; frames published and dropped by reason.
Writes <out>/ros_bench.json and <out>/ros_bench.md; exits 1 when the overhead p99 exceeds --budget-ms
(15 ms, the issue's budget) or a frame was dropped.

Soak (--loops N): the scene is played N times over with rising stamps; the node's RSS and both
processes' CPU time are sampled every second, and the last /diagnostics levels seen while the player
was still publishing are kept: the JSON's `soak` holds RSS early (10-15 % of the run) and at the end,
its growth, CPU seconds, the machine's load average and the diagnostics at the end.

The table is over every frame by default: the node warms its backend and message serialization up
while configuring, prefaults its heap and freezes its start-up objects, so that the first frame runs
like the others. --warmup N leaves the first N frames out of the table; the JSON also holds the
statistics over all frames and every frame's samples, and the table states the first frame's overhead.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time
from pathlib import Path

from easyocc.models import bundled_model
from easyocc.ros_node.memory import StallMonitor
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
    parser.add_argument("--loops", type=int, default=1, help="play the scene this many times (a soak; default 1)")
    parser.add_argument(
        "--preload",
        action="store_true",
        help="the player decodes every image before playing (ros play --preload): no JPEG decoding competes"
        " with the node during the run, as with a camera driver handing over raw frames",
    )
    parser.add_argument("--runs", type=int, default=1, help="independent runs (fresh node and player each; default 1)")
    add_param_option(parser, "a further node parameter, e.g. -p keep_heap:=false (repeatable)")
    args = parser.parse_args(argv)
    for flag, value, least in (("--warmup", args.warmup, 0), ("--loops", args.loops, 1), ("--runs", args.runs, 1)):
        if value < least:
            parser.error(f"{flag} must be {least} or more, got {value}")
    for param in args.param:  # before any process starts; the node parses the value itself
        try:
            parse_parameter(param)
        except EasyOccError as exc:
            parser.error(str(exc))
    if args.runs == 1:
        return 0 if run_once(args, Path(args.out)) else 1
    verdicts, runs = [], []
    for index in range(args.runs):
        verdicts.append(run_once(args, Path(args.out) / f"run-{index + 1}"))
        result = json.loads((Path(args.out) / f"run-{index + 1}" / "ros_bench.json").read_text())
        runs.append(
            {
                "run": index + 1,
                "node_overhead_ms": result["steady_latency_ms"]["node_overhead"],
                "frames_published": result["frames_published"],
                "drops": result["drops"],
                "load_average": result["load_average"],
            }
        )
    summary = {
        "data": args.data,
        "rate": args.rate,
        "player_preload": args.preload,
        "transport": "compressed" if args.compressed else "raw",
        "budget_ms": args.budget_ms,
        "runs": runs,
    }
    (Path(args.out) / "ros_bench_runs.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"overhead p99 over {args.runs} runs: "
        + ", ".join(f"{_ms(r['node_overhead_ms'], 'p99'):.1f}" for r in runs)
        + f" ms (budget {args.budget_ms:.0f})"
    )
    return 0 if all(verdicts) else 1


def run_once(args, out: Path) -> bool:
    """One run: node and player processes, the node's stats, <out>/ros_bench.json and .md. True when
    the overhead p99 is within the budget and no frame was dropped."""
    out.mkdir(parents=True, exist_ok=True)
    env = ros_env(args.domain_id)
    stats_path = out / "node_stats.json"
    stats_path.unlink(missing_ok=True)
    player_timing_path = out / "player_timing.json"
    player_timing_path.unlink(missing_ok=True)
    transport = ["--transport", "compressed"] if args.compressed else []
    node_args = ["run", "--model", args.model, "--json", str(stats_path), "-p", f"threads:={args.threads}"]
    for param in args.param:
        node_args += ["-p", param]
    canary = StallMonitor().start()  # stalls of this idle process: the machine's, not the node's
    node = RosProcess(node_args + transport, env, out / "node.log", cwd=PROJECT)
    player = None
    if args.loops > 1:
        os.environ.update(env)  # the probe subscriber discovers like the two processes (before rclpy starts)
    soak = Soak(args.domain_id) if args.loops > 1 else None
    load_before = [round(v, 2) for v in os.getloadavg()]
    try:
        if not node.wait_for_output("active:", 120):
            raise SystemExit(f"the node did not become active:\n{node.output[-2000:]}")
        play = ["play", "--data", args.data, "--wait-subscribers", "60", "--delay", "1", "--rate", str(args.rate)]
        play += ["--loops", str(args.loops), "--timing-json", str(player_timing_path)]
        play += ["--preload"] if args.preload else []
        player = RosProcess(play + (["--compressed"] if args.compressed else []), env, out / "player.log", cwd=PROJECT)
        if soak is not None:
            soak.start(node.proc.pid, player.proc.pid)
        if player.wait(900 * args.loops) != 0:
            raise SystemExit(f"the player failed:\n{player.output[-2000:]}")
        if soak is not None:
            soak.stop()
        time.sleep(1.0)
        if node.interrupt(60) != 0:
            raise SystemExit(f"the node did not exit cleanly:\n{node.output[-2000:]}")
    finally:
        if soak is not None:
            soak.close()
        for process in (player, node):
            if process is not None:
                process.close()
    canary.stop()
    stats = json.loads(stats_path.read_text())
    stats["machine_stalls"] = {"columns": ["start_s", "seconds"], "rows": [list(r) for r in canary.stalls()]}
    steady = {series: percentiles(samples[args.warmup :]) for series, samples in stats["samples_ms"].items()}
    result = {
        "model": args.model,
        "data": args.data,
        "rate": args.rate,
        "player_preload": args.preload,
        "load_average": {"before": load_before, "after": [round(v, 2) for v in os.getloadavg()]},
        "transport": "compressed" if args.compressed else "raw",
        "threads": args.threads,
        "node_params": args.param,
        "budget_ms": args.budget_ms,
        "warmup_frames": args.warmup,
        "steady_latency_ms": steady,
        "first_frame_ms": {series: samples[0] for series, samples in stats["samples_ms"].items() if samples},
        **stats,
    }
    if player_timing_path.is_file():
        result["input_timing"] = input_timing(stats, json.loads(player_timing_path.read_text()), args.budget_ms)
    if soak is not None:
        result["soak"] = {
            "loops": args.loops,
            **soak.summary(),
            "load_average": result["load_average"],
            "cpu_count": os.cpu_count(),
        }
    (out / "ros_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (out / "ros_bench.md").write_text(table + "\n")
    print(table)
    overhead_p99 = _ms(steady["node_overhead"], "p99")
    return overhead_p99 <= args.budget_ms and not stats["drops"]


class Soak:
    """During a soak: the node's RSS and both processes' CPU seconds every second (psutil), and the
    last /diagnostics statuses received (an rclpy subscriber in this process)."""

    def __init__(self, domain_id: int):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from easyocc.ros_node.qos import diagnostics_qos
        from rclpy.executors import SingleThreadedExecutor

        self._context = rclpy.Context()
        rclpy.init(context=self._context, domain_id=domain_id)
        self._node = rclpy.create_node("easyocc_soak_probe", context=self._context)
        self._node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, diagnostics_qos())
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._spinner = threading.Thread(target=self._executor.spin, daemon=True)
        self._spinner.start()
        self.samples: list[tuple[float, float, float, float]] = []  # (s, node RSS MB, node CPU s, player CPU s)
        self.statuses: dict[str, tuple[int, str]] = {}  # status name -> (level, message), the newest
        self.snapshots: list[tuple[float, dict]] = []  # (s, statuses) every second
        self.at_end: dict[str, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._sampler = None

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            level = status.level[0] if isinstance(status.level, (bytes, bytearray)) else int(status.level)
            self.statuses[status.name] = (level, status.message)

    def start(self, node_pid: int, player_pid: int) -> None:
        import psutil

        node, player = psutil.Process(node_pid), psutil.Process(player_pid)
        start = time.monotonic()

        def sample():
            while not self._stop.wait(1.0):
                try:
                    cpu_node, cpu_player = node.cpu_times(), player.cpu_times()
                    self.samples.append(
                        (
                            time.monotonic() - start,
                            node.memory_info().rss / 2**20,
                            cpu_node.user + cpu_node.system,
                            cpu_player.user + cpu_player.system,
                        )
                    )
                except psutil.Error:
                    break
                self.snapshots.append((time.monotonic() - start, dict(self.statuses)))

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def stop(self, linger_s: float = 1.0) -> None:
        """The player finished: keep the diagnostics as they were while it was still publishing (the
        snapshot 0.5 s before its last image; after it, the node rightly reports stale cameras)."""
        self._stop.set()
        if self.snapshots:
            cutoff = self.snapshots[-1][0] - linger_s - 0.5
            self.at_end = next((snap for t, snap in reversed(self.snapshots) if t <= cutoff), self.snapshots[0][1])
        if self._sampler is not None:
            self._sampler.join(5.0)

    def summary(self) -> dict:
        names = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}
        rows = self.samples
        if len(rows) < 10:
            return {"rss_mb": None, "note": f"only {len(rows)} RSS samples"}
        n = len(rows)
        early = sorted(r[1] for r in rows[n // 10 : max(n * 15 // 100, n // 10 + 1)])
        end = sorted(r[1] for r in rows[-max(n // 20, 1) :])
        early_mb, end_mb = early[len(early) // 2], end[len(end) // 2]
        return {
            "seconds": round(rows[-1][0], 1),
            "rss_mb": {"early": round(early_mb, 1), "end": round(end_mb, 1), "max": round(max(r[1] for r in rows), 1)},
            "rss_growth_percent": round(100 * (end_mb - early_mb) / early_mb, 2),
            "cpu_s": {"node": round(rows[-1][2], 1), "player": round(rows[-1][3], 1)},
            "rss_samples_mb": [round(r[1], 1) for r in rows],
            "diagnostics_at_end": {
                name: {"level": names.get(level, str(level)), "message": message}
                for name, (level, message) in self.at_end.items()
            },
        }

    def close(self) -> None:
        import rclpy

        self._stop.set()
        self._executor.shutdown(timeout_sec=1.0)
        self._node.destroy_node()
        rclpy.try_shutdown(context=self._context)


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
    for paragraph in (stall_summary(result), input_summary(result)):
        if paragraph:
            lines.append(f"\n{paragraph}")
    return "\n".join(lines)


def input_timing(stats: dict, player: dict, budget_ms: float) -> dict:
    """Whether the node or its input made a slow frame: the player's publication times joined with
    the node's per-frame times (both CLOCK_MONOTONIC) by each frame's last image.

    Per frame: `player_late` (that image published after its recorded time, over the rate), `transport`
    (published -> the node's callback ran: DDS and the node's executor), `previous_busy` (the node was
    still on the previous frame when this one was complete), `handoff` (the rest, until the worker
    started). Summary: percentiles of each, and every frame whose overhead exceeded the budget with
    those parts and the previous frame's `player_late` (a previous frame published late arrives closer
    to this one than recorded, so this one waits although the node kept the recorded pace)."""
    columns = player["columns"]
    published = {}
    for row in player["rows"]:
        item = dict(zip(columns, row))
        published[(item["channel"], item["stamp_us"])] = (item["due_s"], item["published_s"])
    times = stats.get("per_frame_times") or {"columns": [], "rows": []}
    overheads = stats["samples_ms"]["node_overhead"]
    count = min(len(times["rows"]), len(overheads))  # both end at the last frame (the node keeps a window)
    frames, previous_end = [], None
    for row, overhead in zip(times["rows"][len(times["rows"]) - count :], overheads[len(overheads) - count :]):
        frame = dict(zip(times["columns"], row))
        due, sent = published.get((frame["last_camera"], frame["last_camera_stamp_us"]), (math.nan, math.nan))
        receipt, start = frame["last_receipt_s"], frame["start_s"]
        busy = max(0.0, previous_end - receipt) if previous_end is not None else 0.0
        frames.append(
            {
                "stamp_us": frame["stamp_us"],
                "overhead_ms": round(overhead, 3),
                "player_late_ms": round(1e3 * (sent - due), 3),
                "transport_ms": round(1e3 * (receipt - sent), 3),
                "previous_busy_ms": round(1e3 * busy, 3),
                "handoff_ms": round(1e3 * (start - max(receipt, previous_end or receipt)), 3),
            }
        )
        previous_end = frame["published_s"]
    for before, frame in zip([None, *frames], frames):
        frame["previous_player_late_ms"] = before["player_late_ms"] if before else 0.0
    # Every image: published -> the node's callback ran; images the node never saw (lost on the way).
    receipts = stats.get("receipts") or {"columns": [], "rows": []}
    received = {(row[0], row[1]): row[2] for row in receipts["rows"]}
    image_ms = [1e3 * (received[key] - sent) for key, (_, sent) in published.items() if key in received]
    stalls = (stats.get("stalls") or {}).get("rows", [])
    machine = (stats.get("machine_stalls") or {}).get("rows", [])
    for frame, row in zip(frames, times["rows"][len(times["rows"]) - count :]):
        item = dict(zip(times["columns"], row))
        window = (item["last_receipt_s"] - 1.0, item["start_s"])  # the second before, to the worker's start
        for key, events in (("process_stall_ms", stalls), ("machine_stall_ms", machine)):
            frame[key] = round(1e3 * sum(max(0.0, min(window[1], t + d) - max(window[0], t)) for t, d in events), 3)
    parts = ("player_late_ms", "transport_ms", "previous_busy_ms", "handoff_ms")
    return {
        "matched_frames": sum(1 for f in frames if not math.isnan(f["player_late_ms"])),
        "frames": len(frames),
        "percentiles_ms": {part: percentiles([f[part] for f in frames if not math.isnan(f[part])]) for part in parts},
        "image_transport_ms": percentiles(image_ms),
        "images_published": len(published),
        "images_not_received": len(published) - len(image_ms) if receipts["rows"] else None,
        "process_stalls": {
            "count": len(stalls),
            "threshold_ms": 1e3 * (stats.get("stalls") or {}).get("threshold_s", math.nan),
            "max_ms": round(1e3 * max((d for _, d in stalls), default=0.0), 3),
            "total_ms": round(1e3 * sum(d for _, d in stalls), 3),
        },
        # The same monitor in the benchmark's own, idle process: a stall there too is the machine's
        # (the VM or kernel not running this process's threads), not the node's.
        "machine_stalls": {
            "count": len(machine),
            "max_ms": round(1e3 * max((d for _, d in machine), default=0.0), 3),
            "total_ms": round(1e3 * sum(d for _, d in machine), 3),
        },
        "over_budget": [f for f in frames if f["overhead_ms"] > budget_ms],
    }


def input_summary(result: dict) -> str:
    """One paragraph on the input side: player lateness and transport p50/p99, and what the frames
    over budget waited for. '' without the player's timing."""
    timing = result.get("input_timing")
    if not timing:
        return ""
    pct = timing["percentiles_ms"]
    text = (
        f"Input: the player published the frames' last images {_ms(pct['player_late_ms'], 'p50'):.1f} / "
        f"{_ms(pct['player_late_ms'], 'p99'):.1f} ms late (p50 / p99), delivered to the node's callback in "
        f"{_ms(pct['transport_ms'], 'p50'):.1f} / {_ms(pct['transport_ms'], 'p99'):.1f} ms."
    )
    images, stalls = timing.get("image_transport_ms"), timing.get("process_stalls")
    if images and images.get("count"):
        text += (
            f" Every image: {_ms(images, 'p50'):.1f} / {_ms(images, 'p99'):.1f} / {_ms(images, 'max'):.1f} ms "
            f"(p50 / p99 / max), {timing['images_not_received']} of {timing['images_published']} never received."
        )
    if stalls:
        machine = timing["machine_stalls"]
        text += (
            f" Process stalls (no Python thread ran for over {stalls['threshold_ms']:.0f} ms): {stalls['count']} in "
            f"the node, longest {stalls['max_ms']:.1f} ms; {machine['count']} in the idle benchmark process at the "
            f"same threshold (the machine's), longest {machine['max_ms']:.1f} ms."
        )
    slow = timing["over_budget"]
    if slow:
        rows = "; ".join(
            f"{f['overhead_ms']:.1f} ms = previous frame busy {f['previous_busy_ms']:.1f} (its input "
            f"{f['previous_player_late_ms']:.1f} late) + hand-off {f['handoff_ms']:.1f}; last image's transport "
            f"{f['transport_ms']:.1f}, node stalled {f.get('process_stall_ms', math.nan):.1f} and the idle benchmark process "
            f"{f.get('machine_stall_ms', math.nan):.1f} in the second before"
            for f in slow[:5]
        )
        text += f" Over budget: {len(slow)} frame(s): {rows}."
    return text


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
