"""Provider interfaces: a `Segmenter` (RGB -> per-pixel Occ3D class and score) and a `DepthEstimator`
(RGB + intrinsics -> metric z-depth), the `ImageView` they receive and output checks. The providers
implement these; `registry.py` builds them by name (a separate module, so that the implementations
import the interfaces without an import cycle).

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
