"""TensorRT backend: a serialized engine, its sidecar manifest, pycuda buffers, one CUDA stream.

Two TensorRT Python APIs are supported, chosen by version:
- 8.5 / 8.6 (JetPack 5): binding indices (`engine.num_bindings`, `get_binding_name/shape/dtype`,
  `binding_is_input`) and `context.execute_async_v2(bindings, stream_handle)`;
- 9.x / 10.x (JetPack 6): named tensors (`engine.num_io_tensors`, `get_tensor_name/shape/dtype/mode`),
  `context.set_tensor_address(name, ptr)` and `context.execute_async_v3(stream_handle)`.
Host buffers are page-locked (pycuda.driver.pagelocked_empty); inputs that stay constant per rig
(the view-transform tables) are uploaded once. An optional CUDA graph (captured with cuda-python's
cudart after one warm-up run) replays the enqueue with less launch overhead. tensorrt, pycuda and
cuda-python are imported only in `activate`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from easyocc.runtime.backends.base import Runner, check_contract, check_manifest_io
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import Manifest

BINDINGS_API = "bindings"  # TensorRT 8.5 / 8.6: execute_async_v2
TENSORS_API = "tensors"  # TensorRT >= 9: set_tensor_address + execute_async_v3
MIN_VERSION = (8, 5)


def parse_version(version: str) -> tuple[int, int]:
    """'8.6.1.6' -> (8, 6); raises on anything else."""
    try:
        major, minor = (int(part) for part in str(version).split(".")[:2])
    except ValueError:
        raise EasyOccError(f"cannot parse TensorRT version '{version}'") from None
    return major, minor


def tensorrt_api(version: str) -> str:
    """Which execution API a TensorRT version needs: BINDINGS_API for 8.5/8.6, TENSORS_API for >= 9."""
    major_minor = parse_version(version)
    if major_minor < MIN_VERSION:
        raise EasyOccError(f"TensorRT {version} is too old; the runtime needs 8.5 or newer")
    return BINDINGS_API if major_minor[0] == 8 else TENSORS_API


def sidecar_path(engine_path) -> Path:
    """The manifest beside an engine: <engine>.json (model.engine -> model.engine.json)."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def load_sidecar(engine_path) -> Manifest:
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise EasyOccError(f"engine {Path(engine_path).name}: manifest {path.name} not found beside it")
    try:
        return Manifest.from_json(path.read_text())
    except EasyOccError as exc:
        raise EasyOccError(f"engine manifest {path.name}: {exc}") from None


def check_engine_manifest(manifest: Manifest, tensorrt_version: str, compute_capability: str, where: str) -> None:
    """An engine runs only on the TensorRT major.minor and GPU compute capability it was built for."""
    if manifest.engine is None:
        raise EasyOccError(f"{where}: the manifest has no engine section (TensorRT version, GPU, precision)")
    built = parse_version(manifest.engine.tensorrt_version)
    here = parse_version(tensorrt_version)
    if built != here:
        raise EasyOccError(
            f"{where}: built with TensorRT {manifest.engine.tensorrt_version}, this runtime has {tensorrt_version}; rebuild the engine"
        )
    if str(manifest.engine.compute_capability) != str(compute_capability):
        raise EasyOccError(
            f"{where}: built for compute capability {manifest.engine.compute_capability}, this GPU is {compute_capability}; rebuild the engine"
        )


def split_io(io: dict[str, tuple[bool, str, tuple]]) -> tuple[dict, dict]:
    """{name: (is_input, dtype, shape)} -> ({inputs: (dtype, shape)}, {outputs: (dtype, shape)})."""
    inputs = {n: (d, tuple(s)) for n, (is_in, d, s) in io.items() if is_in}
    outputs = {n: (d, tuple(s)) for n, (is_in, d, s) in io.items() if not is_in}
    for name, (_, shape) in {**inputs, **outputs}.items():
        if any(int(v) < 0 for v in shape):
            raise EasyOccError(
                f"engine tensor '{name}' has a dynamic shape {list(shape)}; the runtime needs static shapes"
            )
    return inputs, outputs


def _io_bindings(engine, trt) -> dict:
    """TensorRT 8.5/8.6: {name: (is_input, dtype, shape)} in binding order."""
    return {
        engine.get_binding_name(i): (
            bool(engine.binding_is_input(i)),
            np.dtype(trt.nptype(engine.get_binding_dtype(i))).name,
            tuple(engine.get_binding_shape(i)),
        )
        for i in range(engine.num_bindings)
    }


def _io_tensors(engine, trt) -> dict:
    """TensorRT >= 9: {name: (is_input, dtype, shape)} in I/O tensor order."""
    io = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        io[name] = (
            engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
            np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name,
            tuple(engine.get_tensor_shape(name)),
        )
    return io


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise EasyOccError("tensorrt: a CUDA graph needs cuda-python (pip install cuda-python)") from None
    return cudart


def _cuda_check(result, what: str):
    """cuda-python calls return (error, *values); raise on an error, return the values."""
    error, *values = result
    if int(error) != 0:
        raise EasyOccError(f"tensorrt: {what} failed with CUDA error {int(error)}")
    return values[0] if len(values) == 1 else values


