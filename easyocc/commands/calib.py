"""`easyocc calib check`: lidar-to-image overlay of a sample, per-camera fraction of points in view."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from easyocc.calibration.overlay import depth_colours, draw_points, label_image, mosaic
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import atomic_path
from easyocc.runtime.dataset.lidar_projection import project_lidar
from easyocc.runtime.dataset.nuscenes import NuScenesDataset


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


def run_check(data, scene, sample_index: int, out, motion_compensation: bool = True, max_depth: float = 50.0) -> dict:
    """Write the overlay mosaic; return {camera: fraction of lidar points inside the image}."""
    dataset = NuScenesDataset(data)
    scene = scene or dataset.scene_names[0]
    samples = dataset.samples(scene)
    if not 0 <= sample_index < len(samples):
        raise EasyOccError(f"scene {scene} has {len(samples)} key frames; --sample {sample_index} is out of range")
    sample = samples[sample_index]
    tiles, fractions = [], {}
    for projection in project_lidar(dataset, sample, motion_compensation=motion_compensation):
        image = cv2.imread(str(sample.cameras[projection.camera].path), cv2.IMREAD_COLOR)
        if image is None:
            raise EasyOccError(f"image not readable: {sample.cameras[projection.camera].path}")
        radius = max(1, image.shape[1] // 500)
        image = draw_points(image, projection.uv, depth_colours(projection.depth_m, max_depth), radius)
        tiles.append(label_image(image, f"{projection.camera}  {100 * projection.fraction_in_image:.1f}% of points"))
        fractions[projection.camera] = projection.fraction_in_image
    out = Path(out)
    with atomic_path(out) as tmp:
        ok, encoded = cv2.imencode(".png", mosaic(tiles))
        if not ok:
            raise EasyOccError("could not encode the overlay PNG")
        tmp.write_bytes(encoded.tobytes())
    return fractions


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    fractions = run_check(args.data, args.scene, args.sample, args.out, not args.no_motion_compensation, args.max_depth)
    print(f"{'camera':<18}{'points in image':>16}")
    for camera, fraction in fractions.items():
        print(f"{camera:<18}{100 * fraction:>15.1f}%")
    print(f"overlay written to {args.out}")
    return 0
