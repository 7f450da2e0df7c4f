"""Checkpoints (weights + ModelConfig, loaded with weights_only=True) and the deployment manifest."""

from __future__ import annotations

from pathlib import Path

import torch
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import atomic_path
from easyocc.runtime.contract.manifest import (
    INPUT_IMAGES,
    INPUT_VT_UV,
    INPUT_VT_WEIGHTS,
    OUTPUT_CONFIDENCE,
    OUTPUT_SEMANTICS,
    Manifest,
    TensorSpec,
    ViewTransformSpec,
)
from easyocc.training.model.config import ModelConfig
from easyocc.training.model.network import EasyOccNet, build_model


def save_checkpoint(path, model: torch.nn.Module, config: ModelConfig, **extra) -> None:
    """Atomically write {"model": state_dict, "config": config dict, **extra} (extra: plain data only)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"model": state, "config": config.to_dict(), **extra}, tmp)


def read_checkpoint(path) -> dict:
    """The raw checkpoint dict, loaded with weights_only=True (no code runs from the file)."""
    path = Path(path)
    if not path.is_file():
        raise EasyOccError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise EasyOccError(f"checkpoint {path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or "model" not in data or "config" not in data:
        raise EasyOccError(f"checkpoint {path}: not an EasyOcc checkpoint (needs 'model' and 'config')")
    return data


def load_checkpoint(path, expected: ModelConfig | None = None) -> tuple[EasyOccNet, ModelConfig]:
    """(model in eval mode on the CPU, its config). Raises naming the differing fields when the
    checkpoint's config differs from `expected`."""
    data = read_checkpoint(path)
    config = ModelConfig.from_dict(data["config"])
    if expected is not None and config != expected:
        raise EasyOccError(
            f"checkpoint {path} was trained for a different model: {'; '.join(config.differences(expected))} "
            "(checkpoint != requested)"
        )
    model = build_model(config)
    try:
        model.load_state_dict(data["model"])
    except RuntimeError as exc:
        raise EasyOccError(f"checkpoint {path}: weights do not fit its own config ({exc})") from None
    return model.eval(), config


def manifest_for(
    config: ModelConfig, training_data: str = "unspecified", model_version: str = "0", model_name: str = ""
) -> Manifest:
    """The deployment manifest of a model: tensor specs of the ONNX contract (batch dimension dropped)."""
    width, height = config.input_size
    cameras = len(config.camera_names)
    grid_shape = tuple(config.grid_spec.shape)
    return Manifest(
        model_name=model_name or f"easyocc-{config.head}-{config.backbone}",
        model_version=model_version,
        grid=config.grid,
        camera_names=tuple(config.camera_names),
        input_size=(width, height),
        view_transform=ViewTransformSpec(config.stride_xy, config.stride_z, config.min_depth_m),
        inputs=(
            TensorSpec(INPUT_IMAGES, "uint8", (cameras, height, width, 3)),
            TensorSpec(INPUT_VT_UV, "float32", (cameras, config.num_cells, 2)),
            TensorSpec(INPUT_VT_WEIGHTS, "float32", (cameras, config.num_cells)),
        ),
        outputs=(
            TensorSpec(OUTPUT_SEMANTICS, "uint8", grid_shape),
            TensorSpec(OUTPUT_CONFIDENCE, "float32", grid_shape),
        ),
        training_data=training_data,
        model_config=config.to_dict(),
    )
