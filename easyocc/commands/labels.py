"""`easyocc labels`: build Occ3D pseudo-labels for a nuScenes-layout dataset.

The run is a LabelsConfig (training/pseudo/run.py): a --config YAML, the flags below, then KEY=VALUE
overrides (e.g. pseudo.past_frames=4 pseudo.dynamic_filter=false). Resume, provider cache and
sharding over torchrun ranks are described in training/pseudo/run.py.
"""

from __future__ import annotations

import argparse
import json
import sys

from easyocc.commands import options
from easyocc.training.pseudo.run import LabelsConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc labels", description=__doc__.splitlines()[0])
    options.add_data(parser)
    options.add_out(parser, help="output folder: gts/<scene>/<token>/labels.npz")
    options.add_scene(parser)
    options.add_frames(parser, help="at most this many key frames per scene, from the start (default: all)")
    parser.add_argument(
        "--segmenter", help="ground-truth, simulated-low, simulated-high, boxes (default), grounded-sam"
    )
    parser.add_argument(
        "--depth",
        help="ground-truth, simulated-low, simulated-high, lidar (default), metric3d, depth-anything, aligned-<name>"
        " (relative: aligned-simulated-relative-low|high, aligned-lidar-relative)",
    )
    parser.add_argument(
        "--anchor",
        choices=("none", "lidar"),
        help="metric anchor of aligned-<name> depth: none (default; camera-only, no lidar read) or lidar",
    )
    parser.add_argument(
        "--models", help="folder of local model folders: grounding-dino/, sam/, metric3d/, depth-anything/"
    )
    parser.add_argument("--vocabulary", help="Grounded-SAM vocabulary YAML (default: training/data/vocabulary.yaml)")
    parser.add_argument("--cache", help="provider output cache folder (default <out>/cache)")
    parser.add_argument("--no-cache", action="store_true", help="do not cache provider outputs")
    parser.add_argument("--seed", type=int, help="seed of the simulated providers (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="redo finished samples; allow changed settings")
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="score against ground-truth labels in --data, and the next key frame's lidar",
    )
    options.add_quiet(parser)
    options.add_verbose(parser)
    options.add_deprecated(parser, "--limit", "--frames", "frames", type=int)
    options.add_deprecated(parser, "--set", "KEY=VALUE (e.g. pseudo.min_points=3)", "overrides_set", append=True)
    options.add_config(parser, LabelsConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    # the old --set FIELD=VALUE named fields of the 3-D stage
    args.overrides = [f"pseudo.{item}" for item in getattr(args, "overrides_set", None) or []] + args.overrides
    flags = {
        "data": args.data,
        "out": args.out,
        "scenes": args.scene,
        "frames": args.frames,
        "segmenter": args.segmenter,
        "depth": args.depth,
        "anchor": args.anchor,
        "models": args.models,
        "vocabulary": args.vocabulary,
        "cache": args.cache,
        "use_cache": False if args.no_cache else None,
        "seed": args.seed,
        "overwrite": args.overwrite or None,
        "evaluate": args.evaluate or None,
    }
    config = options.resolve_config(LabelsConfig, args, flags)
    if args.print_config:
        return options.print_config(config)
    options.check_outputs(config.out)
    options.require_modules("scipy")  # the 3-D stage (outlier removal, dilation) needs it on every path
    options.setup_logging(args.verbose)
    from easyocc.training.pseudo.run import run_labels

    summary = run_labels(config, progress=not args.quiet)
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=2))
    if summary.get("depth"):
        from easyocc.training.pseudo.evaluate import depth_table

        print(depth_table(summary["depth"]))
    if summary["failed"]:
        print(
            f"easyocc labels: {summary['failed']} sample(s) skipped; reasons in the log and summary_rank{summary['rank']}.json",
            file=sys.stderr,
        )
        return 1
    return 0
