"""Photometric consistency of an inverse-depth map with other views (monodepth2's loss, evaluated for a
set of candidate inverse-depth maps instead of trained).

For each target pixel with inverse depth k * q, reproject into each source view, compare with
0.85 * (1 - SSIM) / 2 + 0.15 * L1 on 3x3 windows, and take the per-pixel minimum over sources
(occlusions, pixels leaving one view). Auto-masking: the un-warped temporal sources' errors join the
minimum, so pixels that look the same without any warp (the sky, things moving with the ego car,
textureless road) cannot favour any depth. The loss is a mean over a fixed pixel set (pixels with a
finite error at every factor), so no factor can win by pushing pixels out of the views.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from easyocc.calibration import Camera


@dataclass(frozen=True)
class SourceView:
    """Another image at the working size: uint8 RGB [h, w, 3], its full-size camera, src_T_tgt
    (target camera -> source camera, 4x4), and whether it is the same camera at another time."""

    image_rgb: np.ndarray
    camera: Camera
    src_T_tgt: np.ndarray
    temporal: bool = True


def photometric_losses(
    inverse_depths: list[np.ndarray], target_rgb: np.ndarray, camera: Camera, sources: list[SourceView]
) -> np.ndarray:
    """Mean auto-masked minimum reprojection error [K] of each candidate inverse-depth map [K][h, w]
    (1/m, <= 0: no depth), over the pixels comparable under every candidate.

    target_rgb: uint8 [h, w, 3]; camera: the target camera at size (w, h). NaN where no pixel is
    comparable. OpenCV only (remap, box filters): milliseconds per candidate at the working size.
    """
    h, w = target_rgb.shape[:2]
    target = target_rgb.astype(np.float32) / 255.0
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(camera.K).T  # [h, w, 3], z = 1
    images = [s.image_rgb.astype(np.float32) / 255.0 for s in sources]
    identity = [_photometric(image, target) for image, s in zip(images, sources) if s.temporal]
    floor = np.min(identity, axis=0) if identity else np.full((h, w), np.inf, np.float32)
    per_factor = []
    for q in inverse_depths:
        depth = 1.0 / np.maximum(q, 1e-6)
        best = floor.copy()
        for image, source in zip(images, sources):
            small = source.camera.resized(w / source.camera.width, h / source.camera.height)
            T = source.src_T_tgt
            points = (rays * depth[..., None]) @ T[:3, :3].T + T[:3, 3]
            z = points[..., 2]
            uv = points[..., :2] / np.maximum(z, 1e-3)[..., None] @ small.K[:2, :2].T + small.K[:2, 2]
            map_x, map_y = uv[..., 0].astype(np.float32), uv[..., 1].astype(np.float32)
            warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            inside = (z > 0.1) & (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1) & (q > 0)
            best = np.where(inside, np.minimum(best, _photometric(warped, target)), best)
        per_factor.append(best)
    stacked = np.stack(per_factor)  # [K, h, w]
    fixed = np.isfinite(stacked).all(0)
    if not fixed.any():
        return np.full(len(inverse_depths), np.nan)
    return stacked[:, fixed].mean(1).astype(np.float64)


def _photometric(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32 [h, w, 3] images in [0, 1] -> [h, w] 0.85 * (1 - SSIM) / 2 + 0.15 * L1 (3x3 windows)."""
    pool = lambda x: cv2.blur(x, (3, 3), borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mu_a, mu_b = pool(a), pool(b)
    sigma_a = pool(a * a) - mu_a**2
    sigma_b = pool(b * b) - mu_b**2
    sigma_ab = pool(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * sigma_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (sigma_a + sigma_b + c2))
    return (0.85 * np.clip((1 - ssim) / 2, 0, 1) + 0.15 * np.abs(a - b)).mean(-1)
