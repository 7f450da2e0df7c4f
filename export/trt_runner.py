"""A minimal TensorRT runner (Polygraphy-like) to verify a freshly built engine against ONNX Runtime.

Context manager: activate (deserialize, allocate), `infer(feed)`, deactivate. Uses the name-based
tensor API (`num_io_tensors`, `set_tensor_address`, `execute_async_v3`), present from TensorRT 8.5
through 10.x. Every input is checked against the engine (name, dtype, shape) before it runs, and
every boolean TensorRT return becomes an error naming the tensor. Never executed on this project's
development machines (no GPU there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError


class TrtRunner:
    """Runs one engine file. `infer(feed)` -> {output name: numpy array} (copies)."""

    def __init__(self, engine_path):
        self.engine_path = Path(engine_path)
        self._active = False

    def __enter__(self) -> TrtRunner:
        from easyocc.export.trt_builder import import_tensorrt

        trt = import_tensorrt()
        import pycuda.autoinit  # noqa: F401  (creates the CUDA context)
        import pycuda.driver as cuda

        self._trt, self._cuda = trt, cuda
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise EasyOccError(
                f"TensorRT {trt.__version__} cannot deserialize {self.engine_path} (built by another TensorRT or GPU?)"
            )
        self.context = self.engine.create_execution_context()
        self.stream = cuda.Stream()
        self.tensors = {}
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            shape = tuple(self.engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            host = cuda.pagelocked_empty(shape, dtype)
            device = cuda.mem_alloc(host.nbytes)
            if not self.context.set_tensor_address(name, int(device)):
                raise EasyOccError(f"TensorRT refused the device address of tensor '{name}'")
            self.tensors[name] = (is_input, host, device)
        self._active = True
        return self

    def __exit__(self, *exc) -> None:
        self._active = False
        self.tensors, self.context, self.engine = {}, None, None

    def infer(self, feed: dict) -> dict[str, np.ndarray]:
        if not self._active:
            raise EasyOccError("TrtRunner.infer called outside its `with` block")
        cuda = self._cuda
        inputs = {name for name, (is_input, _, _) in self.tensors.items() if is_input}
        if set(feed) != inputs:
            raise EasyOccError(f"feed has inputs {sorted(feed)}, the engine expects {sorted(inputs)}")
        for name in inputs:
            _, host, device = self.tensors[name]
            array = feed[name]
            if array.dtype != host.dtype or array.shape != host.shape:
                raise EasyOccError(
                    f"input '{name}': got {array.dtype} {list(array.shape)}, engine expects {host.dtype} {list(host.shape)}"
                )
            np.copyto(host, array)
            cuda.memcpy_htod_async(device, host, self.stream)
        if not self.context.execute_async_v3(self.stream.handle):
            raise EasyOccError(f"TensorRT execution of {self.engine_path.name} failed")
        outputs = {}
        for name, (is_input, host, device) in self.tensors.items():
            if not is_input:
                cuda.memcpy_dtoh_async(host, device, self.stream)
                outputs[name] = host
        self.stream.synchronize()
        return {name: array.copy() for name, array in outputs.items()}
