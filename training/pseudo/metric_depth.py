"""Monocular depth models: Metric3Dv2 (torch.hub from a local clone; ViT-S/L/giant2) and Depth Anything
(transformers; relative or metric, read from the checkpoint's own config).

Weights load strictly (`load_state_strict`): a checkpoint that does not fit the model is refused with
one line naming how many keys are missing and unexpected and the first few, after the usual wrappers
('model_state_dict', 'state_dict') and prefixes ('module.' from DataParallel/DDP) are undone. Images
go through the models in batches (`estimate_batch`), under autocast (float16) on a GPU, on
`cuda:LOCAL_RANK` under torchrun (`default_device`).

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
METRIC3D_VARIANTS = {
    "vit-small": "metric3d_vit_small",
    "vit-large": "metric3d_vit_large",
    "vit-giant2": "metric3d_vit_giant2",
}
"""`--depth metric3d` (ViT-Small) or metric3d-<variant> -> the hub entry point of Metric3D's hubconf.py."""
METRIC3D_EXTRA = "pip install 'easyocc[metric3d]'"

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


def default_device(environ=None, cuda_available: bool | None = None) -> str:
    """'cuda:<LOCAL_RANK>' (0 outside torchrun) when CUDA is available, else 'cpu'."""
    import os

    environ = os.environ if environ is None else environ
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    return f"cuda:{int(environ.get('LOCAL_RANK', '0'))}" if cuda_available else "cpu"


