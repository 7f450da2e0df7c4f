"""Occupancy heads on the sampled cell features [B, C, Xc, Yc, Zc] -> logits [B, K, X, Y, Z].

`compact` folds height into channels and runs a 2-D BEV encoder (FlashOcc's channel-to-height), so
TensorRT sees only 2-D convolutions; `paper` is EasyOcc's 3-D CNN. Both upsample from the cell grid
(stride_xy, stride_z) to the voxel grid inside the head.
"""

from __future__ import annotations

import torch
from easyocc.training.model.backbone import BasicBlock, conv_bn_relu
from easyocc.training.model.config import ModelConfig
from torch import nn
from torch.nn import functional as F  # noqa: N812 (the torch convention)


def _res_stage(in_channels: int, channels: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or in_channels != channels:
        downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))
    layers = [BasicBlock(in_channels, channels, stride, downsample)]
    layers += [BasicBlock(channels, channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class CompactHead(nn.Module):
    """BEV encoder at cell resolution (two stages, the second at half resolution), then bilinear
    upsampling to the voxel grid's X, Y and a 1x1 conv to num_classes * Z channels (channel-to-height).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.cell_shape = config.cell_shape
        self.grid_shape = config.grid_spec.shape
        self.num_classes = config.num_classes
        width = config.bev_channels
        head_width = max(width // 2, 16)
        # 1x1 stem and fuse: the 3x3 convolutions of the residual stages do the spatial mixing, and
        # 3x3 convolutions on the wide folded-height input would cost more than the whole encoder.
        self.stem = conv_bn_relu(config.voxel_channels * self.cell_shape[2], width, 1)
        self.stage1 = _res_stage(width, width, config.bev_blocks, 1)
        self.stage2 = _res_stage(width, 2 * width, config.bev_blocks, 2)
        self.fuse = conv_bn_relu(3 * width, width, 1)
        self.reduce = conv_bn_relu(width, head_width, 1)
        self.refine = conv_bn_relu(head_width, head_width, 3)
        self.out_channels = head_width
        self.classifier = nn.Conv2d(head_width, self.num_classes * self.grid_shape[2], 1)

    def features(self, cells: torch.Tensor) -> torch.Tensor:
        """The BEV encoder's output [B, out_channels, X, Y] before the classifier (pretraining heads
        read it too)."""
        xc, yc, zc = self.cell_shape
        x, y, _ = self.grid_shape
        channels = cells.shape[1]
        # [B, C, Xc, Yc, Zc] -> [B, C * Zc, Xc, Yc]: height becomes channels, BEV rows are x.
        bev = cells.permute(0, 1, 4, 2, 3).reshape(-1, channels * zc, xc, yc)
        bev = self.stage1(self.stem(bev))
        # Sizes from the config, not from the tensor: static shapes in the exported graph.
        low = F.interpolate(self.stage2(bev), size=(xc, yc), mode="bilinear", align_corners=False)
        bev = self.reduce(self.fuse(torch.cat([bev, low], dim=1)))
        if (xc, yc) != (x, y):
            bev = F.interpolate(bev, size=(x, y), mode="bilinear", align_corners=False)
        return self.refine(bev)

    def forward(self, cells: torch.Tensor) -> torch.Tensor:
        x, y, z = self.grid_shape
        logits = self.classifier(self.features(cells))  # [B, K * Z, X, Y]
        return logits.reshape(-1, self.num_classes, z, x, y).permute(0, 1, 3, 4, 2)


class _ResBlock3d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)


class PaperHead(nn.Module):
    """EasyOcc's volume head: 3-D residual blocks on the cell grid, a transposed 3-D conv up to the
    voxel grid, and a 1x1x1 classifier."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        width = config.bev_channels
        self.stem = nn.Sequential(
            nn.Conv3d(config.voxel_channels, width, 3, 1, 1, bias=False), nn.BatchNorm3d(width), nn.ReLU(inplace=True)
        )
        self.blocks = nn.Sequential(*[_ResBlock3d(width) for _ in range(config.bev_blocks)])
        stride = (config.stride_xy, config.stride_xy, config.stride_z)
        if stride == (1, 1, 1):
            self.up = nn.Identity()
            up_width = width
        else:
            up_width = max(width // 2, 16)
            self.up = nn.Sequential(
                nn.ConvTranspose3d(width, up_width, stride, stride, bias=False),
                nn.BatchNorm3d(up_width),
                nn.ReLU(inplace=True),
            )
        self.out_channels = up_width
        self.classifier = nn.Conv3d(up_width, config.num_classes, 1)

    def features(self, cells: torch.Tensor) -> torch.Tensor:
        """The volume before the classifier [B, out_channels, X, Y, Z]."""
        return self.up(self.blocks(self.stem(cells)))

    def forward(self, cells: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(cells))


def build_head(config: ModelConfig) -> nn.Module:
    return CompactHead(config) if config.head == "compact" else PaperHead(config)
