"""`easyocc synth`: generate a synthetic nuScenes-layout dataset with exact Occ3D ground truth."""

from __future__ import annotations

import argparse

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.synth.config import SynthConfig, parse_size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc synth", description=__doc__)
    parser.add_argument("--out", required=True, help="output folder (created; finished scenes are kept and skipped)")
    parser.add_argument("--scenes", type=int, default=10, help="number of scenes (default 10)")
    parser.add_argument("--frames", type=int, default=40, help="key frames per scene at 2 Hz (default 40)")
    parser.add_argument("--size", default="704x256", help="camera image WIDTHxHEIGHT (default 704x256)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--camera-hz", type=float, default=0.0, help="12 adds non-key-frame camera images at 12 Hz")
    parser.add_argument("--no-aux", action="store_true", help="skip per-image depth/semantic/instance ground truth")
    parser.add_argument(
        "--threads", type=int, default=None, help="rendering threads (default: one per core; files do not depend on it)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    for name in ("scenes", "frames", "threads"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            raise EasyOccError(f"--{name} must be positive, got {getattr(args, name)}")
    config = SynthConfig(
        scenes=args.scenes, frames=args.frames, image_size=parse_size(args.size), seed=args.seed,
        camera_hz=args.camera_hz, write_aux=not args.no_aux,
    )  # fmt: skip
    from easyocc.training.synth.writer import generate_dataset

    out = generate_dataset(args.out, config, progress=not args.quiet, threads=args.threads)
    print(f"wrote {config.scenes} scene(s) x {config.frames} key frame(s) to {out}")
    return 0
