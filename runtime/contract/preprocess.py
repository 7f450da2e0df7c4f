"""Image preprocessing shared by training and deployment: decode, colour order, resize to network size.

Normalisation and float conversion happen inside the model graph; the host only produces uint8 RGB.
`CameraPreprocessor` fills the model's image input from one frame's cameras, in parallel.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import CORRUPT_IMAGE, IMAGE_SIZE, CameraImage, FrameError

log = logging.getLogger("easyocc.runtime")

# Nice value of the lanes that preprocess a frame ahead of the backend (CameraPreprocessor.run(ahead=True)).
# Against the backend's threads at nice 0 they get ~1.5 % of a contended core (CFS weight 15 vs 1024), so
# in effect they run on the time the backend leaves idle, and never starve outright.
AHEAD_NICE = 19

# Decoders of CameraPreprocessor: the CPU (JPEG through libjpeg-turbo's own API, simplejpeg; PNG and
# other JPEG colour spaces through OpenCV), or NVIDIA nvImageCodec on the GPU (runtime/decode_gpu.py).
DECODERS = ("cpu", "nvimgcodec")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); C4, C8 and CC are not frames.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}

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


def encoded_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) stated in a JPEG's frame header or a PNG's IHDR, read without decoding; None
    when the header cannot be read (the decoder then reports the damage).

    A reduced decode cannot see the full size: 1600x899 and 1600x900 both decode to 800x450 at 1/2,
    so the size is checked here, exactly, before decoding.
    """
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:2] != b"\xff\xd8":
        return None
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in _JPEG_SOF:
            if pos + 9 > end:
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None


def check_complete(data: bytes, what: str = "image") -> None:
    """Refuse a JPEG without an end-of-image marker after its last scan, or a PNG without its IEND
    chunk: a truncated file, which OpenCV would decode partially (the rest grey) without an error."""
    if data[:2] == b"\xff\xd8":
        if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
            raise EasyOccError(
                f"{what}: truncated JPEG (no end-of-image marker after the last scan; {len(data)} bytes)"
            )
    elif data[:8] == _PNG_SIGNATURE and b"IEND" not in data[-12:]:
        raise EasyOccError(f"{what}: truncated PNG (no IEND chunk at the end; {len(data)} bytes)")


def decode_image(data: bytes, what: str = "image", reduce: int = 1, bgr: bool = False) -> np.ndarray:
    """JPEG or PNG bytes -> uint8 RGB [H / reduce, W / reduce, 3] (sizes rounded up); BGR, as OpenCV
    decodes, with bgr=True (resize_to_network(..., bgr=True) then swaps the channels on the smaller image).
    Truncated files are refused (check_complete), not decoded in part."""
    if not data:
        raise EasyOccError(f"{what}: empty image data")
    check_complete(data, what)
    if reduce not in _REDUCED_FLAGS:
        raise EasyOccError(f"{what}: decode reduction must be 1, 2, 4 or 8, got {reduce}")
    if data[:2] == b"\xff\xd8":
        image = _decode_jpeg_turbo(data, reduce, bgr)
        if image is not None:
            return image
    buffer = np.frombuffer(data, dtype=np.uint8)
    image_bgr = cv2.imdecode(buffer, _REDUCED_FLAGS[reduce])
    if image_bgr is None:
        raise EasyOccError(f"{what}: not a decodable JPEG or PNG ({len(data)} bytes)")
    return image_bgr if bgr else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


