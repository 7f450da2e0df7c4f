"""The EasyOcc model: config, network (backbone, FPN, view transform, heads), checkpoints, manifest."""

from easyocc.training.model.checkpoint import load_checkpoint, manifest_for, read_checkpoint, save_checkpoint
from easyocc.training.model.config import BACKBONES, HEADS, ModelConfig
from easyocc.training.model.network import EasyOccNet, build_model, sample_cells

__all__ = [
    "BACKBONES",
    "HEADS",
    "EasyOccNet",
    "ModelConfig",
    "build_model",
    "load_checkpoint",
    "manifest_for",
    "read_checkpoint",
    "sample_cells",
    "save_checkpoint",
]