class TensorRTRunner(Runner):
    """A TensorRT engine as a runner. device: CUDA device index; cuda_graph: capture the enqueue."""

    name = "tensorrt"

    def __init__(self, path, device: int = 0, cuda_graph: bool = False):
        super().__init__()
        self.path = Path(path)
        self.device_index = device
        self.cuda_graph = cuda_graph
        self.manifest = None
        self.api = None
        self._ctx = None

    def _activate(self) -> None:
        try:
            import pycuda.driver as cuda
            import tensorrt as trt
        except ImportError as exc:
            raise EasyOccError(
                f"tensorrt backend needs '{exc.name}' (pip install 'easyocc[trt]', or JetPack's python3-libnvinfer)"
            ) from None
        if not self.path.is_file():
            raise EasyOccError(f"engine not found: {self.path}")
        where = f"engine {self.path.name}"
        manifest = load_sidecar(self.path)
        self.api = tensorrt_api(trt.__version__)
        cuda.init()
        device = cuda.Device(self.device_index)
        self._ctx = device.make_context()  # current in this thread until popped below
        try:
            check_engine_manifest(manifest, trt.__version__, "{}.{}".format(*device.compute_capability()), where)
            self._trt_logger = trt.Logger(trt.Logger.WARNING)
            self._trt_runtime = trt.Runtime(self._trt_logger)
            self._engine = self._trt_runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self._engine is None:
                raise EasyOccError(f"{where}: TensorRT could not deserialize it (see the TensorRT log above)")
            io = _io_bindings(self._engine, trt) if self.api == BINDINGS_API else _io_tensors(self._engine, trt)
            inputs, outputs = split_io(io)
            check_manifest_io(manifest, inputs, outputs, where)
            check_contract(manifest, where)
            self._context = self._engine.create_execution_context()
            if self._context is None:
                raise EasyOccError(f"{where}: could not create an execution context (GPU memory?)")
            self._host, self._device_mem = {}, {}
            for name, (_, dtype, shape) in io.items():
                self._host[name] = cuda.pagelocked_empty(shape, np.dtype(dtype))
                self._device_mem[name] = cuda.mem_alloc(max(self._host[name].nbytes, 1))
            self._input_names, self._output_names = list(inputs), list(outputs)
            self._bindings = [int(self._device_mem[name]) for name in io]  # binding order for v2
            if self.api == TENSORS_API:
                for name in io:
                    if not self._context.set_tensor_address(name, int(self._device_mem[name])):
                        raise EasyOccError(f"{where}: set_tensor_address failed for tensor '{name}'")
            self._stream = cuda.Stream()
            self._cuda = cuda
            self._graph_exec = None
            self.manifest = manifest
        finally:
            self._ctx.pop()

    def _deactivate(self) -> None:
        if self._ctx is None:
            return
        self._ctx.push()
        try:
            if self._graph_exec is not None:
                _import_cudart().cudaGraphExecDestroy(self._graph_exec)
            for memory in self._device_mem.values():
                memory.free()
            self._context = self._engine = None
            self._host, self._device_mem = {}, {}
        finally:
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None

    def _static_changed(self, names: set[str]) -> None:
        self._ctx.push()
        try:
            for name in names:
                np.copyto(self._host[name], self._static[name])
                self._cuda.memcpy_htod_async(self._device_mem[name], self._host[name], self._stream)
            self._stream.synchronize()
        finally:
            self._ctx.pop()

    def _enqueue(self) -> None:
        if self.api == TENSORS_API:
            ok = self._context.execute_async_v3(self._stream.handle)
        else:
            ok = self._context.execute_async_v2(self._bindings, self._stream.handle)
        if not ok:
            call = "execute_async_v3" if self.api == TENSORS_API else "execute_async_v2"
            raise EasyOccError(f"tensorrt: {call} returned False for engine {self.path.name}")

    def _capture_graph(self) -> None:
        cudart = _import_cudart()
        stream = self._stream.handle
        _cuda_check(
            cudart.cudaStreamBeginCapture(stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal),
            "cudaStreamBeginCapture",
        )
        try:
            self._enqueue()
        finally:
            graph = _cuda_check(cudart.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        self._graph_exec = _cuda_check(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        _cuda_check(cudart.cudaGraphDestroy(graph), "cudaGraphDestroy")

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        self._ctx.push()
        try:
            for name in self._input_names:
                if name in self._static:
                    continue  # on the device since set_static
                np.copyto(self._host[name], feed[name])
                cuda.memcpy_htod_async(self._device_mem[name], self._host[name], self._stream)
            if self._graph_exec is not None:
                _cuda_check(_import_cudart().cudaGraphLaunch(self._graph_exec, self._stream.handle), "cudaGraphLaunch")
            else:
                self._enqueue()
            for name in self._output_names:
                cuda.memcpy_dtoh_async(self._host[name], self._device_mem[name], self._stream)
            self._stream.synchronize()
            if self.cuda_graph and self._graph_exec is None:
                self._capture_graph()  # after one plain run, as TensorRT requires
            return {name: self._host[name].copy() for name in self._output_names}
        finally:
            self._ctx.pop()

    def describe(self) -> str:
        engine = self.manifest.engine if self.manifest else None
        precision = f" {engine.precision}" if engine else ""
        return f"tensorrt{precision} ({self.api} API{', CUDA graph' if self.cuda_graph else ''})"
