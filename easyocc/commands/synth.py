"""`easyocc synth`: generate a synthetic nuScenes-layout dataset with exact Occ3D ground truth.

The world is a SynthConfig (training/synth/config.py): a --config YAML, the flags below, then
KEY=VALUE overrides (e.g. density=1.5 lidar_beams=64); `--print-config` shows every field.
"""

from __future__ import annotations

import argparse

from easyocc.commands import options
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.synth.config import SynthConfig, parse_size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc synth", description=__doc__.splitlines()[0])
    options.add_out(parser, help="output folder (created; finished scenes are kept and skipped)")
    parser.add_argument("--scenes", type=int, help="number of scenes (default 10)")
    options.add_frames(parser, help="key frames per scene at 2 Hz (default 40)")
    parser.add_argument("--size", help="camera image WIDTHxHEIGHT (default 704x256)")
    parser.add_argument("--seed", type=int, help="master seed (default 0)")
    parser.add_argument("--camera-hz", type=float, help="12 adds non-key-frame camera images at 12 Hz")
    parser.add_argument("--no-aux", action="store_true", help="skip per-image depth/semantic/instance ground truth")
    parser.add_argument(
        "--threads", type=int, default=None, help="rendering threads (default: one per core; files do not depend on it)"
    )
    options.add_quiet(parser)
    options.add_config(parser, SynthConfig)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    flags = {
        "scenes": args.scenes,
        "frames": args.frames,
        "image_size": parse_size(args.size) if args.size else None,
        "seed": args.seed,
        "camera_hz": args.camera_hz,
        "write_aux": False if args.no_aux else None,
    }
    config = options.resolve_config(SynthConfig, args, flags)
    if args.print_config:
        return options.print_config(config)
    if not args.out:
        raise EasyOccError("synth: give the output folder with --out")
    options.check_outputs(args.out)
    if args.threads is not None and args.threads <= 0:
        raise EasyOccError(f"--threads must be positive, got {args.threads}")
    from easyocc.training.synth.writer import generate_dataset

    out = generate_dataset(args.out, config, progress=not args.quiet, threads=args.threads)
    print(f"wrote {config.scenes} scene(s) x {config.frames} key frame(s) to {out}")
    return 0
