"""Image preprocessing shared by training and deployment: decode, colour order, resize to network size.

Normalisation and float conversion happen inside the model graph; the host only produces uint8 RGB.
"""

from __future__ import annotations

import cv2
import numpy as np
from easyocc.runtime.contract.errors import EasyOccError

_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def reduction_factor(camera_size: tuple[int, int], network_size: tuple[int, int]) -> int:
    """The largest JPEG decode reduction (1, 2, 4 or 8) that keeps the image at least network-sized.

    libjpeg decodes at 1/2, 1/4 or 1/8 scale inside its IDCT for a fraction of the full cost; the
    resize to the network size then does the rest. 1600x900 -> 704x256 decodes at 800x450.
    """
    width, height = camera_size
    net_width, net_height = network_size
    factor = 1
    for candidate in (2, 4, 8):
        if width / candidate >= net_width and height / candidate >= net_height:
            factor = candidate
    return factor


def reduced_size(camera_size: tuple[int, int], factor: int) -> tuple[int, int]:
    """(width, height) of an image decoded with reduction `factor` (libjpeg rounds up)."""
    width, height = camera_size
    return -(-width // factor), -(-height // factor)


def decode_image(data: bytes, what: str = "image", reduce: int = 1, bgr: bool = False) -> np.ndarray:
    """JPEG or PNG bytes -> uint8 RGB [H / reduce, W / reduce, 3] (sizes rounded up); BGR, as OpenCV
    decodes, with bgr=True (resize_to_network(..., bgr=True) then swaps the channels on the smaller image)."""
    if not data:
        raise EasyOccError(f"{what}: empty image data")
    if reduce not in _REDUCED_FLAGS:
        raise EasyOccError(f"{what}: decode reduction must be 1, 2, 4 or 8, got {reduce}")
    buffer = np.frombuffer(data, dtype=np.uint8)
    image_bgr = cv2.imdecode(buffer, _REDUCED_FLAGS[reduce])
    if image_bgr is None:
        raise EasyOccError(f"{what}: not a decodable JPEG or PNG ({len(data)} bytes)")
    return image_bgr if bgr else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


def read_image(path, reduce: int = 1) -> np.ndarray:
    """uint8 RGB [H / reduce, W / reduce, 3] from a JPEG or PNG file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise EasyOccError(f"image {path}: {exc.strerror}") from None
    return decode_image(data, what=f"image {path}", reduce=reduce)


def resize_to_network(
    image: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None, bgr: bool = False
) -> np.ndarray:
    """Resize uint8 RGB [H, W, 3] to size=(width, height), writing into `out` [height, width, 3] if given.

    INTER_AREA when shrinking (anti-aliased, as training saw it), INTER_LINEAR when enlarging.
    bgr: the image is BGR (decode_image(..., bgr=True)); the result is RGB all the same, the channels
    swapped after resizing where there are fewer pixels (the same bytes: resizing is per channel).
    """
    width, height = size
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise EasyOccError(f"image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
    if image.shape[:2] != (height, width):
        interpolation = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_LINEAR
        if bgr:  # resize first: the channel swap below then runs on the smaller image
            image = cv2.resize(image, (width, height), interpolation=interpolation)
        else:
            resized = cv2.resize(image, (width, height), dst=out, interpolation=interpolation)
            return resized if out is None else out
    if bgr:
        converted = cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=out)
        return converted if out is None else out
    if out is None:
        return image
    out[...] = image
    return out
