"""Checkpoint -> TorchScript with the deployed-model contract, for the runtime's torch backend.

The traced module is the same `DeployWrapper` the ONNX export traces (uint8 images and the
view-transform tables in; uint8 semantics and confidence out), so `easyocc bench` can put torch
(CPU or CUDA) beside ONNX Runtime and TensorRT on identical inputs. The manifest travels inside the
file as the TorchScript extra file `easyocc_manifest`, where `runtime.backends.torch_runner` reads it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from export.onnx_export import example_inputs
from export.wrapper import DeployWrapper, reference_outputs
from runtime.fileio import atomic_path
from runtime.manifest import ONNX_METADATA_KEY, OUTPUT_CONFIDENCE, OUTPUT_SEMANTICS, Manifest


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


def compare_torchscript(model, path, feeds: list[dict], num_classes: int) -> dict:
    """The saved file through the runtime's torch runner against torch eager: agreement and max |diff|."""
    from runtime.backends import create_runner

    agree, voxels, max_diff = 0, 0, 0.0
    with create_runner(path, "torch") as runner:
        for feed in feeds:
            expected_sem, expected_conf = reference_outputs(model, feed, num_classes)
            got = runner.infer(feed)
            agree += int(np.sum(got[OUTPUT_SEMANTICS] == expected_sem))
            voxels += expected_sem.size
            max_diff = max(max_diff, float(np.abs(got[OUTPUT_CONFIDENCE] - expected_conf).max()))
    return {"frames": len(feeds), "agreement": agree / max(voxels, 1), "max_confidence_diff": max_diff}
