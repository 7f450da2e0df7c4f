"""INT8 calibration: real preprocessed frames fed to TensorRT's IInt8EntropyCalibrator2, with a cache file.

Layered so that everything but the device copy runs on the CPU:
- `CalibrationFeeder`: yields host arrays in the order TensorRT asks for them (by input name),
  validated against the manifest, one frame per batch (the network has no batch axis);
- `CalibrationCache`: the cache file plus a small meta file binding it to one ONNX model hash and
  frame count, so a cache from another model is never silently reused;
- `make_entropy_calibrator`: the TensorRT subclass, created lazily (tensorrt and pycuda imported
  only there), copying each batch into device buffers allocated once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_bytes_atomic, write_json_atomic
from easyocc.runtime.contract.manifest import Manifest


class CalibrationFeeder:
    """Host batches for calibration from an iterable of feeds ({input name: array}), at most `limit`."""

    def __init__(self, manifest: Manifest, feeds: Iterable[dict], limit: int | None = None):
        self.manifest = manifest
        self._feeds: Iterator[dict] = iter(feeds)
        self.limit = limit
        self.served = 0
        self.specs = {spec.name: spec for spec in manifest.inputs}

    @property
    def batch_size(self) -> int:
        """Frames per batch: 1, since the deployed network's inputs carry no batch axis."""
        return 1

    def nbytes(self, name: str) -> int:
        """Bytes of one batch of input `name` (for the device buffer)."""
        spec = self._spec(name)
        return int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize

    def _spec(self, name: str):
        if name not in self.specs:
            raise EasyOccError(f"calibration: TensorRT asked for input '{name}', the model has {sorted(self.specs)}")
        return self.specs[name]

    def next_batch(self, names) -> list[np.ndarray] | None:
        """Contiguous arrays for `names` in that order, or None when the frames (or the limit) run out."""
        from easyocc.runtime.backends.base import check_feed

        for name in names:
            self._spec(name)
        if self.limit is not None and self.served >= self.limit:
            return None
        feed = next(self._feeds, None)
        if feed is None:
            return None
        feed = check_feed(self.manifest, feed, "calibration")  # C-contiguous arrays
        self.served += 1
        return [feed[name] for name in names]


class CalibrationCache:
    """A TensorRT calibration cache at `path`, valid only for the ONNX model with `onnx_sha256`."""

    def __init__(self, path, onnx_sha256: str):
        self.path = Path(path)
        self.meta_path = self.path.with_name(self.path.name + ".json")
        self.onnx_sha256 = onnx_sha256
        self.status = "not read"

    def read(self) -> bytes | None:
        """The cache bytes when present and made for this model, else None (status says why)."""
        if not self.path.is_file():
            self.status = "no cache file; calibrating"
            return None
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            self.status = f"cache {self.path.name} has no readable {self.meta_path.name}; recalibrating"
            return None
        if meta.get("onnx_sha256") != self.onnx_sha256:
            self.status = f"cache {self.path.name} was made for another ONNX model; recalibrating"
            return None
        data = self.path.read_bytes()
        self.status = f"using calibration cache {self.path.name} ({meta.get('frames', '?')} frames)"
        return data or None

    def write(self, data: bytes, frames: int) -> None:
        write_bytes_atomic(self.path, bytes(data))
        write_json_atomic(self.meta_path, {"onnx_sha256": self.onnx_sha256, "frames": int(frames)})
        self.status = f"wrote calibration cache {self.path.name} ({frames} frames)"


def make_entropy_calibrator(trt, feeder: CalibrationFeeder, cache: CalibrationCache):
    """An instance of a trt.IInt8EntropyCalibrator2 subclass over `feeder` and `cache`.

    Device buffers (pycuda) are allocated once per input; get_batch copies the next frame into them
    and returns their addresses in the order of `names`, or None when the frames run out.
    """
    import pycuda.autoinit  # noqa: F401  (creates the CUDA context)
    import pycuda.driver as cuda

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()  # the base class must be initialised explicitly (pybind11 trampoline)
            self.buffers = {name: cuda.mem_alloc(feeder.nbytes(name)) for name in feeder.specs}

        def get_batch_size(self):
            return feeder.batch_size

        def get_batch(self, names):
            arrays = feeder.next_batch(names)
            if arrays is None:
                return None
            for name, array in zip(names, arrays):
                cuda.memcpy_htod(self.buffers[name], array)
            return [int(self.buffers[name]) for name in names]

        def read_calibration_cache(self):
            return cache.read()

        def write_calibration_cache(self, data):
            cache.write(bytes(data), feeder.served)

    return EntropyCalibrator()
