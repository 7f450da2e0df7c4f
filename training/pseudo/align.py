"""Relative depth -> metric depth: a per-image scale and shift found by temporal photometric
consistency with the adjacent key frames of the same camera under the known ego motion, anchored by
sparse lidar where the dataset has one.

Loss (monodepth2 style): for each target pixel with depth D = s * r + b, reproject into each source
image, compare with 0.85 * (1 - SSIM) / 2 + 0.15 * L1 on 3x3 windows, and take the per-pixel minimum
over sources (robust to occlusion and to pixels leaving one view); plus, with lidar, the mean
relative error |D - d_lidar| / d_lidar. The scale starts from a lidar least-squares fit, else from
a coarse search over log scale; both are then refined with Adam on (log s, b).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from easyocc.calibration import Camera, invert_transform
from easyocc.runtime.contract.preprocess import read_image
from easyocc.training.pseudo.providers import DepthEstimator, ImageView


@dataclass(frozen=True)
class SourceView:
    """An adjacent image: uint8 RGB [H, W, 3], its camera, and src_T_tgt (target camera -> source camera)."""

    image_rgb: np.ndarray
    camera: Camera
    src_T_tgt: np.ndarray


def align_scale_shift(
    relative: np.ndarray,
    image_rgb: np.ndarray,
    camera: Camera,
    sources: list[SourceView],
    lidar_depth: np.ndarray | None = None,
    width: int = 192,
    iterations: int = 60,
    lidar_weight: float = 1.0,
) -> tuple[float, float]:
    """Scale and shift (metres) so that scale * relative + shift is metric depth.

    relative: float [H, W] affine-invariant depth (0 = invalid); lidar_depth: float [H, W] m, 0 = none.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812 - the usual torch alias

    scale_px = width / relative.shape[1]
    size = (width, int(round(relative.shape[0] * scale_px)))
    small = camera.resized(size[0] / camera.width, size[1] / camera.height)
    rel = torch.from_numpy(cv2.resize(relative.astype(np.float32), size, interpolation=cv2.INTER_NEAREST))
    target = _to_tensor(cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA))
    v, u = torch.meshgrid(
        torch.arange(size[1], dtype=torch.float32), torch.arange(size[0], dtype=torch.float32), indexing="ij"
    )
    K_inv = torch.from_numpy(np.linalg.inv(small.K)).float()
    rays = torch.stack([u, v, torch.ones_like(u)], dim=-1) @ K_inv.T  # [h, w, 3], z = 1
    prepared = []
    for source in sources:
        cam = source.camera.resized(size[0] / source.camera.width, size[1] / source.camera.height)
        prepared.append(
            (
                _to_tensor(cv2.resize(source.image_rgb, size, interpolation=cv2.INTER_AREA)),
                torch.from_numpy(cam.K).float(),
                torch.from_numpy(source.src_T_tgt).float(),
            )
        )
    valid_rel = rel > 0
    anchors = None
    if lidar_depth is not None:
        sparse = lidar_depth.astype(np.float32)
        ys, xs = np.nonzero((sparse > 0) & (relative > 0))
        if len(ys) >= 10:
            anchors = (torch.from_numpy(relative[ys, xs].astype(np.float32)), torch.from_numpy(sparse[ys, xs]))

    def loss_fn(log_scale, shift):
        depth = torch.exp(log_scale) * rel + shift
        errors = []
        for image, K_src, T in prepared:
            points = rays * depth[..., None] @ T[:3, :3].T + T[:3, 3]
            z = points[..., 2]
            uv = points[..., :2] / z.clamp(min=1e-3)[..., None] @ K_src[:2, :2].T + K_src[:2, 2]
            grid = torch.stack([(uv[..., 0] + 0.5) / size[0] * 2 - 1, (uv[..., 1] + 0.5) / size[1] * 2 - 1], -1)
            warped = F.grid_sample(image[None], grid[None], align_corners=False, padding_mode="border")[0]
            ok = (z > 0.1) & (grid.abs() < 1).all(-1) & valid_rel & (depth > 0.1)
            error = _photometric(warped, target)
            errors.append(torch.where(ok, error, torch.full_like(error, 10.0)))
        loss = torch.zeros(())
        if errors:
            best = torch.stack(errors).min(0).values
            loss = best[best < 10].mean() if (best < 10).any() else loss
        if anchors is not None:
            predicted = torch.exp(log_scale) * anchors[0] + shift
            loss = loss + lidar_weight * ((predicted - anchors[1]).abs() / anchors[1]).mean()
        return loss

    if anchors is not None:
        A = np.stack([anchors[0].numpy(), np.ones(len(anchors[0]))], 1)
        s0, b0 = np.linalg.lstsq(A, anchors[1].numpy(), rcond=None)[0]
        s0 = max(float(s0), 1e-3)
    else:
        median = float(np.median(relative[relative > 0])) if np.any(relative > 0) else 1.0
        candidates = np.geomspace(1.0, 80.0, 13) / median
        with torch.no_grad():
            scores = [float(loss_fn(torch.tensor(np.log(c), dtype=torch.float32), torch.zeros(()))) for c in candidates]
        s0, b0 = float(candidates[int(np.argmin(scores))]), 0.0
    log_scale = torch.tensor(np.log(s0), dtype=torch.float32, requires_grad=True)
    shift = torch.tensor(float(b0), dtype=torch.float32, requires_grad=True)
    optimiser = torch.optim.Adam([log_scale, shift], lr=0.02)
    for _ in range(iterations if prepared or anchors is not None else 0):
        optimiser.zero_grad()
        loss = loss_fn(log_scale, shift)
        if not loss.requires_grad:
            break
        loss.backward()
        optimiser.step()
    return float(torch.exp(log_scale.detach())), float(shift.detach())


