"""`easyocc bench`: per-stage latency, live latency, throughput, CPU and memory of the streaming runtime, per backend.

The measurements are easyocc.runtime.benchmark's (its docstring says what each pass means): backend
alone, one frame at a time, live at the recording's rate with --paced (newest-frame policy: the
latency a car sees), and throughput as fast as possible (its end-to-end time is queueing, reported
as such). The JSON records the machine's load average, since the development machines are shared.
The run is a BenchConfig (easyocc/runtime/benchmark_run.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from easyocc.commands import options
from easyocc.runtime.benchmark import format_table
from easyocc.runtime.benchmark_run import BenchConfig
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc bench", description=__doc__.splitlines()[0])
    options.add_model(parser, help="model of the backends that name none (default: the bundled model)")
    parser.add_argument(
        "--backend",
        action="append",
        default=None,
        help="backend spec, repeatable: onnxruntime[:threads=N], torch:model=M.ts, tensorrt:model=E.engine; "
        "any spec also takes decoder=cpu|nvimgcodec, reduced_decode=true|false and ahead_priority=auto|low|normal",
    )
    options.add_frames(parser, help="measured frames per backend (default 200; 2000 for the RSS check)")
    parser.add_argument("--warmup", type=int, default=None, help="frames excluded from the statistics (default 10)")
    parser.add_argument(
        "--backend-frames", type=int, default=None, help="backend-alone iterations (default min(frames, 200))"
    )
    parser.add_argument(
        "--sequential-frames", type=int, default=None, help="frames run one at a time for per-stage cost (default 30)"
    )
    parser.add_argument("--rig", default=None, help="rig YAML for synthetic frames (default: the nuScenes rig)")
    parser.add_argument("--missing-camera", choices=("drop", "zero"), default=None)
    options.add_json(parser, help="write all numbers to this JSON file, and a latency plot beside it (.png)")
    options.add_source_options(parser)
    options.add_config(parser, BenchConfig)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    flags = {
        "model": args.model or str(options.default_model()),
        "backends": args.backend,
        "rig": args.rig,
        **options.source_values(args),
        "options.frames": args.frames,
        "options.warmup": args.warmup,
        "options.backend_frames": args.backend_frames,
        "options.sequential_frames": args.sequential_frames,
        "options.live": args.paced or None,
        "options.missing_camera": args.missing_camera,
    }
    config = options.resolve_config(BenchConfig, args, flags)
    if args.print_config:
        return options.print_config(config)
    options.check_outputs(json=args.json)
    options.setup_logging(quiet=True)
    from easyocc.runtime.benchmark_run import run_bench

    report = run_bench(config)
    print(
        f"source: {report['source']}; {report['frames']} frames after {report['warmup']} warm-up; "
        f"load average {report['load_average']}"
    )
    print(format_table(report["results"], report["host_preprocess_ms"]))
    if args.json:
        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
        plot = Path(args.json).with_suffix(".png")
        try:
            from easyocc.runtime.bench_plot import write_latency_plot

            print(f"wrote {write_latency_plot(report, plot)}")
        except EasyOccError as exc:  # matplotlib is optional: the numbers are in the JSON
            print(f"latency plot skipped: {exc}")
    return 0
