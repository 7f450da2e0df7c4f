"""torch backend: a TorchScript module with the tiny model's maths gives ONNX Runtime's outputs."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.runtime.backends import create_runner
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import ONNX_METADATA_KEY
from easyocc.runtime.contract.view_feed import view_transform_feed
from easyocc.runtime.occupancy import OccupancyRuntime

from tests.runtime.stream_fixtures import (
    FREE_BELOW,
    grey_frame,
    small_rig,
    tiny_manifest,
    tiny_model,  # noqa: F401  (pytest fixture)
)

torch = pytest.importorskip("torch", reason="torch is not installed (the 'train' extra)")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class TinyTorch(torch.nn.Module):
    """The same maths as tests.runtime.stream_fixtures.build_tiny_model."""

    def __init__(self, grid_shape):
        super().__init__()
        self.grid_shape = tuple(grid_shape)

    def forward(self, images, vt_uv, vt_weights):
        x = images.float().permute(0, 3, 1, 2) / 255
        sampled = torch.nn.functional.grid_sample(
            x, vt_uv[:, :, None, :], mode="bilinear", padding_mode="zeros", align_corners=False
        )  # [N, 3, C, 1]
        bright = (sampled * vt_weights[:, None, :, None]).sum(dim=(0, 1, 3)) / 3
        klass = torch.floor(torch.clamp(bright * 17, max=16.5))
        semantics = torch.where(bright < FREE_BELOW, torch.full_like(klass, 17), klass)
        return semantics.reshape(self.grid_shape).to(torch.uint8), bright.reshape(self.grid_shape)


@pytest.fixture(scope="module")
def torchscript(tmp_path_factory):
    manifest = tiny_manifest()
    path = tmp_path_factory.mktemp("torch") / "tiny.ts"
    n_cam, n_cell = manifest.input("vt_weights").shape
    width, height = manifest.input_size
    example = (
        torch.zeros(n_cam, height, width, 3, dtype=torch.uint8),
        torch.zeros(n_cam, n_cell, 2),
        torch.ones(n_cam, n_cell),
    )
    module = torch.jit.trace(TinyTorch(manifest.grid_spec.shape), example)
    torch.jit.save(module, str(path), _extra_files={ONNX_METADATA_KEY: manifest.to_json()})
    return path


def test_torchscript_runner_matches_onnxruntime(torchscript, tiny_model):  # noqa: F811
    with create_runner(tiny_model) as ort_runner, create_runner(torchscript, "torch", threads=1) as torch_runner:
        feed = view_transform_feed(ort_runner.manifest, small_rig())
        feed["images"] = np.random.default_rng(1).integers(0, 255, (6, 64, 96, 3), dtype=np.uint8)
        expected, got = ort_runner.infer(feed), torch_runner.infer(feed)
    assert got["semantics"].dtype == np.uint8 and got["confidence"].dtype == np.float32
    assert np.abs(got["confidence"] - expected["confidence"]).max() < 1e-5
    assert np.mean(got["semantics"] == expected["semantics"]) > 0.999  # floor() at a boundary may differ


def test_torch_runtime_process(torchscript):
    rig = small_rig()
    with OccupancyRuntime(torchscript, rig=rig, backend="torch") as runtime:
        result = runtime.process(grey_frame(rig, 150, stamp_us=1))
        assert "torch" in runtime.backend_name
    assert len(result.voxels) > 0


def test_module_without_manifest_is_refused():
    with pytest.raises(EasyOccError, match="a module given directly needs a manifest"):
        create_runner(None, "torch", module=TinyTorch((20, 20, 4))).activate()
