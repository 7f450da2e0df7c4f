"""Differentiable volume rendering of occupancy logits along rays (RadOcc, after NeRF).

Along each ray, samples at t_s = near + (s + 0.5) * step read the per-class logits by trilinear
interpolation of the voxel grid (5-D `grid_sample`); a sample's occupancy is alpha_s = 1 - p_free,
its termination weight w_s = alpha_s * prod_{j<s} (1 - alpha_j); the remaining transmittance
`miss` = prod_s (1 - alpha_s) is the chance that the ray ends nowhere in the grid. Outside the grid
alpha is 0. Rendered depth = sum_s w_s t_s + miss * far; the rendered class distribution is the
weighted mean of the samples' class probabilities (renormalised over the weight), and rendered
features likewise from any feature volume the model exposes. Batched, device-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from easyocc.runtime.contract.classes import FREE
from easyocc.runtime.contract.grid import GridSpec
from torch.nn import functional as F  # noqa: N812 (the torch convention)


@dataclass
class Rendered:
    """Per ray ([B, R] leading dims): weights [B, R, S] (termination distribution over the samples),
    miss [B, R], t [S] sample distances (m), depth [B, R] (m), classes [B, R, C] (probabilities),
    features [B, R, F] or None."""

    weights: torch.Tensor
    miss: torch.Tensor
    t: torch.Tensor
    depth: torch.Tensor
    classes: torch.Tensor
    features: torch.Tensor | None = None


def sample_volume(
    volume: torch.Tensor, points: torch.Tensor, grid: GridSpec, border: bool = False, mode: str = "bilinear"
) -> torch.Tensor:
    """Trilinear ("bilinear" in grid_sample's words) or "nearest" samples of volume [B, C, X, Y, Z] at
    points [B, N, 3] (ego, metres) -> [B, N, C]. A volume with Z = 1 (a BEV map) is read at every height."""
    lower = points.new_tensor(grid.lower)
    upper = points.new_tensor(grid.upper)
    normalised = (points - lower) / (upper - lower) * 2 - 1  # [-1, 1] at the grid's outer faces
    # grid_sample's (x, y, z) index the last three dims (W, H, D) = (Z, Y, X) of our volume.
    coords = normalised.flip(-1)[:, :, None, None, :]  # [B, N, 1, 1, 3]
    padding = "border" if border or volume.shape[-1] == 1 else "zeros"
    sampled = F.grid_sample(volume, coords, mode=mode, padding_mode=padding, align_corners=False)
    return sampled[:, :, :, 0, 0].transpose(1, 2)


def render_rays(
    logits: torch.Tensor,
    grid: GridSpec,
    origins: torch.Tensor,
    directions: torch.Tensor,
    near: float = 0.5,
    far: float | None = None,
    step: float | None = None,
    features: torch.Tensor | None = None,
    free_index: int = FREE,
    mode: str = "bilinear",
) -> Rendered:
    """Render logits [B, C, X, Y, Z] along rays origins [B, R, 3] + t * directions [B, R, 3] (unit,
    ego frame, metres). `far` defaults to the grid's diagonal, `step` to half a voxel. `features`
    [B, F, X, Y, Z] (or Z = 1) are rendered with the same weights when given. `mode` "nearest" reads
    each sample's voxel as is (voxel-exact rendering of a label grid); training uses trilinear."""
    far = float(far if far is not None else torch.tensor(grid.upper).sub(torch.tensor(grid.lower)).norm())
    step = float(step if step is not None else grid.voxel_size / 2)
    count = max(1, int((far - near) / step))
    t = near + (torch.arange(count, device=logits.device, dtype=logits.dtype) + 0.5) * step
    batch, rays = origins.shape[:2]
    points = origins[:, :, None, :] + directions[:, :, None, :] * t[None, None, :, None]  # [B, R, S, 3]
    flat = points.reshape(batch, rays * count, 3)
    probs = sample_volume(logits, flat, grid, mode=mode).softmax(dim=-1)  # [B, R*S, C]
    lower, upper = flat.new_tensor(grid.lower), flat.new_tensor(grid.upper)
    inside = ((flat >= lower) & (flat <= upper)).all(dim=-1)
    alpha = ((1 - probs[..., free_index]) * inside).reshape(batch, rays, count)
    transmittance = torch.cumprod(torch.cat([alpha.new_ones(batch, rays, 1), 1 - alpha], dim=-1), dim=-1)
    weights = alpha * transmittance[..., :-1]
    miss = transmittance[..., -1]
    depth = (weights * t).sum(-1) + miss * far
    norm = weights.sum(-1, keepdim=True).clamp_min(1e-6)
    classes = (weights[..., None] * probs.reshape(batch, rays, count, -1)).sum(2) / norm
    rendered_features = None
    if features is not None:
        sampled = sample_volume(features, flat, grid).reshape(batch, rays, count, -1)
        rendered_features = (weights[..., None] * sampled).sum(2) / norm
    return Rendered(weights, miss, t, depth, classes, rendered_features)


def one_hot_logits(semantics: torch.Tensor, num_classes: int, sharpness: float = 30.0) -> torch.Tensor:
    """Logits [B, C, X, Y, Z] of a label grid semantics int64 [B, X, Y, Z]: `sharpness` on the class."""
    return F.one_hot(semantics.long(), num_classes).permute(0, 4, 1, 2, 3).float() * sharpness
