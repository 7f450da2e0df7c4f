"""Config of OccFeat pretraining and of lidar-occupancy supervision: the `pretrain` and `init`
sections of TrainConfig (training/config.py; one config system)."""

from __future__ import annotations

from dataclasses import dataclass

from easyocc.runtime.contract.config import setting
from easyocc.runtime.contract.errors import EasyOccError


@dataclass(frozen=True)
class PretrainConfig:
    enabled: bool = False
    """Train the pretraining network (class-agnostic occupancy head, plus the feature head when
    feature_weight > 0) on lidar occupancy instead of the semantic model on labels; data.root's key
    frames are then supervised by their lidar, never by their labels."""
    lidar_root: str = ""
    """Another nuScenes-layout dataset with lidar (e.g. a real scene) whose key frames are supervised by
    class-agnostic lidar occupancy only, no labels: in pretraining and beside the labels when fine-tuning."""
    lidar_hold_out: int = setting(10, min=0)
    """The last N key frames of every lidar_root scene are never trained on (no target, no sweep)."""
    lidar_share: float = setting(0.5, min=0.0, max=0.95)
    """Share of the training samples drawn from lidar_root (by repeating its key frames)."""
    past_frames: int = setting(2, min=0)
    """Past key frames whose sweeps (moved by the ego poses, moving objects removed) join each target."""
    targets_dir: str = ""
    """Cache folder of the lidar occupancy targets ('' = out_dir/lidar_targets)."""
    occupancy_weight: float = setting(1.0, min=0.0)
    """Weight of the class-agnostic occupancy loss (binary cross-entropy on known voxels)."""
    occupied_weight: float = setting(2.0, above=0.0)
    """Weight of occupied voxels against free ones in that loss (pos_weight)."""
    feature_weight: float = setting(0.0, min=0.0)
    """Weight of the feature-distillation loss (1 - cosine); 0 = occupancy-only pretraining."""
    teacher: str = ""
    """Frozen image encoder for feature distillation: 'dinov2:DIR' (transformers, local folder) or
    'standin:PATH' (the synthetic-semantics stand-in network, training/pretrain/teachers.py)."""
    label_fraction: float = setting(1.0, above=0.0, max=1.0)
    """Fraction of data.root's training scenes whose labels are used (the first ones; low-data runs)."""


@dataclass(frozen=True)
class InitFrom:
    """`init.from=PATH`: weights to start from (a pretraining or training checkpoint), '' = none.

    A value type rather than a section because `from` is a Python keyword: the config system builds it
    with from_dict and writes it back with to_dict, so YAML and overrides say `init: {from: PATH}`."""

    from_: str = ""

    @classmethod
    def from_dict(cls, data: dict) -> InitFrom:
        unknown = sorted(set(data) - {"from"})
        if unknown:
            raise EasyOccError(f"config init: unknown key(s) {', '.join(unknown)}; known: from")
        value = data.get("from") or ""
        if not isinstance(value, str):
            raise EasyOccError(f"config init.from: expected a path, got {value!r}")
        return cls(value)

    def to_dict(self) -> dict:
        return {"from": self.from_}