@functools.cache
def _simplejpeg():
    """The simplejpeg module, or None when it is not installed (looked up once, not per image)."""
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def _decode_jpeg_turbo(data: bytes, reduce: int, bgr: bool) -> np.ndarray | None:
    """A JPEG decoded by libjpeg-turbo through simplejpeg, straight into the channel order asked for;
    None when simplejpeg is not installed or refuses the file (CMYK, a damaged stream: OpenCV then
    decodes it or reports the damage). The same library OpenCV bundles, with the same IDCT, so the
    pixels are identical (every image of the shared real scene at 1, 1/2, 1/4 and 1/8, tested), but
    about a fifth faster on 1600x900 at 1/4: OpenCV's imdecode adds a copy and a colour conversion."""
    simplejpeg = _simplejpeg()
    if simplejpeg is None:
        return None
    try:
        height, width = simplejpeg.decode_jpeg_header(data)[:2]
        # The smallest of libjpeg-turbo's n/8 scales that reaches 1/reduce of the size is 1/reduce itself.
        return simplejpeg.decode_jpeg(
            data,
            colorspace="BGR" if bgr else "RGB",
            min_width=-(-width // reduce),
            min_height=-(-height // reduce),
        )
    except ValueError:
        return None


def read_image(path, reduce: int = 1, bgr: bool = False) -> np.ndarray:
    """uint8 RGB (BGR with bgr=True) [H / reduce, W / reduce, 3] from a JPEG or PNG file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise EasyOccError(f"image {path}: {exc.strerror}") from None
    return decode_image(data, what=f"image {path}", reduce=reduce, bgr=bgr)


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


def _full_size(rgb: np.ndarray, factor: int) -> str:
    """The size of an image decoded at 1/factor scale, as the sender would state it."""
    if factor == 1:
        return f"{rgb.shape[1]}x{rgb.shape[0]}"
    return f"about {rgb.shape[1] * factor}x{rgb.shape[0] * factor} (decoded at 1/{factor})"


class CameraPreprocessor:
    """Fill the model's image input [N_cam, H, W, 3] (uint8 RGB) from one frame's cameras, each written
    straight into its slot, the cameras shared among `workers` lanes: the calling thread and
    workers - 1 pool threads (libjpeg-turbo and OpenCV release the GIL); by default one lane per
    core, at most one per camera.

    rig: cameras at the size the images arrive; image_size: (width, height) of the model's image input,
    the network size, or the cameras' own size for a model that resizes inside its graph (the host
    then only decodes, or copies a raw image). reduced_decode: decode JPEGs at 1/2, 1/4 or 1/8 in the
    IDCT where the image size allows (the header's size is checked exactly first). decoder: 'cpu'
    (libjpeg-turbo, OpenCV) or 'nvimgcodec' (NVIDIA nvImageCodec, the frame's JPEGs in one batch on the GPU).
    Bad images raise FrameError ('corrupt_image' or 'image_size').
    """

    def __init__(
        self,
        rig,
        image_size: tuple[int, int],
        workers: int | None = None,
        reduced_decode: bool = True,
        decoder: str = "cpu",
    ):
        if decoder not in DECODERS:
            raise EasyOccError(f"decoder must be one of {', '.join(DECODERS)}, got '{decoder}'")
        self.rig = rig
        self.input_size = tuple(image_size)
        self.sizes = [(camera.width, camera.height) for camera in rig]
        reduce = reduced_decode and decoder == "cpu"
        self.reductions = [reduction_factor(size, self.input_size) if reduce else 1 for size in self.sizes]
        self.decoder = decoder
        self._gpu = None
        if decoder == "nvimgcodec":
            from easyocc.runtime.decode_gpu import GpuJpegDecoder

            self._gpu = GpuJpegDecoder()
        # Lanes: the calling thread plus workers - 1 pool threads, each decoding its share of the
        # cameras in turn. One lane per core (up to one per camera): more threads than cores only add
        # wake-ups and switches (six JPEGs on 2 cores: 8.2 ms p50 with the caller + 1 thread against
        # 9.3-10.0 ms with 4 pool threads, each right after an inference, 96 frames).
        self.lanes = max(1, int(workers or min(len(rig), os.cpu_count() or 1)))
        self._pool = (
            ThreadPoolExecutor(max_workers=self.lanes - 1, thread_name_prefix="easyocc-pre") if self.lanes > 1 else None
        )
        self._ahead_pool: ThreadPoolExecutor | None = None  # the low-priority lanes, made on first use

    def _check_header(self, index: int, data: bytes) -> None:
        stated = encoded_size(data)
        width, height = self.sizes[index]
        if stated is not None and stated != (width, height):
            raise FrameError(
                IMAGE_SIZE,
                f"camera {self.rig[index].name}: image is {stated[0]}x{stated[1]}, its calibration is for "
                f"{width}x{height}",
            )

    def _one(self, index: int, image: CameraImage, out: np.ndarray, decoded: np.ndarray | None = None) -> None:
        name = self.rig[index].name
        encoded = image.data is not None
        factor = self.reductions[index] if encoded and decoded is None else 1
        if decoded is not None:
            pixels = decoded
        elif encoded:
            self._check_header(index, image.data)
            try:
                pixels = decode_image(image.data, what=f"camera {name}", reduce=factor, bgr=True)
            except EasyOccError as exc:
                raise FrameError(CORRUPT_IMAGE, str(exc)) from None
        else:
            pixels = image.image
            if not (
                isinstance(pixels, np.ndarray)
                and pixels.dtype == np.uint8
                and pixels.ndim == 3
                and pixels.shape[2] == 3
            ):
                raise FrameError(
                    CORRUPT_IMAGE,
                    f"camera {name}: image must be uint8 [H, W, 3], got "
                    f"{getattr(pixels, 'dtype', type(pixels).__name__)} {getattr(pixels, 'shape', '')}",
                )
        width, height = self.sizes[index]
        if (pixels.shape[1], pixels.shape[0]) != reduced_size((width, height), factor):
            raise FrameError(
                IMAGE_SIZE,
                f"camera {name}: image is {_full_size(pixels, factor)}, its calibration is for {width}x{height}",
            )
        resize_to_network(pixels, self.input_size, out=out[index], bgr=encoded and decoded is None)

    def _decode_on_gpu(self, present: dict[int, CameraImage]) -> dict[int, np.ndarray]:
        """{index: RGB [H, W, 3]} for the encoded images of `present`, decoded in one batch."""
        encoded = {index: image for index, image in present.items() if image.data is not None}
        if not encoded:
            return {}
        for index, image in encoded.items():
            self._check_header(index, image.data)
        names = [f"camera {self.rig[index].name}" for index in encoded]
        try:
            for image, name in zip(encoded.values(), names):
                check_complete(image.data, name)
            images = self._gpu.decode([image.data for image in encoded.values()], names)
        except EasyOccError as exc:
            raise FrameError(CORRUPT_IMAGE, str(exc)) from None
        return dict(zip(encoded, images))

    def run(self, present: dict[int, CameraImage], missing, out: np.ndarray, ahead: bool = False) -> None:
        """Fill `out` [N_cam, H, W, 3]: present cameras preprocessed, missing ones black.

        ahead: the frame waits behind one the backend is still running, so nothing waits for it yet;
        its cameras then go to `lanes` pool threads at nice AHEAD_NICE and the calling thread only
        waits. On a backend that computes on the same cores this puts the decoding on the time the
        backend leaves idle (at normal priority the throughput pipeline used 176-181 % of two cores)
        instead of stretching its inference.
        """
        for index in missing:
            out[index] = 0
        decoded = self._decode_on_gpu(present) if self._gpu is not None else {}
        items = list(present.items())
        if ahead:
            lanes, pool = min(self.lanes, len(items)), self._ahead_lanes()
        else:
            lanes, pool = min(self.lanes, len(items)) if self._pool is not None else 1, self._pool
        shares = [items[lane::lanes] for lane in range(lanes)]
        here = [] if ahead else shares[:1]
        futures = [pool.submit(self._share, share, out, decoded) for share in shares[len(here) :]]
        errors = self._share(here[0], out, decoded) if here else {}
        for future in futures:
            errors.update(future.result())
        if errors:  # the first camera's error, as a sequential run would raise it
            raise errors[min(errors)]

    def _share(self, share, out: np.ndarray, decoded: dict) -> dict:
        """Preprocess `share` ([(index, image)]) in turn; {index: the exception} for those that failed."""
        errors = {}
        for index, image in share:
            try:
                self._one(index, image, out, decoded.get(index))
            except Exception as exc:
                errors[index] = exc
        return errors

    def _ahead_lanes(self) -> ThreadPoolExecutor:
        if self._ahead_pool is None:
            self._ahead_pool = ThreadPoolExecutor(
                max_workers=self.lanes, thread_name_prefix="easyocc-ahead", initializer=lower_thread_priority
            )
        return self._ahead_pool

    def close(self) -> None:
        for pool in (self._pool, self._ahead_pool):
            if pool is not None:
                pool.shutdown(wait=True)


def lower_thread_priority(nice: int = AHEAD_NICE) -> bool:
    """Raise the calling thread's nice value to `nice` (Linux: nice is per thread, and raising it needs
    no privilege). Elsewhere, or where refused, the thread keeps its priority: False, logged once."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            return True
        except OSError as exc:
            _priority_unchanged(f"setpriority refused: {exc}")
            return False
    _priority_unchanged(f"per-thread nice is Linux's, not {sys.platform}'s")
    return False


@functools.cache
def _priority_unchanged(why: str) -> None:
    log.info("preprocessing ahead of the backend at normal priority (%s)", why)
