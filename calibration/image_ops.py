"""Image resize and crop that keep a camera's intrinsics consistent with the pixels."""

from __future__ import annotations

import cv2
import numpy as np
from easyocc.calibration.camera import Camera
from easyocc.calibration.errors import EasyOccError


def resize_and_crop(
    image: np.ndarray, camera: Camera, size: tuple[int, int], crop: tuple[int, int, int, int] | None = None
) -> tuple[np.ndarray, Camera]:
    """Resize `image` to size=(width, height) with cv2.resize, then crop (x0, y0, width, height).

    Returns the new image and the camera whose K matches it. `image` is [H, W, C] or [H, W].
    """
    if image.shape[0] != camera.height or image.shape[1] != camera.width:
        raise EasyOccError(
            f"camera {camera.name}: image is {image.shape[1]}x{image.shape[0]}, rig says {camera.width}x{camera.height}"
        )
    width, height = (int(v) for v in size)
    if width <= 0 or height <= 0:
        raise EasyOccError(f"resize target must be positive, got {width}x{height}")
    interpolation = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_LINEAR
    resized = cv2.resize(image, (width, height), interpolation=interpolation)
    new_camera = camera.resized(width / camera.width, height / camera.height)
    if crop is not None:
        x0, y0, crop_w, crop_h = (int(v) for v in crop)
        if x0 < 0 or y0 < 0 or crop_w <= 0 or crop_h <= 0 or x0 + crop_w > width or y0 + crop_h > height:
            raise EasyOccError(f"crop {crop} does not fit in the resized {width}x{height} image")
        resized = resized[y0 : y0 + crop_h, x0 : x0 + crop_w]
        new_camera = camera.resized(width / camera.width, height / camera.height, crop=(x0, y0, crop_w, crop_h))
    return np.ascontiguousarray(resized), new_camera
