"""A small stand-in torch model that follows the model contract (docs/CONTRACTS.md), for export tests.

forward(images uint8 [B, N, H, W, 3], vt_uv [B, N, N_cell, 2], vt_weights [B, N, N_cell]) -> logits
[B, 18, X, Y, Z], with a 4-D GridSample view transform as in the real model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from easyocc.runtime.contract.classes import CLASS_NAMES
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.contract.manifest import Manifest
from torch import nn

from easyocc.testing import contract_manifest

TINY_GRID = GridSpec(lower=(-8.0, -8.0, -1.0), upper=(8.0, 8.0, 2.2), voxel_size=0.8)  # 20 x 20 x 4
TINY_SIZE = (64, 32)  # (width, height)


class StandInModel(nn.Module):
    def __init__(self, cameras: int, size=TINY_SIZE, grid: GridSpec = TINY_GRID, stride_xy: int = 2, stride_z: int = 2):
        super().__init__()
        self.cameras, self.size = cameras, size
        x, y, z = grid.shape
        self.cell_shape = (x // stride_xy, y // stride_xy, z // stride_z)
        self.strides = (stride_xy, stride_xy, stride_z)
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, stride=2, padding=1)
        )
        self.head = nn.Conv3d(16, len(CLASS_NAMES), 1)
        self.register_buffer("mean", torch.tensor([123.7, 116.3, 103.5]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([58.4, 57.1, 57.4]).view(1, 3, 1, 1))

    def forward(self, images, vt_uv, vt_weights):
        batch, cams, cells, _ = vt_uv.shape
        width, height = self.size
        x = images.float().reshape(-1, height, width, 3).permute(0, 3, 1, 2)
        features = self.encoder((x - self.mean) / self.std)
        sampled = F.grid_sample(features, vt_uv.reshape(batch * cams, 1, cells, 2), align_corners=False)
        sampled = sampled.reshape(batch, cams, -1, cells) * vt_weights.reshape(batch, cams, 1, cells)
        volume = sampled.sum(dim=1).reshape(batch, -1, *self.cell_shape)
        logits = self.head(volume)
        return F.interpolate(logits, scale_factor=self.strides, mode="nearest")


def standin_manifest(
    camera_names, size=TINY_SIZE, grid: GridSpec = TINY_GRID, stride_xy: int = 2, stride_z: int = 2
) -> Manifest:
    return contract_manifest(
        camera_names, size, grid, stride_xy, stride_z, model_name="standin", model_version="test",
        training_data="none (stand-in)",
    )  # fmt: skip
