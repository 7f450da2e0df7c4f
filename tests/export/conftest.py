"""Fixtures for export tests: a stand-in model exported once per session, its manifest and rig."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def rig():
    from easyocc.calibration import default_rig

    return default_rig()


@pytest.fixture(scope="session")
def standin(rig):
    """(model, manifest): the contract-following stand-in model with a tiny grid and image size."""
    import torch

    from tests.export.standin import StandInModel, standin_manifest

    torch.manual_seed(0)
    return StandInModel(len(rig)).eval(), standin_manifest(rig.names)


@pytest.fixture(scope="session")
def standin_onnx(standin, tmp_path_factory):
    """The stand-in exported with export_onnx: (ExportResult, model, manifest)."""
    from easyocc.export.onnx_export import export_onnx

    model, manifest = standin
    result = export_onnx(model, manifest, tmp_path_factory.mktemp("standin") / "standin.onnx")
    return result, model, manifest
