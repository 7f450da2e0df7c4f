"""Checkpoint -> TorchScript with the deployed-model contract, for the runtime's torch backend.

The traced module is the same `DeployWrapper` the ONNX export traces (uint8 images and the
view-transform tables in; uint8 semantics and confidence out), so `easyocc bench` can put torch
(CPU or CUDA) beside ONNX Runtime and TensorRT on identical inputs. The manifest travels inside the
file as the TorchScript extra file `easyocc_manifest`, where `easyocc.runtime.backends.torch_runner` reads it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from easyocc.export.onnx_export import example_inputs
from easyocc.export.wrapper import DeployWrapper
from easyocc.runtime.backends.compare import ParityReport, compare_runners
from easyocc.runtime.contract.fileio import atomic_path
from easyocc.runtime.contract.manifest import ONNX_METADATA_KEY, Manifest


def export_torchscript(model, manifest: Manifest, out) -> Path:
    """Trace `model` (torch, model contract) behind the deploy wrapper and save it to `out` (atomic)."""
    import torch

    wrapper = DeployWrapper(model, len(manifest.class_names)).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python values in the graph
        traced = torch.jit.trace(wrapper, example_inputs(manifest), check_trace=False)
    out = Path(out)
    with atomic_path(out) as tmp:
        torch.jit.save(traced, str(tmp), _extra_files={ONNX_METADATA_KEY: manifest.to_json()})
    return out


def compare_torchscript(model, path, feeds, num_classes: int) -> ParityReport:
    """Every (source, feed) through the saved file in the runtime's torch runner against torch eager.

    Tracing must not change a single class, so the report requires 100 % agreement.
    """
    from easyocc.export.parity import TORCH_EAGER, torch_eager_runner
    from easyocc.runtime.backends import create_runner

    with create_runner(path, "torch") as candidate:
        reference = torch_eager_runner(model, candidate.manifest, num_classes)
        labels = [TORCH_EAGER, "TorchScript (runtime torch runner, CPU)"]
        (report,) = compare_runners([reference, candidate], feeds, min_agreement=1.0, labels=labels)
    return report
