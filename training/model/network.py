"""The EasyOcc network: images + view-transform tables -> occupancy logits (docs/CONTRACTS.md).

Normalisation and layout change happen in forward, so training and the exported graph share them.
Only TensorRT-native operators: 2-D convolutions, 4-D GridSample, reshapes, bilinear Resize.
"""

from __future__ import annotations

import torch
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.model.backbone import LightFPN, ResNet
from easyocc.training.model.config import ModelConfig
from easyocc.training.model.heads import build_head
from torch import nn
from torch.nn import functional as F  # noqa: N812 (the torch convention)


def sample_cells(features: torch.Tensor, vt_uv: torch.Tensor, vt_weights: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling of each camera's features at the projected cell centres, summed over cameras.

    features: [B * N_cam, C, Hf, Wf]; vt_uv: [B, N_cam, N_cell, 2] in [-1, 1] (align_corners=False,
    points outside sample zeros); vt_weights: [B, N_cam, N_cell]. Returns [B, C, N_cell].
    """
    batch, cameras, cells, _ = vt_uv.shape
    channels = features.shape[1]
    # A [B*N, 1, N_cell, 2] grid keeps this a 4-D GridSample, which TensorRT runs natively.
    grid = vt_uv.reshape(batch * cameras, 1, cells, 2)
    sampled = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.reshape(batch, cameras, channels, cells) * vt_weights.reshape(batch, cameras, 1, cells)
    return sampled.sum(dim=1)


class EasyOccNet(nn.Module):
    """forward(images uint8 [B, N_cam, H, W, 3], vt_uv [B, N_cam, N_cell, 2], vt_weights [B, N_cam, N_cell])
    -> logits float32 [B, num_classes, X, Y, Z]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.num_cameras = len(config.camera_names)
        self.cell_shape = config.cell_shape
        self.register_buffer("pixel_mean", torch.tensor(config.pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(config.pixel_std).view(1, 3, 1, 1), persistent=False)
        self.backbone = ResNet(config.backbone, config.backbone_width)
        self.neck = LightFPN(self.backbone.out_channels, config.neck_channels)
        # Fewer channels before sampling: the sampled volume is the largest tensor in the network.
        self.reduce = nn.Conv2d(config.neck_channels, config.voxel_channels, 1)
        self.head = build_head(config)

    def check_inputs(self, images: torch.Tensor, vt_uv: torch.Tensor, vt_weights: torch.Tensor) -> None:
        width, height = self.config.input_size
        batch = images.shape[0]
        expected = {
            "images": (images, (batch, self.num_cameras, height, width, 3)),
            "vt_uv": (vt_uv, (batch, self.num_cameras, self.config.num_cells, 2)),
            "vt_weights": (vt_weights, (batch, self.num_cameras, self.config.num_cells)),
        }
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != shape:
                raise EasyOccError(f"model input {name}: expected shape {list(shape)}, got {list(tensor.shape)}")

    def cells(self, images: torch.Tensor, vt_uv: torch.Tensor, vt_weights: torch.Tensor) -> torch.Tensor:
        """The view transform's output [B, voxel_channels, Xc, Yc, Zc] (the pretraining network reads it too)."""
        self.check_inputs(images, vt_uv, vt_weights)
        width, height = self.config.input_size
        x = images.reshape(-1, height, width, 3).permute(0, 3, 1, 2).float()
        x = (x - self.pixel_mean) / self.pixel_std
        features = self.reduce(self.neck(*self.backbone(x)))  # [B * N_cam, C, H / 16, W / 16]
        cells = sample_cells(features, vt_uv.float(), vt_weights.float())  # [B, C, N_cell]
        return cells.reshape(cells.shape[0], cells.shape[1], *self.cell_shape)

    def forward(self, images: torch.Tensor, vt_uv: torch.Tensor, vt_weights: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(images, vt_uv, vt_weights))


def build_model(config: ModelConfig) -> EasyOccNet:
    """A freshly initialised model for `config` (on the CPU, in training mode)."""
    return EasyOccNet(config)
