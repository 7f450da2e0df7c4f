"""Training sets with lidar-occupancy samples: the labelled dataset and/or lidar-only datasets, mixed.

Every item is an OccDataset item plus `kind`: LABELS (semantics are classes 0-17 from labels) or
LIDAR (semantics are lidar occupancy targets, training/pretrain/targets.py: 0 occupied, 17 free,
mask = known), so one loader serves pretraining and fine-tuning.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.data import OccDataset
from easyocc.training.pretrain.targets import TargetSpec, build_lidar_targets, held_out_tokens, targets_path

LABELS, LIDAR = 0, 1


class MixedDataset(torch.utils.data.Dataset):
    """Parts (OccDataset, kind, repeats) laid end to end; key = index + epoch * len(self) as OccDataset.

    A part repeated r times appears r times per epoch, each copy with its own augmentation.
    """

    def __init__(self, parts: list[tuple[OccDataset, int, int]]):
        if not parts:
            raise EasyOccError("data: no training samples (no labelled and no lidar part)")
        self.parts = parts
        self._slots = [
            (p, r) for p, (dataset, _, repeats) in enumerate(parts) for r in range(repeats) for _ in dataset.samples
        ]
        self._local = [i for dataset, _, repeats in parts for _ in range(repeats) for i in range(len(dataset))]

    def __len__(self) -> int:
        return len(self._slots)

    def labelled(self) -> OccDataset | None:
        return next((dataset for dataset, kind, _ in self.parts if kind == LABELS), None)

    def __getitem__(self, key: int) -> dict:
        slot, epoch = key % len(self), key // len(self)
        part, copy = self._slots[slot]
        dataset, kind, repeats = self.parts[part]
        index = self._local[slot]
        item = dataset.item(index, dataset.draw_augment(index, epoch * repeats + copy))
        item["seed"] = int(np.random.default_rng([dataset.seed, epoch, slot, 1]).integers(2**31))
        item["kind"] = kind
        return item


def lidar_part(config, data_root, scenes, hold_out_last: int, augment: bool) -> OccDataset:
    """OccDataset over the cached lidar targets of `data_root` (built on first use)."""
    pre = config.pretrain
    cache = pre.targets_dir or str(Path(config.out_dir) / "lidar_targets")
    grid = config.model.grid_spec
    folder = targets_path(cache, data_root, grid, pre.past_frames, hold_out_last)
    build_lidar_targets(TargetSpec(str(data_root), grid.to_dict(), pre.past_frames, hold_out_last), folder, scenes)
    dataset = OccDataset(
        data_root, folder, config.model, scenes, mask="lidar", augment=augment,
        scale_range=config.data.scale_range, flip=config.data.flip, seed=config.seed,
    )  # fmt: skip
    held = held_out_tokens(dataset.data, hold_out_last)
    if any(s.token in held for s in dataset.samples):
        raise EasyOccError(f"lidar targets {folder} hold a held-out key frame; delete the folder and rebuild")
    return dataset


def labelled_scenes(train_scenes: list[str], fraction: float) -> list[str]:
    """The first ceil(fraction * N) training scenes (the low-data runs train on labels of these only)."""
    return list(train_scenes[: max(1, math.ceil(fraction * len(train_scenes) - 1e-9))])


def build_train_set(config, train_scenes: list[str]) -> MixedDataset:
    """The training set of `config`: data.root by labels (or by lidar when pretraining), plus
    pretrain.lidar_root by lidar at the share pretrain.lidar_share."""
    data, pre = config.data, config.pretrain
    parts = []
    if pre.enabled:
        main = lidar_part(config, data.root, train_scenes, 0, data.augment)
        parts.append((main, LIDAR, 1))
    else:
        main = OccDataset(
            data.root, data.labels, config.model, labelled_scenes(train_scenes, pre.label_fraction), mask=data.mask,
            augment=data.augment, scale_range=data.scale_range, flip=data.flip, seed=config.seed,
        )  # fmt: skip
        parts.append((main, LABELS, 1))
    if pre.lidar_root:
        extra = lidar_part(config, pre.lidar_root, None, pre.lidar_hold_out, data.augment)
        # repeats r so that r * n_extra / (r * n_extra + n_main) ~ lidar_share
        wanted = pre.lidar_share / (1 - pre.lidar_share) * len(main) / len(extra)
        parts.append((extra, LIDAR, max(1, round(wanted))))
    return MixedDataset(parts)
