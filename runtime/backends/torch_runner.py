"""torch backend, for development and comparison: a TorchScript file or an in-memory module, CPU or CUDA.

The module follows the deployed-model contract (export's deploy wrapper): forward(images uint8
[N_cam, H, W, 3], vt_uv float32 [N_cam, N_cell, 2], vt_weights float32 [N_cam, N_cell]) ->
(semantics uint8 [X, Y, Z], confidence float32 [X, Y, Z]) or a dict with those keys. A training
model returning logits float32 [1, C, X, Y, Z] from batched inputs runs with logits_model=True
(softmax and argmax are then taken here). The manifest is a TorchScript extra file named ONNX_METADATA_KEY, or
the sidecar <file>.json. torch is imported only in `activate`; runtime/ never imports training/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from easyocc.runtime.backends.base import Runner, check_contract
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import (
    INPUT_IMAGES,
    INPUT_VT_UV,
    INPUT_VT_WEIGHTS,
    ONNX_METADATA_KEY,
    OUTPUT_CONFIDENCE,
    OUTPUT_SEMANTICS,
    Manifest,
)


class TorchRunner(Runner):
    """path: TorchScript file (torch.jit.save); or module + manifest given directly; device: 'cpu' or 'cuda'."""

    name = "torch"

    def __init__(
        self,
        path=None,
        module=None,
        manifest: Manifest | None = None,
        device: str = "cpu",
        threads: int | None = None,
        logits_model: bool = False,
    ):
        super().__init__()
        self.logits_model = logits_model
        if path is None and module is None:
            raise EasyOccError("torch backend needs a TorchScript path or a module")
        self.path = Path(path) if path is not None else None
        self.module, self.device, self.threads = module, device, threads
        self._given_manifest = manifest

    def _activate(self) -> None:
        try:
            import torch
        except ImportError:
            raise EasyOccError("torch backend needs torch (pip install 'easyocc[train]')") from None
        if self.threads:
            torch.set_num_threads(int(self.threads))
        manifest = self._given_manifest
        if self.module is None:
            if not self.path.is_file():
                raise EasyOccError(f"model not found: {self.path}")
            extra = {ONNX_METADATA_KEY: ""}
            try:
                self.module = torch.jit.load(str(self.path), map_location=self.device, _extra_files=extra)
            except RuntimeError as exc:
                raise EasyOccError(
                    f"torch cannot load {self.path} as TorchScript: {str(exc).splitlines()[0]}"
                ) from None
            if manifest is None:
                text = extra[ONNX_METADATA_KEY]
                sidecar = self.path.with_name(self.path.name + ".json")
                if not text and sidecar.is_file():
                    text = sidecar.read_text()
                if not text:
                    raise EasyOccError(
                        f"model {self.path.name}: no manifest (TorchScript extra file or {sidecar.name})"
                    )
                manifest = Manifest.from_json(text if isinstance(text, str) else text.decode())
        if manifest is None:
            raise EasyOccError("torch backend: a module given directly needs a manifest")
        check_contract(manifest, f"torch model {manifest.model_name}")
        self.module = self.module.to(self.device).eval()
        self._torch = torch
        self.manifest = manifest

    def _deactivate(self) -> None:
        pass

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        args = [torch.from_numpy(feed[name]).to(self.device) for name in (INPUT_IMAGES, INPUT_VT_UV, INPUT_VT_WEIGHTS)]
        with torch.inference_mode():
            if self.logits_model:  # a training model: batched inputs, logits [1, C, X, Y, Z]
                probs = torch.softmax(self.module(*(a[None] for a in args)).float(), dim=1)[0]
                confidence, semantics = probs.max(dim=0)
                out = (semantics.to(torch.uint8), confidence)
            else:
                out = self.module(*args)
            if isinstance(out, dict):
                out = (out[OUTPUT_SEMANTICS], out[OUTPUT_CONFIDENCE])
        semantics, confidence = out
        return {
            OUTPUT_SEMANTICS: semantics.detach().cpu().numpy(),
            OUTPUT_CONFIDENCE: confidence.detach().cpu().numpy(),
        }

    @property
    def on_host_cpu(self) -> bool:
        return str(self.device).startswith("cpu")

    def describe(self) -> str:
        return f"torch {self.device}, {self.threads or 'default'} threads"
