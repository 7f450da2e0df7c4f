"""Numeric parity of the deployed ONNX model (ONNX Runtime, CPU) against torch eager, per frame.

Both sides are the runtime's runners (torch eager: the deploy wrapper in a `TorchRunner`) and go
through the runtime's one comparator (`easyocc.runtime.backends.compare`), which reports the class
agreement and the confidence difference per frame and overall. Export fails when the agreement is
below the threshold (99.9 % by default).
"""

from __future__ import annotations

from easyocc.runtime.backends.compare import DEFAULT_MIN_AGREEMENT, ParityReport, compare_runners
from easyocc.runtime.contract.manifest import Manifest

TORCH_EAGER = "torch eager (CPU, float32)"


def torch_eager_runner(model, manifest: Manifest, num_classes: int | None = None):
    """The runtime's torch runner around `model` (torch, model contract) behind the deploy wrapper
    (argmax over `num_classes`, default the manifest's classes)."""
    from easyocc.export.wrapper import DeployWrapper
    from easyocc.runtime.backends.torch_runner import TorchRunner

    wrapper = (
        model if isinstance(model, DeployWrapper) else DeployWrapper(model, num_classes or len(manifest.class_names))
    )
    return TorchRunner(module=wrapper, manifest=manifest)


def compare_onnx_to_torch(
    model,
    onnx_path,
    feeds,
    num_classes: int,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    threads: int | None = None,
) -> ParityReport:
    """Every (source, feed) pair through torch eager and ONNX Runtime (CPU provider), compared."""
    from easyocc.export.onnx_model import read_manifest
    from easyocc.runtime.backends import create_runner

    reference = torch_eager_runner(model, read_manifest(onnx_path), num_classes)
    candidate = create_runner(onnx_path, "onnxruntime", threads=threads, providers=["CPUExecutionProvider"])
    (report,) = compare_runners(
        [reference, candidate], feeds, min_agreement, labels=[TORCH_EAGER, "ONNX Runtime (CPU)"]
    )
    return report
