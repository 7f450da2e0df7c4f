"""Frames as the runtime receives them: one image per camera with its capture stamp, grouped in a set.

Stamps are integer microseconds (the nuScenes and ROS convention); they only need to be monotonic
per stream, not wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError

# Reasons a frame is dropped (FrameError.reason, DropCounter keys). One place, so counters, logs,
# ROS diagnostics and tests use the same words.
CORRUPT_IMAGE = "corrupt_image"
MISSING_CAMERA = "missing_camera"
IMAGE_SIZE = "image_size"
OUT_OF_SYNC = "out_of_sync"
STAMP_BACKWARDS = "stamp_backwards"
BACKEND_ERROR = "backend_error"
SUPERSEDED = "superseded"  # replaced in a newest-frame buffer by a newer frame before it was processed
SINK_ERROR = "sink_error"
DROP_REASONS = (CORRUPT_IMAGE, MISSING_CAMERA, IMAGE_SIZE, OUT_OF_SYNC, STAMP_BACKWARDS, BACKEND_ERROR, SUPERSEDED)


class FrameError(EasyOccError):
    """A bad frame: dropped and counted under `reason` (one of DROP_REASONS); the stream goes on."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class CameraImage:
    """One camera image: encoded JPEG/PNG `data`, or a decoded RGB uint8 `image` [H, W, 3].

    stamp_us: capture time in microseconds.
    """

    camera: str
    stamp_us: int
    data: bytes | None = None
    image: np.ndarray | None = None

    def __post_init__(self):
        if (self.data is None) == (self.image is None):
            raise EasyOccError(f"camera {self.camera}: give exactly one of encoded data or a decoded image")
        self.stamp_us = int(self.stamp_us)


@dataclass
class FrameSet:
    """Images of one capture instant, keyed by camera name; stamp_us is the newest camera stamp."""

    stamp_us: int
    images: dict[str, CameraImage]
    seq: int = 0
    meta: dict = field(default_factory=dict)  # free-form: sample token, scene name (sources fill it)

    @classmethod
    def from_images(cls, images, seq: int = 0, meta: dict | None = None) -> FrameSet:
        """A set from CameraImages; its stamp is the newest of theirs."""
        images = list(images)
        if not images:
            raise EasyOccError("frame set has no images")
        return cls(max(i.stamp_us for i in images), {i.camera: i for i in images}, seq, dict(meta or {}))
