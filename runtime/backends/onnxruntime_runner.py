"""ONNX Runtime backend: providers TensorRT > CUDA > CPU (those installed), IO binding on the GPU.

The manifest comes from the model's metadata_props (key easyocc.runtime.contract.manifest.ONNX_METADATA_KEY), read
through the session, so the onnx package is not needed at run time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from easyocc.runtime.backends.base import Runner, check_contract, check_manifest_io
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import ONNX_METADATA_KEY, Manifest

PROVIDER_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# ONNX element type names (as onnxruntime reports them) -> numpy dtype names.
ORT_TYPES = {
    "tensor(uint8)": "uint8",
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
    "tensor(int8)": "int8",
}


def select_providers(available, requested=None) -> list[str]:
    """Execution providers to use, best first: `requested` (all must be available), else the preferred
    ones among `available` (TensorRT, CUDA, CPU)."""
    available = list(available)
    if requested:
        absent = [p for p in requested if p not in available]
        if absent:
            raise EasyOccError(f"onnxruntime: providers {absent} are not available (installed: {', '.join(available)})")
        return list(requested)
    chosen = [p for p in PROVIDER_PREFERENCE if p in available]
    if not chosen:
        raise EasyOccError(f"onnxruntime: none of {list(PROVIDER_PREFERENCE)} is available ({', '.join(available)})")
    return chosen


def manifest_from_metadata(metadata: dict, where: str) -> Manifest:
    """The manifest stored in ONNX metadata_props; raises naming the model when absent or invalid."""
    text = metadata.get(ONNX_METADATA_KEY)
    if not text:
        raise EasyOccError(
            f"{where}: no EasyOcc manifest in the ONNX metadata (key '{ONNX_METADATA_KEY}'); export it with easyocc export"
        )
    try:
        return Manifest.from_json(text)
    except EasyOccError as exc:
        raise EasyOccError(f"{where}: {exc}") from None


class OnnxRuntimeRunner(Runner):
    """An onnxruntime.InferenceSession as a runner.

    threads: intra-op threads (None = onnxruntime's default, all cores); inter_op_threads: between
    independent nodes; providers: explicit list or None for the preference order; io_binding: True,
    False or 'auto' (on when the first provider is a GPU one); spin: let idle worker threads spin
    (lower latency, but burns CPU that the rest of the pipeline may need).
    """

    name = "onnxruntime"

    def __init__(
        self,
        path,
        threads: int | None = None,
        inter_op_threads: int = 1,
        providers=None,
        io_binding="auto",
        spin: bool = False,
    ):
        super().__init__()
        self.path = Path(path)
        self.threads = threads
        self.inter_op_threads = inter_op_threads
        self.requested_providers = providers
        self.io_binding = io_binding
        self.spin = spin
        self.session = None
        self.providers: list[str] = []
        self._binding = None
        self._device = "cpu"

    def _activate(self) -> None:
        import onnxruntime as ort

        if not self.path.is_file():
            raise EasyOccError(f"model not found: {self.path}")
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        options.inter_op_num_threads = int(self.inter_op_threads)
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
        providers = select_providers(ort.get_available_providers(), self.requested_providers)
        try:
            session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
            raise EasyOccError(f"onnxruntime cannot load {self.path}: {str(exc).splitlines()[0]}") from None
        where = f"model {self.path.name}"
        manifest = manifest_from_metadata(session.get_modelmeta().custom_metadata_map, where)
        check_manifest_io(manifest, _io(session.get_inputs()), _io(session.get_outputs()), where)
        check_contract(manifest, where)
        self.session, self.manifest, self.providers = session, manifest, session.get_providers()
        on_gpu = bool(self.providers) and self.providers[0] in GPU_PROVIDERS
        self._device = "cuda" if on_gpu else "cpu"
        use_binding = on_gpu if self.io_binding == "auto" else bool(self.io_binding)
        self._binding = session.io_binding() if use_binding else None
        if self._binding is not None:
            for spec in manifest.outputs:
                self._binding.bind_output(spec.name, "cpu")

    def _deactivate(self) -> None:
        self.session = None
        self._binding = None

    def _static_changed(self, names: set[str]) -> None:
        if self._binding is None:
            return
        import onnxruntime as ort

        for name in names:  # uploaded to the device once per rig, not per frame
            value = ort.OrtValue.ortvalue_from_numpy(self._static[name], self._device, 0)
            self._binding.bind_ortvalue_input(name, value)

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [spec.name for spec in self.manifest.outputs]
        if self._binding is None:
            return dict(zip(names, self.session.run(names, feed)))
        for name, array in feed.items():
            if name not in self._static:
                self._binding.bind_cpu_input(name, array)
        self.session.run_with_iobinding(self._binding)
        return dict(zip(names, self._binding.copy_outputs_to_cpu()))

    @property
    def on_host_cpu(self) -> bool:
        return self._device == "cpu"

    def describe(self) -> str:
        threads = self.threads or "default"
        return f"onnxruntime {'/'.join(p.replace('ExecutionProvider', '') for p in self.providers)}, {threads} threads"


def _io(args) -> dict[str, tuple[str, tuple]]:
    return {a.name: (ORT_TYPES.get(a.type, a.type), tuple(a.shape)) for a in args}
