"""Shared preprocessing: decode (optionally reduced in the JPEG IDCT), resize to the network size."""

import cv2
import numpy as np
import pytest
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.preprocess import decode_image, reduced_size, reduction_factor, resize_to_network


def test_reduction_factor_keeps_at_least_network_size():
    assert reduction_factor((1600, 900), (704, 256)) == 2
    assert reduction_factor((1600, 900), (352, 128)) == 4
    assert reduction_factor((1600, 900), (176, 64)) == 8
    assert reduction_factor((704, 256), (704, 256)) == 1
    assert reduced_size((1600, 900), 8) == (200, 113)


def test_reduced_decode_is_close_to_full_decode_then_resize():
    rng = np.random.default_rng(0)
    # A smooth image with some texture, as camera images are.
    y, x = np.mgrid[0:900, 0:1600]
    image = np.stack([(x / 7) % 255, (y / 5) % 255, (x + y) / 10 % 255], axis=-1).astype(np.uint8)
    image = cv2.GaussianBlur(image + rng.integers(0, 20, image.shape, dtype=np.uint8), (5, 5), 0)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    half = decode_image(data, reduce=2)
    assert half.shape == (450, 800, 3)
    full = decode_image(data)
    a = resize_to_network(half, (704, 256)).astype(float)
    b = resize_to_network(full, (704, 256)).astype(float)
    assert np.abs(a - b).mean() < 2.0


def test_bgr_path_gives_the_same_bytes():
    """The runtime decodes BGR and swaps channels after resizing: identical to RGB first, then resize."""
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 255, (450, 800, 3), dtype=np.uint8), (5, 5), 0)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    for reduce, size in ((2, (352, 128)), (1, (800, 450)), (4, (400, 300))):  # shrink, same size, enlarge
        expected = resize_to_network(decode_image(data, reduce=reduce), size)
        out = np.zeros((size[1], size[0], 3), np.uint8)
        result = resize_to_network(decode_image(data, reduce=reduce, bgr=True), size, out=out, bgr=True)
        assert result is out and np.array_equal(out, expected)
        assert np.array_equal(resize_to_network(decode_image(data, reduce=reduce, bgr=True), size, bgr=True), expected)
    bgr = decode_image(data, bgr=True)
    assert np.array_equal(bgr[..., ::-1], decode_image(data))


def test_decode_errors():
    with pytest.raises(EasyOccError, match="camera X: empty image data"):
        decode_image(b"", what="camera X")
    with pytest.raises(EasyOccError, match="not a decodable JPEG or PNG"):
        decode_image(b"\xff\xd8garbage" * 10)
    with pytest.raises(EasyOccError, match="decode reduction must be 1, 2, 4 or 8, got 3"):
        decode_image(b"x", reduce=3)
    with pytest.raises(EasyOccError, match="image must be uint8"):
        resize_to_network(np.zeros((4, 4), np.uint8), (2, 2))
