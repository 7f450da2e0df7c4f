"""Provider interfaces: a `Segmenter` (RGB -> per-pixel Occ3D class and score) and a `DepthEstimator`
(RGB + intrinsics -> metric z-depth), the `ImageView` they receive, output checks and the registry.

Providers see one camera image at a time. `ImageView` also carries the dataset and sample so that
providers which read other sources (lidar, boxes, the synthetic world's ground truth, adjacent key
frames) can find them; the foundation-model adapters use only the image and `camera.K`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from easyocc.calibration import Camera
from easyocc.runtime.contract.classes import FREE, NUM_CLASSES
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.nuscenes import NuScenesDataset, Sample, SensorFrame


@dataclass(frozen=True)
class ImageView:
    """One camera image of one key frame. `camera` has the stored image size and `K` in pixels."""

    dataset: NuScenesDataset
    sample: Sample
    channel: str
    frame: SensorFrame
    camera: Camera
    segmentation: Segmentation | None = None
    """This image's segmentation when the depth estimator runs after the segmenter (the alignment's
    ground cue reads it)."""

    @property
    def path(self):
        return self.frame.path

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image in pixels."""
        return self.camera.height, self.camera.width


@dataclass(frozen=True)
class Segmentation:
    """classes: uint8 [H, W] Occ3D ids 0-16, 17 (free) = sky; score: float32 [H, W] in [0, 1]."""

    classes: np.ndarray
    score: np.ndarray


class Provider(ABC):  # noqa: B024 - shared base of the two abstract provider kinds
    """Common part of both provider kinds: a name and the options that change its output."""

    name: str = "provider"

    def options(self) -> dict:
        """Options that change the output; they enter the cache key."""
        return {}

    def cache_key(self) -> str:
        """Folder name of this provider's cached outputs: name plus a hash of its options."""
        blob = json.dumps(self.options(), sort_keys=True, default=str).encode()
        return f"{self.name}-{hashlib.sha1(blob).hexdigest()[:8]}"


class Segmenter(Provider):
    @abstractmethod
    def segment(self, image_rgb: np.ndarray, view: ImageView) -> Segmentation:
        """image_rgb: uint8 [H, W, 3] -> Segmentation of the same H, W."""


class DepthEstimator(Provider):
    @abstractmethod
    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        """image_rgb: uint8 [H, W, 3] -> float32 [H, W] camera z-depth in metres, 0 = no estimate."""

    def estimate_batch(self, images_rgb: list[np.ndarray], views: list[ImageView]) -> list[np.ndarray]:
        """Several images at once (models override this to batch their forward passes)."""
        return [self.estimate(image, view) for image, view in zip(images_rgb, views)]


def check_segmentation(result, view: ImageView, provider: str) -> Segmentation:
    """Validate a segmenter's output against the image it was given; returns a normalised copy."""
    if not isinstance(result, Segmentation):
        raise EasyOccError(f"segmenter {provider} returned {type(result).__name__} for {view.path}, not Segmentation")
    if result.classes.shape != view.shape or result.score.shape != view.shape:
        raise EasyOccError(
            f"segmenter {provider}: output shape {result.classes.shape} for {view.path.name}, image is {view.shape}"
        )
    classes = np.asarray(result.classes)
    if classes.size and int(classes.max()) >= NUM_CLASSES:
        raise EasyOccError(f"segmenter {provider}: class id {int(classes.max())} >= {NUM_CLASSES} in {view.path.name}")
    return Segmentation(classes.astype(np.uint8), np.clip(np.nan_to_num(result.score), 0, 1).astype(np.float32))


def check_depth(depth_m, view: ImageView, provider: str) -> np.ndarray:
    """Validate a depth map: shape (H, W) of the image; NaN, inf and negatives become 0 (no estimate)."""
    depth_m = np.asarray(depth_m)
    if depth_m.shape != view.shape:
        raise EasyOccError(
            f"depth {provider}: depth map shape {depth_m.shape} for {view.path.name}, image is {view.shape}"
        )
    depth_m = depth_m.astype(np.float32)
    depth_m[~np.isfinite(depth_m) | (depth_m < 0)] = 0
    return depth_m


