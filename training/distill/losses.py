"""RadOcc's distillation losses, and the plain logit-KL baseline the paper compares them with.

- Depth consistency: KL(teacher || student) between the two ray termination distributions (each
  ray's weights over its samples plus the no-termination bin), mean over rays.
- Semantic consistency: within each image segment, the pairwise cosine affinities of the student's
  rendered features should match the teacher's (L1), which needs no shared feature space.
- Logit KL: KL(teacher || student) of the per-voxel class distributions at a temperature.
"""

from __future__ import annotations

import torch
from easyocc.training.distill.render import Rendered
from torch.nn import functional as F  # noqa: N812 (the torch convention)

EPS = 1e-6


def termination_distribution(rendered: Rendered) -> torch.Tensor:
    """[B, R, S + 1]: the weights and the no-termination bin, summing to 1 per ray."""
    return torch.cat([rendered.weights, rendered.miss[..., None]], dim=-1)


def depth_consistency(student: Rendered, teacher: Rendered) -> torch.Tensor:
    """mean over rays of KL(teacher || student) of the termination distributions."""
    p_teacher = termination_distribution(teacher).clamp_min(EPS)
    p_student = termination_distribution(student).clamp_min(EPS)
    return (p_teacher * (p_teacher.log() - p_student.log())).sum(-1).mean()


def segment_affinity_loss(
    student: torch.Tensor, teacher: torch.Tensor, segments: torch.Tensor, max_rays: int = 512, generator=None
) -> torch.Tensor:
    """L1 between student and teacher cosine affinities of ray pairs in the same segment.

    student [B, R, F_s], teacher [B, R, F_t] rendered features; segments int64 [B, R] (-1 = none).
    Per sample, at most `max_rays` rays with a segment take part (a random subset). Returns 0 (with a
    gradient path) when no segment holds two rays."""
    total, pairs = student.sum() * 0.0, 0
    for b in range(student.shape[0]):
        rays = torch.nonzero(segments[b] >= 0).squeeze(1)
        if rays.numel() > max_rays:
            pick = torch.randperm(rays.numel(), generator=generator)[:max_rays]
            rays = rays[pick.to(rays.device)]
        if rays.numel() < 2:
            continue
        seg = segments[b, rays]
        same = (seg[:, None] == seg[None, :]) & ~torch.eye(len(rays), dtype=torch.bool, device=seg.device)
        if not bool(same.any()):
            continue
        fs = F.normalize(student[b, rays].float(), dim=-1)
        ft = F.normalize(teacher[b, rays].float(), dim=-1)
        diff = (fs @ fs.T - ft @ ft.T).abs()
        total = total + diff[same].sum()
        pairs += int(same.sum())
    return total / max(pairs, 1)


def logit_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None, temperature: float = 1.0):
    """KL(teacher || student) of class distributions per voxel, times T^2, mean over `mask` voxels.
    student, teacher [B, C, X, Y, Z]; mask bool [B, X, Y, Z] or None (all voxels)."""
    log_s = F.log_softmax(student.float() / temperature, dim=1)
    log_t = F.log_softmax(teacher.float() / temperature, dim=1)
    kl = (log_t.exp() * (log_t - log_s)).sum(1)  # [B, X, Y, Z]
    if mask is not None:
        kl = kl[mask]
    return kl.mean() * temperature**2
