"""Inference backends as runners (activate / infer / deactivate): ONNX Runtime, TensorRT, torch.

Only this package's factory decides which library to import, and each backend imports its library
lazily, so `import easyocc.runtime.backends` needs none of them.
"""

from __future__ import annotations

from pathlib import Path

from easyocc.runtime.backends.base import Runner, check_feed
from easyocc.runtime.contract.errors import EasyOccError

BACKENDS = ("onnxruntime", "tensorrt", "torch")


def create_runner(model_path, backend: str = "onnxruntime", threads: int | None = None, **options) -> Runner:
    """A (not yet active) runner for `model_path` on `backend`; options go to the runner's constructor."""
    if backend == "onnxruntime":
        from easyocc.runtime.backends.onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(model_path, threads=threads, **options)
    if backend == "tensorrt":
        from easyocc.runtime.backends.tensorrt_runner import TensorRTRunner

        return TensorRTRunner(model_path, **options)
    if backend == "torch":
        from easyocc.runtime.backends.torch_runner import TorchRunner

        return TorchRunner(model_path, threads=threads, **options)
    raise EasyOccError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")


def backend_for_path(path) -> str:
    """The backend a model file implies: .onnx -> onnxruntime, .engine/.plan -> tensorrt, .pt/.ts -> torch."""
    suffix = Path(path).suffix.lower()
    for backend, suffixes in (
        ("onnxruntime", (".onnx",)),
        ("tensorrt", (".engine", ".plan", ".trt")),
        ("torch", (".pt", ".ts", ".pt2")),
    ):
        if suffix in suffixes:
            return backend
    raise EasyOccError(f"cannot tell the backend of {path} from its suffix; name one with --backend")


__all__ = ["BACKENDS", "Runner", "backend_for_path", "check_feed", "create_runner"]
