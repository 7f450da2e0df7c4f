"""Camera messages <-> numpy images, without cv_bridge: sensor_msgs/Image and CompressedImage.

Incoming images are validated here (encoding, size, buffer length) and turned into the runtime's
`CameraImage`; a bad message raises `FrameError` with the reason it is counted under. Raw images are
wrapped without copying where the layout allows; compressed ones keep their bytes and are decoded by
the runtime in the worker thread (easyocc.runtime.occupancy), never in a subscription callback.
"""

from __future__ import annotations

import array

import cv2
import numpy as np
from easyocc.runtime.contract.frames import CORRUPT_IMAGE, IMAGE_SIZE, CameraImage, FrameError

# Drop reason of a raw image whose encoding the node cannot turn into RGB (ROS-specific).
UNSUPPORTED_ENCODING = "unsupported_encoding"
# encoding -> (channels, OpenCV conversion to RGB or None)
RAW_ENCODINGS = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
}
COMPRESSED_FORMATS = ("jpeg", "jpg", "png")


def byte_array(typecode: str, values: np.ndarray) -> array.array:
    """array.array of the array's raw bytes (what rclpy takes for uint8[]/int8[] fields) with one copy,
    not the two of array.array(code, values.tobytes()): a multi-megabyte cloud goes out every frame."""
    out = array.array(typecode)
    out.frombytes(memoryview(np.ascontiguousarray(values)).cast("B"))
    return out


def zero_bytes(size: int) -> array.array:
    """A zeroed array.array('B') of `size` bytes, to fill in place through np.frombuffer."""
    return array.array("B", b"\0") * size


def set_array_field(msg, field: str, values: array.array) -> None:
    """msg.<field> = values, an array.array of the field's type code, without another copy.

    Jazzy's generated setters copy an array.array (unless ROS_PYTHON_CHECK_FIELDS is set); Humble's
    keep it. Every rosidl_generator_py since Foxy stores the value in the `_<field>` slot, so it goes
    there directly; a message class without that slot gets the setter.
    """
    slot = "_" + field
    if slot in getattr(type(msg), "__slots__", ()):
        setattr(msg, slot, values)
    else:
        setattr(msg, field, values)


def stamp_to_us(stamp) -> int:
    """builtin_interfaces/Time -> integer microseconds."""
    return int(stamp.sec) * 1_000_000 + int(stamp.nanosec) // 1000


def us_to_stamp(stamp_us: int, stamp=None):
    """Integer microseconds -> builtin_interfaces/Time (filled into `stamp` when given)."""
    from builtin_interfaces.msg import Time

    stamp = stamp if stamp is not None else Time()
    stamp.sec, remainder = divmod(int(stamp_us), 1_000_000)
    stamp.nanosec = remainder * 1000
    return stamp


def raw_to_rgb(msg, camera: str, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """sensor_msgs/Image -> uint8 RGB [H, W, 3]; a view of msg.data for rgb8 without row padding.

    expected_size: (width, height) the rig says this camera has; a different size raises IMAGE_SIZE.
    """
    encoding = str(msg.encoding).lower()
    if encoding not in RAW_ENCODINGS:
        raise FrameError(
            UNSUPPORTED_ENCODING,
            f"camera {camera}: image encoding '{msg.encoding}' is not supported ({', '.join(RAW_ENCODINGS)})",
        )
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    if expected_size is not None and (width, height) != tuple(expected_size):
        raise FrameError(
            IMAGE_SIZE,
            f"camera {camera}: image is {width}x{height}, the rig expects {expected_size[0]}x{expected_size[1]}",
        )
    channels, conversion = RAW_ENCODINGS[encoding]
    if width <= 0 or height <= 0 or step < width * channels:
        raise FrameError(IMAGE_SIZE, f"camera {camera}: invalid image geometry {width}x{height}, step {step}")
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    if buffer.size != step * height:
        raise FrameError(
            CORRUPT_IMAGE,
            f"camera {camera}: image data has {buffer.size} bytes, expected step*height = {step * height}",
        )
    image = buffer.reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    if conversion is not None:
        image = cv2.cvtColor(image, conversion)
    return image


def camera_image_from_raw(msg, camera: str, expected_size=None) -> CameraImage:
    """sensor_msgs/Image -> runtime CameraImage (decoded RGB), stamped with the header stamp."""
    return CameraImage(camera, stamp_to_us(msg.header.stamp), image=raw_to_rgb(msg, camera, expected_size))


def camera_image_from_compressed(msg, camera: str) -> CameraImage:
    """sensor_msgs/CompressedImage -> runtime CameraImage (encoded bytes; decoded later by the worker)."""
    fmt = str(msg.format).lower()
    if fmt and not any(name in fmt for name in COMPRESSED_FORMATS):
        raise FrameError(UNSUPPORTED_ENCODING, f"camera {camera}: compressed format '{msg.format}' is not JPEG or PNG")
    data = bytes(msg.data)
    if not data:
        raise FrameError(CORRUPT_IMAGE, f"camera {camera}: compressed image is empty")
    return CameraImage(camera, stamp_to_us(msg.header.stamp), data=data)


def rgb_to_raw_msg(image_rgb: np.ndarray, stamp_us: int, frame_id: str, encoding: str = "rgb8"):
    """uint8 RGB [H, W, 3] -> sensor_msgs/Image (rgb8 or bgr8, no row padding)."""
    from sensor_msgs.msg import Image

    if encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"encoding must be rgb8 or bgr8, got {encoding}")
    pixels = image_rgb if encoding == "rgb8" else cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    msg = Image()
    us_to_stamp(stamp_us, msg.header.stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(pixels.shape[1] * 3)
    set_array_field(msg, "data", byte_array("B", pixels))
    return msg


def encoded_to_compressed_msg(data: bytes, stamp_us: int, frame_id: str, fmt: str = "jpeg"):
    """JPEG/PNG bytes -> sensor_msgs/CompressedImage."""
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    us_to_stamp(stamp_us, msg.header.stamp)
    msg.header.frame_id = frame_id
    msg.format = fmt
    set_array_field(msg, "data", array.array("B", data))
    return msg
