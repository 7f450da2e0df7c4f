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


def load_checkpoint(path, expected: ModelConfig | None = None, check=None) -> tuple[EasyOccNet, ModelConfig]:
    """(model in eval mode on the CPU, its config). Raises naming the differing fields when the
    checkpoint's config differs from `expected`; `check(config)`, when given, may refuse the config
    (e.g. its grid against the labels) before any weight is loaded."""
    data = read_checkpoint(path)
    config = ModelConfig.from_dict(data["config"])
    if check is not None:
        check(config)
    if expected is not None and config != expected:
        differences = config.differences(expected)
        more = f" and {len(differences) - 3} more" if len(differences) > 3 else ""
        raise EasyOccError(
            f"checkpoint {path} was trained for a different model: {'; '.join(differences[:3])}{more} "
            "(checkpoint != requested)"
        )
    model = build_model(config)
    check_weights(path, model.state_dict(), data["model"])
    model.load_state_dict(data["model"])
    return model.eval(), config


def check_weights(path, wanted: dict, stored) -> None:
    """Refuse, in one line of at most ~300 characters (counts and the first names), weights that do
    not fit the model their config builds: missing or unexpected tensors, or other shapes."""
    if not isinstance(stored, dict):
        raise EasyOccError(f"checkpoint {path}: 'model' is {type(stored).__name__}, expected a state dict")
    missing = [k for k in wanted if k not in stored]
    unexpected = [k for k in stored if k not in wanted]
    shapes = [
        f"{k} {list(stored[k].shape)} vs {list(v.shape)}"
        for k, v in wanted.items()
        if k in stored and tuple(getattr(stored[k], "shape", ())) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return

    def first(names, n=2):
        return ", ".join(names[:n]) + (", ..." if len(names) > n else "")

    parts = [
        f"{len(items)} {what} ({first(items)})"
        for what, items in (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes))
        if items
    ]
    message = f"checkpoint {path}: weights do not fit its own config: {'; '.join(parts)}"
    raise EasyOccError(message if len(message) <= 300 else message[:297] + "...")


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
