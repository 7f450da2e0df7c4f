"""`easyocc stream`: run the streaming runtime on a nuScenes-layout dataset or an image folder.

Writes an npz per frame and a top-down preview (PNG + GIF) to --out, and prints the latency table
and the dropped-frame counters. The run is a StreamConfig (easyocc/runtime/streaming.py).
"""

from __future__ import annotations

import argparse

from easyocc.commands import options
from easyocc.runtime.streaming import StreamConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc stream", description=__doc__.splitlines()[0])
    options.add_runtime_options(parser)
    options.add_source_options(parser)
    options.add_out(parser, help="output folder (npz per frame, preview.png/.gif; default stream_out)")
    options.add_frames(parser)
    parser.add_argument("--no-npz", action="store_true", help="do not write an npz per frame")
    parser.add_argument(
        "--save-predictions",
        action="store_true",
        help="also write OUT/predictions/<scene>/<sample_token>/labels.npz, scored by `easyocc eval --predictions`",
    )
    parser.add_argument("--live", action="store_true", help="newest-frame buffers: skip frames that come too fast")
    parser.add_argument(
        "--record", metavar="FILE.mcap", help="also record an MCAP file in Foxglove schemas (needs easyocc[record])"
    )
    options.add_json(parser, help="write the latency summary and drop counters to this JSON file")
    options.add_verbose(parser, help="log every dropped frame")
    options.add_config(parser, StreamConfig)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    flags = {
        **options.runtime_values(args),
        **options.source_values(args),
        "out": args.out,
        "frames": args.frames,
        "npz": False if args.no_npz else None,
        "save_predictions": args.save_predictions or None,
        "live": args.live or None,
        "record": args.record,
    }
    config = options.resolve_config(StreamConfig, args, flags)
    if args.print_config:
        return options.print_config(config)
    options.check_outputs(config.out, args.json)
    options.setup_logging(args.verbose, quiet=not args.verbose)
    from easyocc.runtime.streaming import run_stream

    outcome = run_stream(config, args.json)
    print(outcome.text)
    for path in outcome.written:
        print(f"wrote {path}")
    return 0