SKY = FREE

SEGMENTERS = ("ground-truth", "simulated-low", "simulated-high", "boxes", "grounded-sam")
DEPTHS = (
    "ground-truth",
    "simulated-low",
    "simulated-high",
    "lidar",
    "metric3d",
    "metric3d-vit-large",
    "metric3d-vit-giant2",
    "depth-anything",
)
RELATIVE_DEPTHS = ("simulated-relative-low", "simulated-relative-high", "lidar-relative")
"""Relative (disparity) stand-ins: only usable as aligned-<name>."""


def build_segmenter(name: str, models_dir=None, vocabulary=None, seed: int = 0) -> Segmenter:
    """A segmenter by CLI name (see SEGMENTERS)."""
    if name in ("ground-truth", "simulated-low", "simulated-high"):
        from easyocc.training.pseudo.simulated import SimulatedSegmenter

        return SimulatedSegmenter(noise=name.split("-")[-1] if name != "ground-truth" else "none", seed=seed)
    if name == "boxes":
        from easyocc.training.pseudo.lidar_boxes import BoxSegmenter

        return BoxSegmenter()
    if name == "grounded-sam":
        from easyocc.training.pseudo.grounded_sam import GroundedSam

        return GroundedSam.from_folders(
            _model_folder(models_dir, "grounding-dino"), _model_folder(models_dir, "sam"), vocabulary
        )
    raise EasyOccError(f"unknown segmenter '{name}'; known: {', '.join(SEGMENTERS)}")


def build_depth(name: str, models_dir=None, seed: int = 0, anchor: str = "none") -> DepthEstimator:
    """A depth estimator by CLI name (see DEPTHS, RELATIVE_DEPTHS); 'aligned-<name>' wraps one in the
    metric alignment (align.py; `anchor` 'none' or 'lidar'). A relative model without 'aligned-' is
    refused: its output is disparity up to scale and shift, not metres."""
    if name.startswith("aligned-"):
        from easyocc.training.pseudo.align import AlignedDepth

        return AlignedDepth(_build_base(name[len("aligned-") :], models_dir, seed), anchor)
    depth = _build_base(name, models_dir, seed)
    if getattr(depth, "relative", False):
        raise EasyOccError(
            f"depth '{name}' is relative (disparity up to scale and shift, not metres); use --depth aligned-{name}"
        )
    return depth


def _build_base(name: str, models_dir, seed: int) -> DepthEstimator:
    if name in RELATIVE_DEPTHS:
        if name == "lidar-relative":
            from easyocc.training.pseudo.relative import LidarRelativeDepth

            return LidarRelativeDepth(seed=seed)
        from easyocc.training.pseudo.simulated import SimulatedRelativeDepth

        return SimulatedRelativeDepth(noise=name.split("-")[-1], seed=seed)
    if name in ("ground-truth", "simulated-low", "simulated-high"):
        from easyocc.training.pseudo.simulated import SimulatedDepth

        return SimulatedDepth(noise=name.split("-")[-1] if name != "ground-truth" else "none", seed=seed)
    if name == "lidar":
        from easyocc.training.pseudo.lidar_boxes import LidarDepth

        return LidarDepth()
    if name == "metric3d" or name.startswith("metric3d-"):
        from easyocc.training.pseudo.metric_depth import Metric3D

        variant = name[len("metric3d-") :] if name != "metric3d" else "vit-small"
        return Metric3D(_model_folder(models_dir, "metric3d"), variant=variant)
    if name == "depth-anything":
        from easyocc.training.pseudo.metric_depth import DepthAnything

        return DepthAnything(_model_folder(models_dir, "depth-anything"))
    raise EasyOccError(
        f"unknown depth estimator '{name}'; known: {', '.join(DEPTHS + RELATIVE_DEPTHS)} or aligned-<name>"
    )


def _model_folder(models_dir, name: str):
    from pathlib import Path

    if models_dir is None:
        raise EasyOccError(f"provider needs --models DIR with a '{name}' folder (local weights, no downloads)")
    folder = Path(models_dir) / name
    if not folder.is_dir():
        raise EasyOccError(f"model folder not found: {folder}")
    return folder
