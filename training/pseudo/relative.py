"""Relative-depth stand-ins: what a relative monocular model (Depth Anything's relative checkpoints,
MiDaS) outputs, built from data that exists on these machines, to test the alignment without weights.

A relative model predicts affine-invariant disparity: d = a / z + b for an unknown positive scale `a`
and shift `b` that differ from image to image. `scramble_disparity` turns metric depth into such an
output with a seeded per-image (a, b); `LidarRelativeDepth` does it for real data from the key
frame's lidar (projected, densified by nearest fill, so it carries densification errors at edges);
the synthetic world's relative mode is `simulated.SimulatedRelativeDepth`.

These stand-ins use lidar (real data) or the renderer's depth (synthetic) as their *source*; the
alignment that consumes them never sees anything but their scrambled output.
"""

from __future__ import annotations

import zlib

import numpy as np
from easyocc.training.pseudo.providers import DepthEstimator, ImageView

SCALE_RANGE = (0.05, 20.0)
"""Per-image disparity scale a is log-uniform in this range (unitless: d is in 'model units')."""
SHIFT_RANGE = (-0.05, 0.3)
"""Per-image shift b, as a fraction of a (so b / a is an inverse depth offset in 1/m)."""


def image_rng(seed: int, view: ImageView, kind: str) -> np.random.Generator:
    """A generator seeded by (seed, kind, camera, image file): reproducible per image."""
    return np.random.default_rng([int(seed), zlib.crc32(f"{kind}/{view.channel}/{view.path.name}".encode())])


def scramble_disparity(depth_m: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """float [H, W] metric depth (0 = none or sky) -> (float32 [H, W] disparity a / z + b, a, b).

    Pixels without depth get inverse depth 0 (infinitely far, like sky for a real model), i.e. d = b.
    """
    scale = float(np.exp(rng.uniform(*np.log(SCALE_RANGE))))
    shift = float(scale * rng.uniform(*SHIFT_RANGE))
    inverse = np.where(depth_m > 0, 1.0 / np.maximum(depth_m, 1e-6), 0.0)
    return (scale * inverse + shift).astype(np.float32), scale, shift


def densify(sparse_m: np.ndarray, cell_px: int = 4, max_gap_cells: int = 12) -> np.ndarray:
    """Sparse depth map float [H, W] (0 = none) -> dense float32 [H, W]: the nearest return per cell of
    `cell_px` pixels, holes filled with the nearest filled cell (0 beyond `max_gap_cells` cells)."""
    from scipy.ndimage import distance_transform_edt

    height, width = sparse_m.shape
    rows, cols = -(-height // cell_px), -(-width // cell_px)
    padded = np.full((rows * cell_px, cols * cell_px), np.inf, np.float32)
    padded[:height, :width] = np.where(sparse_m > 0, sparse_m, np.inf)
    cells = padded.reshape(rows, cell_px, cols, cell_px).min(axis=(1, 3))
    empty = ~np.isfinite(cells)
    if empty.all():
        return np.zeros_like(sparse_m, dtype=np.float32)
    distance, (iy, ix) = distance_transform_edt(empty, return_indices=True)
    filled = np.where(distance <= max_gap_cells, cells[iy, ix], 0.0).astype(np.float32)
    return np.repeat(np.repeat(filled, cell_px, 0), cell_px, 1)[:height, :width]


class LidarRelativeDepth(DepthEstimator):
    """Stand-in for a relative model on real data: the key frame's lidar in this camera, densified,
    as disparity scrambled by a seeded per-image scale and shift. `relative` = True (needs aligned-)."""

    name = "lidar-relative"
    relative = True

    def __init__(self, seed: int = 0, cell_px: int = 4):
        self.seed, self.cell_px = int(seed), int(cell_px)
        self.last_scramble = None

    def options(self) -> dict:
        return {"seed": self.seed, "cell_px": self.cell_px, "scale": SCALE_RANGE, "shift": SHIFT_RANGE}

    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        from easyocc.runtime.contract.errors import EasyOccError
        from easyocc.training.pseudo.lidar_boxes import LidarDepth

        if view.sample.lidar is None:
            raise EasyOccError(f"lidar-relative needs the key frame's lidar; sample {view.sample.token} has none")
        dense = densify(LidarDepth().estimate(image_rgb, view), self.cell_px)
        disparity, scale, shift = scramble_disparity(dense, image_rng(self.seed, view, "lidar-relative"))
        self.last_scramble = (scale, shift)
        return disparity
