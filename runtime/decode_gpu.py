"""JPEG decoding on the GPU with NVIDIA nvImageCodec (nvJPEG; the hardware JPEG decoders on Jetson Orin).

Optional: `pip install nvidia-nvimgcodec-cu12` (x86-64 or SBSA with CUDA 12), `nvidia-nvimgcodec-tegra-cu12`
on Jetson (JetPack 6), `nvidia-nvimgcodec-cu13` with CUDA 13. The library is imported only when a
`GpuJpegDecoder` is created (CameraPreprocessor(decoder='nvimgcodec'), OccupancyRuntime(decoder=...)).

A frame's six JPEGs go to the decoder as one batch. The decoded images come back to host memory
(`.cpu()`): the runners take host arrays. On Orin the GPU shares DRAM with the CPU, so that copy is a
memory copy, not a bus transfer; keeping the images on the device for the engine is the next step.
"""

from __future__ import annotations

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError

INSTALL_HINT = "pip install nvidia-nvimgcodec-cu12 (nvidia-nvimgcodec-tegra-cu12 on Jetson)"


def load_nvimgcodec():
    """The nvidia.nvimgcodec module, or EasyOccError saying how to install it."""
    try:
        from nvidia import nvimgcodec
    except ImportError as exc:
        raise EasyOccError(f"decoder 'nvimgcodec' needs NVIDIA nvImageCodec ({INSTALL_HINT}): {exc}") from None
    return nvimgcodec


def gpu_decoder_unavailable() -> str | None:
    """Why nvImageCodec cannot decode here (library or GPU missing), or None when it can."""
    try:
        GpuJpegDecoder()
    except EasyOccError as exc:
        return str(exc)
    return None


class GpuJpegDecoder:
    """Batched JPEG/PNG bytes -> uint8 RGB [H, W, 3] host arrays through nvImageCodec."""

    def __init__(self):
        nvimgcodec = load_nvimgcodec()
        try:
            self._decoder = nvimgcodec.Decoder()
            self._params = nvimgcodec.DecodeParams(color_spec=nvimgcodec.ColorSpec.RGB, allow_any_depth=False)
        except Exception as exc:  # no CUDA device or driver: nvImageCodec raises RuntimeError
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EasyOccError(f"decoder 'nvimgcodec' cannot start (is there a CUDA GPU?): {message}") from None

    def decode(self, encoded: list[bytes], names: list[str]) -> list[np.ndarray]:
        """Decode a batch; `names` label each image in errors ('camera CAM_FRONT')."""
        for data, name in zip(encoded, names):
            if not data:
                raise EasyOccError(f"{name}: empty image data")
        try:
            images = self._decoder.decode(list(encoded), params=self._params)
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EasyOccError(
                f"{names[0] if len(names) == 1 else 'a camera'}: nvImageCodec failed: {message}"
            ) from None
        out = []
        for image, data, name in zip(images, encoded, names):
            if image is None:
                raise EasyOccError(f"{name}: not a decodable JPEG or PNG ({len(data)} bytes)")
            out.append(np.asarray(image.cpu()))
        return out
