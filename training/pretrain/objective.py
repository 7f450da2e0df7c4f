"""Losses of pretraining and of mixed fine-tuning, and the lift of teacher features into the cells.

- Class-agnostic occupancy: binary cross-entropy on known voxels (lidar targets: occupied, free),
  occupied voxels weighted `occupied_weight`. For the semantic model the occupancy logit is
  logsumexp(non-free logits) - free logit, so lidar-only samples supervise its free/occupied split.
- Feature distillation (OccFeat): the frozen teacher's per-pixel features are lifted into the cells
  by the SAME view transform the student uses (bilinear sampling at each cell centre's projection,
  averaged over the cameras that see it) and regressed with 1 - cosine similarity on seen cells.
"""

from __future__ import annotations

import torch
from easyocc.runtime.contract.classes import FREE
from easyocc.training.losses import occupancy_loss
from easyocc.training.model.network import sample_cells
from easyocc.training.pretrain.data import LABELS
from torch.nn import functional as F  # noqa: N812 (the torch convention)


def lift_features(features: torch.Tensor, vt_uv: torch.Tensor, vt_weights: torch.Tensor, cell_shape) -> tuple:
    """Teacher features into the cells: (lifted [B, D, Xc, Yc, Zc], seen bool [B, Xc, Yc, Zc]).

    features: [B * N_cam, D, h, w] (any resolution: vt_uv is normalised); vt_uv [B, N_cam, N_cell, 2],
    vt_weights [B, N_cam, N_cell]. A cell seen by several cameras gets their weighted mean.
    """
    summed = sample_cells(features, vt_uv, vt_weights)  # [B, D, N_cell]
    weight = vt_weights.sum(dim=1)  # [B, N_cell]
    lifted = summed / weight.clamp(min=1e-6)[:, None]
    batch, dim = lifted.shape[:2]
    return lifted.reshape(batch, dim, *cell_shape), (weight > 0).reshape(batch, *cell_shape)


def binary_occupancy_loss(logit: torch.Tensor, target: torch.Tensor, known: torch.Tensor, occupied_weight: float):
    """BCE on known voxels. logit [X, Y, Z]; target [X, Y, Z] class ids (FREE = free, else occupied)."""
    if not bool(known.any()):
        return logit.sum() * 0.0
    occupied = (target[known] != FREE).float()
    weight = torch.tensor(occupied_weight, device=logit.device)
    return F.binary_cross_entropy_with_logits(logit[known], occupied, pos_weight=weight)


def semantic_occupancy_logit(logits: torch.Tensor) -> torch.Tensor:
    """[K, X, Y, Z] class logits -> [X, Y, Z] logit of 'not free' (log of P(occupied) / P(free))."""
    others = torch.cat([logits[:FREE], logits[FREE + 1 :]], dim=0)
    return torch.logsumexp(others, dim=0) - logits[FREE]


def cosine_loss(pred: torch.Tensor, target: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """mean (1 - cos) over seen cells. pred, target [D, Xc, Yc, Zc]; seen [Xc, Yc, Zc]."""
    if not bool(seen.any()):
        return pred.sum() * 0.0
    return (1 - F.cosine_similarity(pred[:, seen], target[:, seen], dim=0)).mean()


class Objective:
    """loss(model, batch) -> (loss, parts) for pretraining and (mixed) fine-tuning alike."""

    def __init__(self, config, class_weights: torch.Tensor | None = None, teacher: torch.nn.Module | None = None):
        self.pre, self.loss_cfg, self.model_cfg = config.pretrain, config.loss, config.model
        self.class_weights, self.teacher = class_weights, teacher
        # the log's columns: "occ" only where lidar-only samples exist
        self.names = (
            ("occ", "feat") if self.pre.enabled else ("ce", "lovasz") + (("occ",) if self.pre.lidar_root else ())
        )

    def __call__(self, model, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["images"], batch["vt_uv"], batch["vt_weights"])
        parts = dict.fromkeys(self.names, 0.0)
        if self.pre.enabled:
            return self._pretrain(out, batch, parts)
        kinds = batch["kind"].tolist()
        total = out.new_zeros(())
        for b, kind in enumerate(kinds):
            if kind == LABELS:
                loss, terms = occupancy_loss(
                    out[b : b + 1].float(), batch["semantics"][b : b + 1], batch["mask"][b : b + 1],
                    self.class_weights, self.loss_cfg.lovasz_weight, self.loss_cfg.lovasz_max_voxels,
                    batch["seed"][b : b + 1].tolist(),
                )  # fmt: skip
                parts["ce"] += terms["ce"] / len(kinds)
                parts["lovasz"] += terms["lovasz"] / len(kinds)
            else:
                logit = semantic_occupancy_logit(out[b].float())
                loss = self.pre.occupancy_weight * binary_occupancy_loss(
                    logit, batch["semantics"][b], batch["mask"][b], self.pre.occupied_weight
                )
                parts["occ"] += float(loss.detach()) / len(kinds)
            total = total + loss
        return total / len(kinds), parts

    def _pretrain(self, out: dict, batch: dict, parts: dict):
        batch_size = out["occupancy"].shape[0]
        total = out["occupancy"].new_zeros(())
        for b in range(batch_size):
            occ = binary_occupancy_loss(
                out["occupancy"][b].float(), batch["semantics"][b], batch["mask"][b], self.pre.occupied_weight
            )
            total = total + self.pre.occupancy_weight * occ
            parts["occ"] += float(occ.detach()) / batch_size
        if self.pre.feature_weight > 0 and self.teacher is not None:
            width, height = self.model_cfg.input_size
            with torch.no_grad():
                images = batch["images"].reshape(-1, height, width, 3)
                target, seen = lift_features(
                    self.teacher(images), batch["vt_uv"].float(), batch["vt_weights"].float(), self.model_cfg.cell_shape
                )
            for b in range(batch_size):
                feat = cosine_loss(out["features"][b].float(), target[b], seen[b])
                total = total + self.pre.feature_weight * feat
                parts["feat"] += float(feat.detach()) / batch_size
        return total / batch_size, parts
