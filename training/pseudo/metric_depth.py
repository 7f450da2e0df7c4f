"""Monocular depth models: Metric3Dv2 (torch.hub from a local clone) and Depth Anything (transformers).

Metric3Dv2 predicts depth for a canonical camera of focal length 1000 px. Its own recipe, done
here: resize the image (aspect kept) to fit the model's input size, pad with the mean colour,
normalise, predict, remove the padding, resize back, and convert canonical to real depth with
depth_m = depth_canonical * f_resized / 1000, where f_resized is fx times the resize scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.pseudo.providers import DepthEstimator, ImageView

CANONICAL_FOCAL_PX = 1000.0
IMAGENET_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
IMAGENET_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


@dataclass(frozen=True)
class CanonicalInput:
    """image: float32 [3, H_in, W_in] normalised; scale: resize factor; pad: (top, bottom, left, right);
    focal_px: fx after resizing; resized_hw: image size after resizing, before padding."""

    image: np.ndarray
    scale: float
    pad: tuple[int, int, int, int]
    focal_px: float
    resized_hw: tuple[int, int]


def canonical_input(image_rgb: np.ndarray, fx: float, input_hw: tuple[int, int]) -> CanonicalInput:
    """Resize uint8 RGB [H, W, 3] to fit `input_hw` (aspect kept), pad with the mean colour, normalise."""
    height, width = image_rgb.shape[:2]
    scale = min(input_hw[0] / height, input_hw[1] / width)
    new_h, new_w = int(round(height * scale)), int(round(width * scale))
    resized = cv2.resize(image_rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    pad_h, pad_w = input_hw[0] - new_h, input_hw[1] - new_w
    pad = (pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2)
    padded = np.empty((*input_hw, 3), np.float32)
    padded[:] = IMAGENET_MEAN
    padded[pad[0] : pad[0] + new_h, pad[2] : pad[2] + new_w] = resized
    normalised = (padded - IMAGENET_MEAN) / IMAGENET_STD
    return CanonicalInput(normalised.transpose(2, 0, 1).copy(), scale, pad, fx * scale, (new_h, new_w))


def canonical_to_metric(depth_canonical: np.ndarray, prepared: CanonicalInput, image_hw: tuple[int, int]) -> np.ndarray:
    """float [H_in, W_in] canonical depth -> float32 [H, W] metres (unpad, resize, * f_resized / 1000)."""
    top, _, left, _ = prepared.pad
    new_h, new_w = prepared.resized_hw
    crop = np.ascontiguousarray(depth_canonical[top : top + new_h, left : left + new_w], dtype=np.float32)
    depth = cv2.resize(crop, (image_hw[1], image_hw[0]), interpolation=cv2.INTER_LINEAR)
    return depth * np.float32(prepared.focal_px / CANONICAL_FOCAL_PX)


class Metric3D(DepthEstimator):
    """Metric3Dv2 from a local clone (`repo_dir` with hubconf.py), weights from `weights` if given
    (else `repo_dir/weights.pth` when present); input size (H, W) of the ViT models by default."""

    name = "metric3d"

    def __init__(
        self, repo_dir, model_name: str = "metric3d_vit_small", weights=None, input_hw=(616, 1064), device=None
    ):
        import torch

        repo_dir = Path(repo_dir)
        if not (repo_dir / "hubconf.py").is_file():
            raise EasyOccError(f"Metric3D repository {repo_dir} has no hubconf.py (clone it locally)")
        try:
            self.model = torch.hub.load(str(repo_dir), model_name, source="local", pretrain=False)
        except (AttributeError, RuntimeError) as exc:
            raise EasyOccError(f"Metric3D: cannot build '{model_name}' from {repo_dir}: {exc}") from None
        weights = Path(weights) if weights else repo_dir / "weights.pth"
        if weights.is_file():
            state = torch.load(weights, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state.get("model_state_dict", state), strict=False)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = self.model.to(self.device).eval()
        self.input_hw = tuple(int(v) for v in input_hw)
        self._options = {"repo": str(repo_dir), "model": model_name, "weights": str(weights), "input_hw": self.input_hw}

    def options(self) -> dict:
        return self._options

    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        import torch

        prepared = canonical_input(image_rgb, float(view.camera.K[0, 0]), self.input_hw)
        with torch.no_grad():
            batch = torch.from_numpy(prepared.image)[None].to(self.device)
            depth, _, _ = self.model.inference({"input": batch})
        depth = depth[0, 0].float().cpu().numpy()
        if depth.shape != self.input_hw:
            raise EasyOccError(f"Metric3D returned depth {depth.shape}, expected the input size {self.input_hw}")
        return canonical_to_metric(depth, prepared, image_rgb.shape[:2])


class DepthAnything(DepthEstimator):
    """Depth Anything (V1/V2) through transformers from a local `save_pretrained` folder.

    Metric checkpoints (config.depth_estimation_type == 'metric') give metres; relative ones give
    disparity up to scale and shift (`relative` is True): wrap them in `AlignedDepth`."""

    name = "depth-anything"

    def __init__(self, folder, device=None):
        import torch
        from transformers import AutoImageProcessor, DepthAnythingForDepthEstimation

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise EasyOccError(f"Depth Anything folder {folder} has no config.json (save_pretrained output expected)")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = (
            DepthAnythingForDepthEstimation.from_pretrained(folder, local_files_only=True).to(self.device).eval()
        )
        self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        self.relative = getattr(self.model.config, "depth_estimation_type", "relative") != "metric"
        self._options = {"folder": str(folder)}

    def options(self) -> dict:
        return self._options

    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        import torch

        inputs = self.processor(images=image_rgb, return_tensors="pt")
        with torch.no_grad():
            predicted = self.model(pixel_values=inputs["pixel_values"].to(self.device)).predicted_depth
        predicted = predicted[0].float().cpu().numpy()
        height, width = image_rgb.shape[:2]
        return np.maximum(cv2.resize(predicted, (width, height), interpolation=cv2.INTER_LINEAR), 0).astype(np.float32)
