"""Losses in voxel space: class-weighted cross-entropy plus Lovasz-softmax, on voxels whose label
mask is set (unobserved voxels carry no label and are ignored). No rendering."""

from __future__ import annotations

import math

import numpy as np
import torch
from easyocc.runtime.contract.classes import NUM_CLASSES
from easyocc.runtime.contract.errors import EasyOccError
from torch.nn import functional as F  # noqa: N812 (the torch convention)


def class_weights_from_counts(counts, c: float = 1.02) -> np.ndarray:
    """ENet weighting, w = 1 / ln(c + frequency): about 1.8 for a class that fills 70 % of the
    voxels (free), at most 1 / ln(c) ~ 50 for a rare one; bounded, unlike inverse frequency.

    counts: [K] labelled-voxel counts per class. Returns float32 [K]; absent classes get the maximum.
    """
    if not c > 1.0:  # ln(c + 0) must be positive, or absent classes get infinite or negative weights
        raise EasyOccError(f"class weights: the ENet constant c must be above 1, got {c}")
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.sum() <= 0:
        raise EasyOccError(f"class weights: need a non-empty [K] count vector, got shape {counts.shape}")
    return (1.0 / np.log(c + counts / counts.sum())).astype(np.float32)


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. sorted errors.

    gt_sorted: [P, K] 0/1 ground truth per class, each column sorted by decreasing error.
    """
    gts = gt_sorted.sum(0, keepdim=True)
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]], dim=0)


def lovasz_softmax(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovasz-softmax (Berman et al. 2018) averaged over classes present in `labels`.

    probs: [P, K] softmax probabilities; labels: [P] int64 class ids.
    """
    num_classes = probs.shape[1]
    fg = F.one_hot(labels, num_classes).to(probs.dtype)  # [P, K]
    present = fg.sum(0) > 0
    if not bool(present.any()):
        return probs.sum() * 0.0
    errors = (fg - probs).abs()
    # All classes sorted at once: one [P, K] sort instead of K separate ones.
    errors_sorted, order = torch.sort(errors, dim=0, descending=True)
    fg_sorted = torch.gather(fg, 0, order)
    per_class = (errors_sorted * lovasz_grad(fg_sorted)).sum(0)
    return per_class[present].mean()


def occupancy_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    lovasz_weight: float = 1.0,
    lovasz_max_voxels: int = 0,
    seeds=None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean over the batch of per-sample losses (so that batch 2 on one process equals batch 1 on
    each of two DDP processes).

    logits: [B, K, X, Y, Z] float; target: [B, X, Y, Z] int64 class ids; mask: [B, X, Y, Z] bool,
    voxels that carry a label; class_weights: [K] or None. lovasz_max_voxels > 0 scores Lovasz on a
    random subset of that many labelled voxels per sample (the sort is the CPU cost); `seeds` [B]
    ints make that subset reproducible per sample. Returns (loss, {"ce": ..., "lovasz": ...}).
    """
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:] or target.shape != mask.shape:
        raise EasyOccError(
            f"loss: logits {list(logits.shape)}, target {list(target.shape)} and mask {list(mask.shape)} disagree"
        )
    total, ce_sum, lovasz_sum = logits.new_zeros(()), 0.0, 0.0
    batch = logits.shape[0]
    for b in range(batch):
        keep = mask[b]
        if not bool(keep.any()):
            total = total + logits[b].sum() * 0.0  # keeps every parameter in the graph for DDP
            continue
        scores = logits[b].permute(1, 2, 3, 0)[keep].float()  # [P, K]
        labels = target[b][keep]
        ce = F.cross_entropy(scores, labels, weight=class_weights)
        loss = ce
        if lovasz_weight > 0:
            if 0 < lovasz_max_voxels < len(labels):
                generator = torch.Generator().manual_seed(int(seeds[b]) if seeds is not None else b)
                subset = torch.randperm(len(labels), generator=generator)[:lovasz_max_voxels].to(labels.device)
                scores_l, labels_l = scores[subset], labels[subset]
            else:
                scores_l, labels_l = scores, labels
            lovasz = lovasz_softmax(scores_l.softmax(dim=1), labels_l)
            loss = loss + lovasz_weight * lovasz
            lovasz_sum += float(lovasz.detach())
        ce_sum += float(ce.detach())
        total = total + loss
    if not math.isfinite(float(total.detach())):
        raise EasyOccError(f"loss is not finite ({float(total.detach())}): check the learning rate and the labels")
    return total / batch, {"ce": ce_sum / batch, "lovasz": lovasz_sum / batch}


def count_classes(semantics: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """[K] int64 counts of each class among the masked voxels of one label volume."""
    values = semantics if mask is None else semantics[mask.astype(bool)]
    return np.bincount(values.reshape(-1), minlength=NUM_CLASSES)[:NUM_CLASSES].astype(np.int64)
