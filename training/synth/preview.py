"""Pictures of a key frame for the README: the six cameras with their semantics and depth, and a
top-down view of the ground-truth grid (the runtime's `render_topdown`).

    .venv/bin/python -m easyocc.training.synth.preview --out docs/images
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from easyocc.runtime.contract.classes import PALETTE
from easyocc.runtime.contract.fileio import write_bytes_atomic
from easyocc.runtime.sinks import encode_png
from easyocc.runtime.topdown import render_topdown
from easyocc.training.synth.config import SynthConfig
from easyocc.training.synth.synthetic import KeyFrame, SyntheticWorld


def surround_order(rig) -> list[str]:
    """Camera names clockwise from the front-left as seen from above (yaw of each optical axis in the
    ego frame), so that a 3 + 3 mosaic shows the front row left to right, then the back row."""

    def yaw_from_front_left(camera) -> float:
        axis = camera.ego_T_cam[:3, 2]  # the camera's z (optical) axis in the ego frame
        return (np.degrees(np.arctan2(axis[1], axis[0])) - 90.0) % 360.0  # 0..360, larger = further left

    return [camera.name for camera in sorted(rig, key=yaw_from_front_left, reverse=True)]


def mosaic(key: KeyFrame, names, scale: float = 0.4) -> np.ndarray:
    """Cameras in two rows (front three, back three), each over its semantic map; RGB uint8."""
    tiles = []
    for name in names:
        render_ = key.frame.cameras[name]
        h, w = render_.depth_m.shape
        size = (int(w * scale), int(h * scale))
        rgb = cv2.resize(render_.rgb, size, interpolation=cv2.INTER_AREA)
        sem = cv2.resize(PALETTE[render_.semantic], size, interpolation=cv2.INTER_NEAREST)
        tiles.append(np.concatenate([rgb, sem], axis=0))
    return np.concatenate([np.concatenate(tiles[:3], axis=1), np.concatenate(tiles[3:], axis=1)], axis=0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--scene", type=int, default=0)
    parser.add_argument("--frame", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    world = SyntheticWorld(SynthConfig(seed=args.seed), args.scene)
    key = world.key_frame(args.frame)
    out = Path(args.out)
    order = surround_order(world.rig)
    images = {
        "synth_cameras.png": mosaic(key, order),
        "synth_grid_topdown.png": render_topdown(key.labels.semantics, world.config.grid, key.labels.mask_camera),
    }
    for name, image in images.items():
        data = encode_png(image)
        write_bytes_atomic(out / name, data)
        print(f"{out / name}: {len(data) // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