def _to_tensor(image_rgb: np.ndarray):
    import torch

    return torch.from_numpy(image_rgb.astype(np.float32) / 255.0).permute(2, 0, 1)


def _photometric(a, b):
    """[3, h, w] images -> [h, w] 0.85 * (1 - SSIM) / 2 + 0.15 * L1 (3x3 windows)."""
    import torch.nn.functional as F  # noqa: N812 - the usual torch alias

    pool = lambda x: F.avg_pool2d(F.pad(x[None], (1, 1, 1, 1), mode="reflect"), 3, 1)[0]  # noqa: E731
    mu_a, mu_b = pool(a), pool(b)
    sigma_a = pool(a * a) - mu_a**2
    sigma_b = pool(b * b) - mu_b**2
    sigma_ab = pool(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * sigma_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (sigma_a + sigma_b + c2))
    return (0.85 * ((1 - ssim) / 2).clamp(0, 1) + 0.15 * (a - b).abs()).mean(0)


class AlignedDepth(DepthEstimator):
    """Wraps a relative depth estimator (disparity when `base.relative` is True, else affine depth)."""

    def __init__(self, base: DepthEstimator, use_lidar: bool = True, iterations: int = 60, width: int = 192):
        self.base = base
        self.name = f"aligned-{base.name}"
        self.use_lidar = use_lidar
        self.iterations = iterations
        self.width = width
        self._scenes = {}
        self.last_fit = None

    def options(self) -> dict:
        return {
            "base": self.base.cache_key(),
            "use_lidar": self.use_lidar,
            "iterations": self.iterations,
            "width": self.width,
        }

    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        relative = np.asarray(self.base.estimate(image_rgb, view), dtype=np.float32)
        if getattr(self.base, "relative", False):  # disparity -> depth up to scale and shift
            relative = np.where(
                relative > 1e-6 * max(float(relative.max()), 1e-12), 1.0 / np.maximum(relative, 1e-12), 0
            )
        lidar = None
        if self.use_lidar and view.sample.lidar is not None:
            from easyocc.training.pseudo.lidar_boxes import LidarDepth

            lidar = LidarDepth().estimate(image_rgb, view)
        scale, shift = align_scale_shift(
            relative, image_rgb, view.camera, self._sources(view), lidar, self.width, self.iterations
        )
        self.last_fit = (scale, shift)
        return np.where(relative > 0, np.maximum(scale * relative + shift, 0), 0).astype(np.float32)

    def _sources(self, view: ImageView) -> list[SourceView]:
        scene = view.sample.scene_name
        if scene not in self._scenes:
            self._scenes = {scene: view.dataset.samples(scene)}
        samples = self._scenes[scene]
        tgt_global_T_cam = view.frame.global_T_ego @ view.camera.ego_T_cam
        sources = []
        for index in (view.sample.index - 1, view.sample.index + 1):
            if not 0 <= index < len(samples) or view.channel not in samples[index].cameras:
                continue
            frame = samples[index].cameras[view.channel]
            camera = view.dataset.rig(samples[index])[view.channel]
            src_T_tgt = invert_transform(frame.global_T_ego @ camera.ego_T_cam) @ tgt_global_T_cam
            sources.append(SourceView(read_image(frame.path), camera, src_T_tgt))
        return sources
