"""ResNet-18/34/50/101 with torchvision parameter names, and a light FPN to one stride-16 map.

Parameter names match torchvision's `resnet*` (conv1, bn1, layer1.0.conv1, ..., downsample.0), so
an ImageNet state dict saved from torchvision loads with `load_pretrained` when backbone_width is 64.
"""

from __future__ import annotations

import torch
from easyocc.runtime.contract.errors import EasyOccError
from torch import nn

# blocks per stage and block type, as torchvision
_LAYOUTS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        # stride on the 3x3 conv ("ResNet v1.5"), as torchvision
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """ResNet trunk without the classifier. forward(x [B, 3, H, W]) -> (stride-16 map, stride-32 map)."""

    def __init__(self, name: str, width: int = 64):
        super().__init__()
        if name not in _LAYOUTS:
            raise EasyOccError(f"unknown backbone '{name}' ({', '.join(_LAYOUTS)})")
        kind, depths = _LAYOUTS[name]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self._in = width
        self.layer1 = self._stage(block, width, depths[0], 1)
        self.layer2 = self._stage(block, width * 2, depths[1], 2)
        self.layer3 = self._stage(block, width * 4, depths[2], 2)
        self.layer4 = self._stage(block, width * 8, depths[3], 2)
        self.out_channels = (width * 4 * block.expansion, width * 8 * block.expansion)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        # Zero-init the last BN of each block so every residual block starts as identity: stabler
        # from-scratch training with small batches.
        for module in self.modules():
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)
            elif isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def _stage(self, block, channels: int, depth: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._in != channels * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._in, channels * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(channels * block.expansion),
            )
        layers = [block(self._in, channels, stride, downsample)]
        self._in = channels * block.expansion
        layers += [block(self._in, channels) for _ in range(depth - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c3 = self.layer3(self.layer2(self.layer1(x)))
        return c3, self.layer4(c3)


def load_pretrained(backbone: ResNet, path) -> None:
    """Load a torchvision ImageNet state dict (file saved with torch.save) into `backbone`.

    The classifier (`fc.*`) is ignored; any other missing, unexpected or mis-shaped tensor raises.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise EasyOccError(f"pretrained backbone {path}: unreadable ({exc})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("fc.")}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mis_shaped = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or mis_shaped:
        raise EasyOccError(
            f"pretrained backbone {path} does not fit: {len(missing)} missing (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}), {len(mis_shaped)} mis-shaped (e.g. {mis_shaped[:2]})"
        )
    backbone.load_state_dict(state)


class LightFPN(nn.Module):
    """Stride-32 map upsampled onto the stride-16 map (1x1 laterals, sum, one 3x3 conv)."""

    def __init__(self, in_channels: tuple[int, int], out_channels: int):
        super().__init__()
        self.lateral16 = nn.Conv2d(in_channels[0], out_channels, 1)
        self.lateral32 = nn.Conv2d(in_channels[1], out_channels, 1)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = conv_bn_relu(out_channels, out_channels, 3)

    def forward(self, c16: torch.Tensor, c32: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.lateral16(c16) + self.upsample(self.lateral32(c32)))
