"""The pretraining network (the student's trunk with two pretraining-only heads) and `init.from`.

PretrainNet IS the student EasyOccNet (same backbone, FPN, view transform and BEV encoder, same
parameter names) without its semantic classifier, plus
- `occupancy_head`: class-agnostic occupancy logits [B, X, Y, Z] from the BEV encoder's output;
- `feature_head` (when feature_dim > 0): teacher-feature regression [B, D, Xc, Yc, Zc] on the
  view-transform cells (OccFeat's feature distillation target lives on the same cells).
Its checkpoint therefore loads into a fresh EasyOccNet by name (`load_init`); only the classifier
starts from scratch.
"""

from __future__ import annotations

import torch
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.model.backbone import conv_bn_relu
from easyocc.training.model.checkpoint import read_checkpoint
from easyocc.training.model.config import ModelConfig
from easyocc.training.model.network import EasyOccNet
from torch import nn
from torch.nn import functional as F  # noqa: N812 (the torch convention)

PRETRAIN_HEADS = ("occupancy_head.", "feature_head.")
TASK_LAYERS = ("head.classifier.",)  # trained per task; never taken from a pretraining checkpoint


class PretrainNet(EasyOccNet):
    """forward(images, vt_uv, vt_weights) -> {"occupancy": [B, X, Y, Z] logits,
    "features": [B, D, Xc, Yc, Zc] (only when feature_dim > 0)}."""

    def __init__(self, config: ModelConfig, feature_dim: int = 0):
        super().__init__(config)
        del self.head.classifier
        self.feature_dim = int(feature_dim)
        width = self.head.out_channels
        x, y, z = config.grid_spec.shape
        xc, yc, zc = config.cell_shape
        self.compact = config.head == "compact"
        if self.compact:  # 2-D BEV features [B, C, X, Y]: height from channels, as the classifier does
            self.occupancy_head = nn.Conv2d(width, z, 1)
            out = self.feature_dim * zc
            self.feature_head = nn.Sequential(conv_bn_relu(width, width, 1), nn.Conv2d(width, out, 1)) if out else None
        else:  # 3-D volume [B, C, X, Y, Z]
            self.occupancy_head = nn.Conv3d(width, 1, 1)
            self.feature_head = (
                nn.Sequential(nn.Conv3d(width, width, 1), nn.ReLU(inplace=True), nn.Conv3d(width, self.feature_dim, 1))
                if self.feature_dim
                else None
            )
        self.pool = (x // xc, y // yc, z // zc)

    def forward(self, images: torch.Tensor, vt_uv: torch.Tensor, vt_weights: torch.Tensor) -> dict:
        features = self.head.features(self.cells(images, vt_uv, vt_weights))
        xc, yc, zc = self.cell_shape
        if self.compact:
            occupancy = self.occupancy_head(features).permute(0, 2, 3, 1)  # [B, Z, X, Y] -> [B, X, Y, Z]
        else:
            occupancy = self.occupancy_head(features)[:, 0]
        out = {"occupancy": occupancy}
        if self.feature_head is not None:
            if self.compact:
                pooled = F.avg_pool2d(features, self.pool[:2])  # [B, C, Xc, Yc]
                pred = self.feature_head(pooled).reshape(-1, self.feature_dim, zc, xc, yc).permute(0, 1, 3, 4, 2)
            else:
                pred = self.feature_head(F.avg_pool3d(features, self.pool))
            out["features"] = pred
        return out


def load_init(model: nn.Module, path) -> list[str]:
    """Load the trunk of checkpoint `path` into `model` by parameter name; returns the names left as
    initialised (the task layers absent from a pretraining checkpoint).

    Pretraining heads in the checkpoint are skipped. Raises one line naming the layers that do not
    fit: mis-shaped tensors, or trunk tensors of `model` that the checkpoint lacks.
    """
    state = read_checkpoint(path)["model"]
    own = model.state_dict()
    source = {k: v for k, v in state.items() if not k.startswith(PRETRAIN_HEADS) or k in own}
    mis_shaped = sorted(k for k in own if k in source and tuple(source[k].shape) != tuple(own[k].shape))
    missing = sorted(k for k in own if k not in source and not k.startswith(TASK_LAYERS + PRETRAIN_HEADS))
    if mis_shaped or missing:
        parts = [f"{k} {list(source[k].shape)} != {list(own[k].shape)}" for k in mis_shaped[:3]]
        parts += [f"{k} missing" for k in missing[:3]]
        more = len(mis_shaped) + len(missing) - len(parts)
        raise EasyOccError(
            f"init.from {path}: {len(mis_shaped)} mis-shaped and {len(missing)} missing layer(s): "
            f"{'; '.join(parts)}{f' (+{more} more)' if more > 0 else ''}"
        )
    loaded = {k: source[k] for k in own if k in source}
    model.load_state_dict({**own, **loaded})
    return sorted(set(own) - set(loaded))


def build_training_model(config) -> tuple[nn.Module, nn.Module | None]:
    """(model, frozen teacher or None) for a TrainConfig: PretrainNet when pretraining, else the
    EasyOccNet; init.from applied to either."""
    from easyocc.training.model.network import build_model
    from easyocc.training.pretrain.teachers import load_teacher

    pre, teacher = config.pretrain, None
    if pre.enabled and pre.feature_weight > 0:
        if not pre.teacher:
            raise EasyOccError("pretrain.feature_weight > 0 needs pretrain.teacher (dinov2:DIR or standin:PATH)")
        teacher = load_teacher(pre.teacher)
    model = PretrainNet(config.model, teacher.dim if teacher else 0) if pre.enabled else build_model(config.model)
    if config.init.from_:
        load_init(model, config.init.from_)
    return model, teacher
