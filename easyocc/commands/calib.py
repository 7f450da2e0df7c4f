"""`easyocc calib check`: lidar-to-image overlay of a sample, per-camera fraction of points in view."""

from __future__ import annotations

import argparse

from easyocc.commands import options
from easyocc.runtime.dataset.lidar_projection import write_overlay_check


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc calib", description="Camera rig checks.")
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="project the lidar sweep into all cameras and write a mosaic PNG")
    check.add_argument("--data", required=True, help="nuScenes-layout dataset folder")
    check.add_argument("--scene", default=None, help="scene name (default: the first scene)")
    check.add_argument("--sample", type=int, default=0, help="key-frame index within the scene (default 0)")
    check.add_argument("--out", default="overlay.png", help="output PNG (default overlay.png)")
    check.add_argument("--no-motion-compensation", action="store_true", help="ignore ego motion between sensors")
    check.add_argument("--max-depth", type=float, default=50.0, help="depth (m) mapped to the far colour")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    options.check_outputs(args.out, out_kind="file")
    fractions = write_overlay_check(
        args.data, args.scene, args.sample, args.out, not args.no_motion_compensation, args.max_depth
    )
    print(f"{'camera':<18}{'points in image':>16}")
    for camera, fraction in fractions.items():
        print(f"{camera:<18}{100 * fraction:>15.1f}%")
    print(f"overlay written to {args.out}")
    return 0
