"""Frozen feature teachers for OccFeat's feature distillation: `teacher(images uint8 [N, H, W, 3])
-> float [N, D, h, w]` per-pixel (per-patch) features, any h, w.

- `dinov2:DIR`: a DINOv2 (transformers `Dinov2Model`) from a local folder; no hub access.
- `standin:PATH`: an honest stand-in where no DINOv2 weights exist: a small CNN trained separately on
  the synthetic world's 2-D semantics (`train_standin`), frozen; its features are the layer before its
  classifier. It has seen labels of the synthetic world, which DINOv2 has not: every table names it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from easyocc.runtime.contract.classes import NUM_CLASSES
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.model.backbone import conv_bn_relu
from easyocc.training.model.checkpoint import read_checkpoint
from torch import nn
from torch.nn import functional as F  # noqa: N812 (the torch convention)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Normalise(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images.permute(0, 3, 1, 2).float() - self.mean) / self.std


class Dinov2Teacher(nn.Module):
    """DINOv2 patch features [N, hidden, H'/p, W'/p]; images resized to multiples of the patch size p."""

    def __init__(self, folder):
        super().__init__()
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise EasyOccError(f"teacher dinov2:{folder}: no config.json there (a local transformers folder)")
        try:
            from transformers import Dinov2Model
        except ImportError:
            raise EasyOccError("teacher dinov2 needs transformers (pip install 'easyocc[pseudo]')") from None
        self.model = Dinov2Model.from_pretrained(str(folder), local_files_only=True).eval()
        self.patch = int(self.model.config.patch_size)
        self.dim = int(self.model.config.hidden_size)
        self.normalise = _Normalise()
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.normalise(images)
        height, width = (max(self.patch, round(s / self.patch) * self.patch) for s in x.shape[2:])
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        tokens = self.model(pixel_values=x).last_hidden_state[:, 1:]  # drop CLS
        rows, cols = height // self.patch, width // self.patch
        return tokens.reshape(-1, rows, cols, self.dim).permute(0, 3, 1, 2)


class StandinNet(nn.Module):
    """Stride-8 CNN: features [N, dim, H/8, W/8] and a per-pixel classifier for its own training."""

    def __init__(self, dim: int = 64):
        super().__init__()
        self.dim = dim
        self.normalise = _Normalise()
        self.encoder = nn.Sequential(
            conv_bn_relu(3, 32, 3, 2), conv_bn_relu(32, 32, 3), conv_bn_relu(32, 64, 3, 2),
            conv_bn_relu(64, 64, 3), conv_bn_relu(64, dim, 3, 2), conv_bn_relu(dim, dim, 3),
        )  # fmt: skip
        self.classifier = nn.Conv2d(dim, NUM_CLASSES, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.normalise(images))


class StandinTeacher(nn.Module):
    def __init__(self, path):
        super().__init__()
        state = read_checkpoint(path)
        if state["config"].get("kind") != "standin":
            raise EasyOccError(f"teacher standin:{path}: not a stand-in teacher checkpoint")
        self.net = StandinNet(int(state["config"]["dim"]))
        self.net.load_state_dict(state["model"])
        self.net.eval().requires_grad_(False)
        self.dim = self.net.dim

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def load_teacher(spec: str) -> nn.Module:
    """'dinov2:DIR' or 'standin:PATH' -> a frozen teacher with `.dim`."""
    kind, sep, where = spec.partition(":")
    if not sep or not where:
        raise EasyOccError(f"pretrain.teacher '{spec}' must be dinov2:DIR or standin:PATH")
    if kind == "dinov2":
        return Dinov2Teacher(where)
    if kind == "standin":
        return StandinTeacher(where)
    raise EasyOccError(f"pretrain.teacher: unknown kind '{kind}' (dinov2 or standin)")


def train_standin(
    data_root, scenes, out_path, input_size=(352, 128), steps: int = 300, dim: int = 64, seed: int = 0, lr=3e-3
) -> dict:
    """Train the stand-in on the synthetic world's per-image semantics (`semantic/<CHANNEL>/*.png`) of
    `scenes`; saves {"model", "config": {"kind": "standin", "dim", "input_size", "scenes"}} to out_path.
    Returns {"steps", "loss", "pixel_accuracy", "seconds"} (accuracy on the last 20 steps' batches)."""
    import cv2
    from easyocc.runtime.contract.preprocess import read_image, resize_to_network
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset, aux_path
    from easyocc.training.model.checkpoint import save_checkpoint

    dataset = NuScenesDataset(data_root)
    views = [frame.path for s in dataset.samples() if s.scene_name in set(scenes) for frame in s.cameras.values()]
    if not views:
        raise EasyOccError(f"stand-in teacher: no camera image in scenes {list(scenes)[:3]} of {data_root}")
    width, height = input_size
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = StandinNet(dim)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    start, history, correct = time.time(), [], []
    for step in range(steps):
        images, labels = [], []
        for path in rng.choice(views, 6):
            images.append(resize_to_network(read_image(path), (width, height)))
            semantic = cv2.imread(str(aux_path(data_root, path, "semantic")), cv2.IMREAD_UNCHANGED)
            if semantic is None:
                raise EasyOccError(f"stand-in teacher: no 2-D semantics for {path} (a synthetic-world dataset?)")
            labels.append(cv2.resize(semantic, (width // 8, height // 8), interpolation=cv2.INTER_NEAREST))
        images_t = torch.from_numpy(np.stack(images))
        labels_t = torch.from_numpy(np.stack(labels).astype(np.int64))
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / steps))
        logits = net.classifier(net(images_t))
        loss = F.cross_entropy(logits, labels_t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
        if step >= steps - 20:
            correct.append(float((logits.argmax(1) == labels_t).float().mean()))
    config = {"kind": "standin", "dim": dim, "input_size": [width, height], "scenes": list(scenes)}
    save_checkpoint(out_path, net, _NoConfig(config), train_steps=steps)
    return {"steps": steps, "loss": float(np.mean(history[-20:])), "pixel_accuracy": float(np.mean(correct)),
            "seconds": round(time.time() - start, 1)}  # fmt: skip


class _NoConfig:
    """save_checkpoint stores config.to_dict(); the stand-in's config is a plain dict."""

    def __init__(self, data: dict):
        self.data = data

    def to_dict(self) -> dict:
        return self.data