def load_state_strict(model, state: dict, what: str) -> None:
    """Load `state` into `model` (torch.nn.Module), refusing any mismatch with one line.

    Unwraps {'model_state_dict': ...} / {'state_dict': ...} and strips a 'module.' prefix (saved from
    DataParallel or DDP) when the model's own keys do not have it."""
    for wrapper in ("model_state_dict", "state_dict", "model"):
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    expected = set(model.state_dict())
    if not any(k.startswith("module.") for k in expected) and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise EasyOccError(
            f"{what}: weights do not fit the model: {len(missing)} missing ({', '.join(missing[:3]) or '-'}), "
            f"{len(unexpected)} unexpected ({', '.join(unexpected[:3]) or '-'})"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # same keys, other shapes
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise EasyOccError(f"{what}: weights do not fit the model: {first}") from None


def _autocast(device: str):
    import contextlib

    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


class Metric3D(DepthEstimator):
    """Metric3Dv2 from a local clone (`repo_dir` with hubconf.py): `variant` vit-small, vit-large or
    vit-giant2; weights from `weights`, else `repo_dir/<hub entry>.pth`, else `repo_dir/weights.pth`
    (loaded strictly); input size (H, W) of the ViT models by default."""

    def __init__(
        self, repo_dir, variant: str = "vit-small", weights=None, input_hw=(616, 1064), device=None, batch: int = 6
    ):
        import torch

        if variant not in METRIC3D_VARIANTS:
            raise EasyOccError(f"unknown Metric3D variant '{variant}'; known: {', '.join(METRIC3D_VARIANTS)}")
        self.name = "metric3d" if variant == "vit-small" else f"metric3d-{variant}"
        entry = METRIC3D_VARIANTS[variant]
        repo_dir = Path(repo_dir)
        if not (repo_dir / "hubconf.py").is_file():
            raise EasyOccError(f"Metric3D repository {repo_dir} has no hubconf.py (clone it locally)")
        try:
            self.model = torch.hub.load(str(repo_dir), entry, source="local", pretrain=False)
        except ModuleNotFoundError as exc:
            raise EasyOccError(
                f"Metric3D needs the Python package '{exc.name}', not installed ({METRIC3D_EXTRA})"
            ) from None
        except (AttributeError, RuntimeError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EasyOccError(f"Metric3D: cannot build '{entry}' from {repo_dir}: {text}") from None
        if weights is None:
            weights = next((p for p in (repo_dir / f"{entry}.pth", repo_dir / "weights.pth") if p.is_file()), None)
        if weights is not None:
            weights = Path(weights)
            if not weights.is_file():
                raise EasyOccError(f"Metric3D weights not found: {weights}")
            load_state_strict(
                self.model, torch.load(weights, map_location="cpu", weights_only=True), f"Metric3D {weights}"
            )
        self.device = device or default_device()
        self.model = self.model.to(self.device).eval()
        self.input_hw = tuple(int(v) for v in input_hw)
        self.batch = int(batch)
        self._options = {"repo": str(repo_dir), "model": entry, "weights": str(weights), "input_hw": self.input_hw}

    def options(self) -> dict:
        return self._options

    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        return self.estimate_batch([image_rgb], [view])[0]

    def estimate_batch(self, images_rgb: list[np.ndarray], views: list[ImageView]) -> list[np.ndarray]:
        """Depth maps of several images, `batch` per forward pass (each with its own focal length)."""
        import torch

        out = []
        for first in range(0, len(images_rgb), self.batch):
            images, chunk = images_rgb[first : first + self.batch], views[first : first + self.batch]
            prepared = [canonical_input(im, float(v.camera.K[0, 0]), self.input_hw) for im, v in zip(images, chunk)]
            with torch.no_grad(), _autocast(self.device):
                batch = torch.from_numpy(np.stack([p.image for p in prepared])).to(self.device)
                depth, _, _ = self.model.inference({"input": batch})
            depth = depth[:, 0].float().cpu().numpy()
            if depth.shape[1:] != self.input_hw:
                raise EasyOccError(
                    f"Metric3D returned depth {depth.shape[1:]}, expected the input size {self.input_hw}"
                )
            out += [canonical_to_metric(d, p, im.shape[:2]) for d, p, im in zip(depth, prepared, images)]
        return out


class DepthAnything(DepthEstimator):
    """Depth Anything (V1/V2) through transformers from a local `save_pretrained` folder.

    The checkpoint's own config tells the kind: depth_estimation_type 'metric' gives metres;
    'relative' (the default of the released V1/V2 checkpoints) gives disparity up to scale and shift
    (`relative` True): `build_depth` refuses it unless wrapped as aligned-depth-anything."""

    name = "depth-anything"

    def __init__(self, folder, device=None, batch: int = 6):
        from transformers import AutoImageProcessor, DepthAnythingForDepthEstimation

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise EasyOccError(f"Depth Anything folder {folder} has no config.json (save_pretrained output expected)")
        self.device = device or default_device()
        model, info = DepthAnythingForDepthEstimation.from_pretrained(
            folder, local_files_only=True, output_loading_info=True
        )
        missing, unexpected = sorted(info.get("missing_keys", [])), sorted(info.get("unexpected_keys", []))
        if missing or unexpected:
            raise EasyOccError(
                f"Depth Anything {folder}: weights do not fit the model: {len(missing)} missing "
                f"({', '.join(missing[:3]) or '-'}), {len(unexpected)} unexpected ({', '.join(unexpected[:3]) or '-'})"
            )
        self.model = model.to(self.device).eval()
        self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        kind = getattr(self.model.config, "depth_estimation_type", "relative") or "relative"
        self.relative = kind != "metric"
        self.batch = int(batch)
        self._options = {"folder": str(folder), "kind": kind}

    def options(self) -> dict:
        return self._options

    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        return self.estimate_batch([image_rgb], [view])[0]

    def estimate_batch(self, images_rgb: list[np.ndarray], views: list[ImageView]) -> list[np.ndarray]:
        """Metres (metric) or disparity (relative) of several images, `batch` per forward pass."""
        import torch

        out = []
        for first in range(0, len(images_rgb), self.batch):
            images = images_rgb[first : first + self.batch]
            inputs = self.processor(images=images, return_tensors="pt")
            with torch.no_grad(), _autocast(self.device):
                predicted = self.model(pixel_values=inputs["pixel_values"].to(self.device)).predicted_depth
            for depth, image in zip(predicted.float().cpu().numpy(), images):
                height, width = image.shape[:2]
                resized = cv2.resize(depth, (width, height), interpolation=cv2.INTER_LINEAR)
                out.append(np.maximum(resized, 0).astype(np.float32))
        return out
