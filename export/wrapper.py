"""The deploy wrapper: the torch model behind the deployed model's contract (docs/CONTRACTS.md).

in:  images uint8 [N_cam, H, W, 3] RGB, vt_uv float32 [N_cam, N_cell, 2], vt_weights float32 [N_cam, N_cell]
out: semantics uint8 [X, Y, Z], confidence float32 [X, Y, Z] (softmax probability of the chosen class)

Normalisation and layout change are the model's own (inside its forward); this wrapper adds the batch
axis and the argmax. The argmax is written without ONNX ArgMax: ArgMax yields INT64 indices, which
TensorRT 8.x narrows silently and which would put an INT64 tensor on the output path. Instead the
class index is the smallest class id whose logit equals the maximum (exactly what argmax returns,
ties included), computed in float and cast once to UINT8 as the graph's last node, the only place
TensorRT accepts a UINT8 tensor.
"""

from __future__ import annotations

import torch
from easyocc.runtime.contract.errors import EasyOccError
from torch import nn


class DeployWrapper(nn.Module):
    """Wraps a model whose forward(images [B,N,H,W,3] u8, vt_uv [B,N,C,2], vt_weights [B,N,C]) -> logits
    [B, K, X, Y, Z] into the unbatched deployed-model contract above."""

    def __init__(self, model: nn.Module, num_classes: int):
        super().__init__()
        if num_classes > 255:
            raise EasyOccError(f"{num_classes} classes do not fit the uint8 semantics output")
        self.model = model
        self.num_classes = int(num_classes)
        # [K, 1, 1, 1] float class ids, broadcast over the grid.
        self.register_buffer("class_ids", torch.arange(num_classes, dtype=torch.float32).view(-1, 1, 1, 1))

    def forward(self, images: torch.Tensor, vt_uv: torch.Tensor, vt_weights: torch.Tensor):
        # Cast first: TensorRT accepts a UINT8 tensor only as a network input feeding a Cast, so no
        # reshape or unsqueeze may touch the uint8 images (the model's own .float() becomes a no-op).
        images = images.float().unsqueeze(0)
        logits = self.model(images, vt_uv.unsqueeze(0), vt_weights.unsqueeze(0))[0]
        return semantics_and_confidence(logits.float(), self.class_ids)


def semantics_and_confidence(logits: torch.Tensor, class_ids: torch.Tensor):
    """logits float [K, X, Y, Z] -> (semantics uint8 [X, Y, Z], confidence float32 [X, Y, Z]).

    confidence = softmax(logits)[argmax] = 1 / sum_k exp(logit_k - max_logit), with no [K, X, Y, Z]
    probability tensor materialised beyond the exp.
    """
    top = torch.amax(logits, dim=0, keepdim=True)
    confidence = 1.0 / torch.sum(torch.exp(logits - top), dim=0)
    is_top = logits >= top
    fallback = torch.full_like(class_ids, float(class_ids.shape[0]))
    index = torch.amin(torch.where(is_top, class_ids, fallback), dim=0)
    return index.to(torch.uint8), confidence


class HalfTables(nn.Module):
    """The deploy wrapper with its float inputs (the view-transform tables) rounded through float16 first,
    as an FP16 engine receives them (for the FP16 emulation of `easyocc.export.fp16_check`)."""

    def __init__(self, wrapper: nn.Module):
        super().__init__()
        self.inner = wrapper

    def forward(self, images: torch.Tensor, vt_uv: torch.Tensor, vt_weights: torch.Tensor):
        return self.inner(images, vt_uv.half().float(), vt_weights.half().float())
