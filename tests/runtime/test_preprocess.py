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


def _jpeg(width: int, height: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (9, 9), 0)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def test_encoded_size_reads_jpeg_and_png_headers(nuscenes_dataset):
    from easyocc.runtime.contract.preprocess import encoded_size

    assert encoded_size(_jpeg(1600, 899)) == (1600, 899)
    progressive = cv2.imencode(".jpg", np.zeros((37, 53, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    assert encoded_size(progressive.tobytes()) == (53, 37)
    assert encoded_size(cv2.imencode(".png", np.zeros((21, 34, 3), np.uint8))[1].tobytes()) == (34, 21)
    assert encoded_size(b"\xff\xd8garbage") is None and encoded_size(b"") is None
    sample = nuscenes_dataset.samples()[0]
    for frame in sample.cameras.values():  # real nuScenes JPEGs (EXIF/JFIF segments before the frame header)
        assert encoded_size(frame.path.read_bytes()) == (1600, 900)


def _preprocessor(size=(1600, 900), image_size=(352, 128), **options):
    from easyocc.calibration import default_rig
    from easyocc.runtime.contract.preprocess import CameraPreprocessor

    return CameraPreprocessor(default_rig().resized(*size), image_size, **options)


def test_reduced_decode_refuses_an_image_one_row_short():
    """1600x899 decodes to 400x225 at 1/4 exactly as 1600x900 does; the header check refuses it."""
    from easyocc.runtime.contract.frames import IMAGE_SIZE, CameraImage, FrameError

    pre = _preprocessor()
    assert pre.reductions[0] == 4
    out = np.zeros((6, 128, 352, 3), np.uint8)
    with pytest.raises(
        FrameError, match=r"^camera CAM_FRONT: image is 1600x899, its calibration is for 1600x900$"
    ) as e:
        pre.run({0: CameraImage("CAM_FRONT", 0, data=_jpeg(1600, 899))}, (), out)
    assert e.value.reason == IMAGE_SIZE
    pre.run({0: CameraImage("CAM_FRONT", 0, data=_jpeg(1600, 900))}, (), out)  # the right size passes
    assert out[0].any()
    pre.close()


def test_parallel_reduced_and_full_decode_agree_and_write_in_place():
    """Six cameras in parallel into the caller's buffer; reduced decode within 2 grey levels of full decode."""
    from easyocc.runtime.contract.frames import CameraImage

    images = {i: CameraImage(f"C{i}", 0, data=_jpeg(1600, 900, seed=i)) for i in range(6)}
    reduced, full = (np.zeros((6, 256, 704, 3), np.uint8) for _ in range(2))
    for out, flag in ((reduced, True), (full, False)):
        pre = _preprocessor(image_size=(704, 256), reduced_decode=flag)
        assert pre.reductions == [2 if flag else 1] * 6
        pre.run(images, (), out)
        pre.close()
    assert np.abs(reduced.astype(float) - full.astype(float)).mean() < 2.0
    for i in range(6):  # each slot holds its own camera, in RGB
        expected = resize_to_network(decode_image(images[i].data, reduce=2), (704, 256))
        assert np.array_equal(reduced[i], expected)


def test_camera_resolution_input_copies_without_resizing():
    """A model that resizes in its graph: raw RGB is copied as is, JPEGs are decoded at full size."""
    from easyocc.runtime.contract.frames import CameraImage

    pre = _preprocessor(size=(320, 180), image_size=(320, 180))
    assert pre.reductions == [1] * 6
    raw = np.random.default_rng(3).integers(0, 255, (180, 320, 3), dtype=np.uint8)
    data = _jpeg(320, 180, seed=4)
    out = np.zeros((6, 180, 320, 3), np.uint8)
    pre.run({0: CameraImage("CAM_FRONT", 0, image=raw), 1: CameraImage("CAM_FRONT_RIGHT", 0, data=data)}, (2,), out)
    assert np.array_equal(out[0], raw) and np.array_equal(out[1], decode_image(data)) and not out[2].any()
    pre.close()


def test_decoder_option_errors():
    with pytest.raises(EasyOccError, match="^decoder must be one of cpu, nvimgcodec, got 'nvjpeg'$"):
        _preprocessor(decoder="nvjpeg")


def test_libjpeg_turbo_path_gives_opencvs_pixels_on_real_frames(nuscenes_dataset):
    """decode_image decodes JPEGs through simplejpeg (libjpeg-turbo's API): the same pixels as
    OpenCV's imdecode, at every reduction, in both channel orders, on every camera of two real frames."""
    pytest.importorskip("simplejpeg", reason="simplejpeg is a core dependency; this environment lacks it")
    flags = {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }
    checked = 0
    for sample in nuscenes_dataset.samples()[:2]:
        for frame in sample.cameras.values():
            data = frame.path.read_bytes()
            for reduce, flag in flags.items():
                expected = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
                assert np.array_equal(decode_image(data, reduce=reduce, bgr=True), expected)
                assert np.array_equal(decode_image(data, reduce=reduce), expected[..., ::-1])
                checked += 1
    assert checked == 2 * 6 * 4


def test_jpegs_libjpeg_turbo_refuses_fall_back_to_opencv():
    """A grayscale JPEG decodes to three equal channels, and a CMYK one (which simplejpeg cannot
    turn into RGB) still decodes through OpenCV."""
    gray = cv2.imencode(".jpg", np.full((24, 40), 77, np.uint8))[1].tobytes()
    image = decode_image(gray)
    assert image.shape == (24, 40, 3) and np.abs(image.astype(int) - 77).max() <= 1
    import io

    Image = pytest.importorskip("PIL.Image", reason="Pillow (extra 'foundation') writes the CMYK JPEG")

    buffer = io.BytesIO()
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(buffer, "JPEG", quality=95)  # red
    red = decode_image(buffer.getvalue())
    assert red.shape == (8, 16, 3) and red[..., 0].min() > 200 and red[..., 1:].max() < 60


def test_without_simplejpeg_opencv_decodes_the_same_pixels(nuscenes_dataset, monkeypatch):
    """The OpenCV path, taken when simplejpeg is missing, gives the pixels the libjpeg-turbo path gives."""
    from easyocc.runtime.contract import preprocess

    data = next(iter(nuscenes_dataset.samples()[0].cameras.values())).path.read_bytes()
    fast = decode_image(data, reduce=4)
    monkeypatch.setattr(preprocess, "_simplejpeg", lambda: None)
    assert np.array_equal(decode_image(data, reduce=4), fast)


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_frames_prepared_ahead_run_on_low_priority_lanes_with_the_same_pixels():
    """ahead=True: the cameras go to the nice-19 lanes, the caller keeps its priority, pixels and errors
    are those of a normal run."""
    import os
    import threading

    from easyocc.runtime.contract.frames import CORRUPT_IMAGE, CameraImage, FrameError
    from easyocc.runtime.contract.preprocess import AHEAD_NICE

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    caller = nice()
    images = {i: CameraImage(f"C{i}", 0, data=_jpeg(1600, 900, seed=10 + i)) for i in range(6)}
    normal, ahead = (np.zeros((6, 128, 352, 3), np.uint8) for _ in range(2))
    pre = _preprocessor()
    try:
        pre.run(images, (), normal)
        assert pre._ahead_pool is None  # made only when a frame is prepared ahead
        pre.run(images, (), ahead, ahead=True)
        assert np.array_equal(ahead, normal) and normal.any()
        lanes = {pre._ahead_pool.submit(lambda: (threading.get_native_id(), nice())).result() for _ in range(12)}
        assert {n for _, n in lanes} == {AHEAD_NICE} and AHEAD_NICE == 19
        assert nice() == caller  # the calling thread only waited
        bad = {**images, 3: CameraImage("C3", 0, data=images[3].data[:2000])}
        with pytest.raises(FrameError, match=r"^camera CAM_BACK: ") as e:
            pre.run(bad, (), ahead, ahead=True)
        assert e.value.reason == CORRUPT_IMAGE
    finally:
        pre.close()


def test_a_refused_priority_change_keeps_the_lane_running_and_says_so_once(monkeypatch, caplog):
    """Where setpriority is refused (or nice is not per thread), the lane keeps its priority: False,
    one log line however often it happens, and the frame is still preprocessed."""
    import logging
    import os

    from easyocc.runtime.contract import preprocess
    from easyocc.runtime.contract.frames import CameraImage

    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    monkeypatch.setattr(preprocess.sys, "platform", "linux")
    with caplog.at_level(logging.INFO, logger="easyocc.runtime"):
        assert preprocess.lower_thread_priority() is False
        assert preprocess.lower_thread_priority() is False
        pre = _preprocessor()
        out = np.zeros((6, 128, 352, 3), np.uint8)
        try:
            pre.run({0: CameraImage("CAM_FRONT", 0, data=_jpeg(1600, 900, seed=5))}, (), out, ahead=True)
        finally:
            pre.close()
    assert out[0].any()
    lines = [r.getMessage() for r in caplog.records if "at normal priority" in r.getMessage()]
    assert lines == [
        "preprocessing ahead of the backend at normal priority (setpriority refused: [Errno 1] Operation not permitted)"
    ]
    monkeypatch.setattr(preprocess.sys, "platform", "darwin")
    assert preprocess.lower_thread_priority() is False
