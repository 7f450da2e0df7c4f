"""Image preprocessing shared by training and deployment: decode, colour order, resize to network size.

Normalisation and float conversion happen inside the model graph; the host only produces uint8 RGB.
"""

from __future__ import annotations

import cv2
import numpy as np

from runtime.errors import EasyOccError


def decode_image(data: bytes, what: str = "image") -> np.ndarray:
    """JPEG or PNG bytes -> uint8 RGB [H, W, 3]."""
    if not data:
        raise EasyOccError(f"{what}: empty image data")
    buffer = np.frombuffer(data, dtype=np.uint8)
    image_bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image_bgr is None:
        raise EasyOccError(f"{what}: not a decodable JPEG or PNG ({len(data)} bytes)")
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


def read_image(path) -> np.ndarray:
    """uint8 RGB [H, W, 3] from a JPEG or PNG file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise EasyOccError(f"image {path}: {exc.strerror}") from None
    return decode_image(data, what=f"image {path}")


def resize_to_network(image_rgb: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """Resize uint8 RGB [H, W, 3] to size=(width, height), writing into `out` [height, width, 3] if given.

    INTER_AREA when shrinking (anti-aliased, as training saw it), INTER_LINEAR when enlarging.
    """
    width, height = size
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise EasyOccError(f"image must be uint8 [H, W, 3], got {image_rgb.dtype} {image_rgb.shape}")
    if image_rgb.shape[0] == height and image_rgb.shape[1] == width:
        if out is None:
            return image_rgb
        out[...] = image_rgb
        return out
    interpolation = cv2.INTER_AREA if width < image_rgb.shape[1] else cv2.INTER_LINEAR
    if out is None:
        return cv2.resize(image_rgb, (width, height), interpolation=interpolation)
    cv2.resize(image_rgb, (width, height), dst=out, interpolation=interpolation)
    return out
