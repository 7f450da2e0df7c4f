"""ONNX export: the deploy wrapper's contract, the manifest in the metadata, parity and fp16 checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from easyocc.export.feeds import synthetic_feeds  # noqa: E402
from easyocc.export.onnx_model import read_manifest  # noqa: E402
from easyocc.export.parity import compare_onnx_to_torch  # noqa: E402
from easyocc.export.wrapper import semantics_and_confidence  # noqa: E402
from easyocc.models import bundled_model  # noqa: E402
from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402

PROJECT = Path(__file__).resolve().parents[2]
DEMO_CHECKPOINT = bundled_model(".pt")


def test_in_graph_argmax_equals_torch_argmax_with_ties():
    logits = torch.randn(18, 5, 4, 3)
    logits[3, 0, 0, 0] = logits[7, 0, 0, 0] = logits[:, 0, 0, 0].max() + 1  # a tie: argmax takes class 3
    semantics, confidence = semantics_and_confidence(logits, torch.arange(18.0).view(-1, 1, 1, 1))
    assert semantics.dtype == torch.uint8 and semantics[0, 0, 0] == 3
    np.testing.assert_array_equal(semantics.numpy(), logits.argmax(0).numpy())
    np.testing.assert_allclose(confidence.numpy(), torch.softmax(logits, 0).amax(0).numpy(), rtol=1e-6)


def test_export_writes_the_contract_and_manifest(standin_onnx):
    result, _, manifest = standin_onnx
    model = onnx.load(str(result.path))
    assert read_manifest(result.path).to_dict() == manifest.to_dict()
    assert model.opset_import[0].version == 17
    types = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]}
    assert types == {"images": 2, "vt_uv": 1, "vt_weights": 1, "semantics": 2, "confidence": 1}
    ops = {node.op_type for node in model.graph.node}
    assert "GridSample" in ops and "ArgMax" not in ops
    assert result.operators["GridSample"] == 1


def test_parity_on_synthetic_frames(standin_onnx, rig):
    result, model, manifest = standin_onnx
    feeds = [("synthetic", feed) for feed in synthetic_feeds(manifest, rig, 2)]
    report = compare_onnx_to_torch(model, result.path, feeds, 18, threads=1)
    assert report.passed and report.agreement >= 0.999
    assert report.max_confidence_diff < 1e-5
    data = report.to_dict()
    assert data["frames_by_source"] == {"synthetic": 2}
    json.dumps(data)


def test_parity_failure_names_the_frame(standin_onnx, rig):
    from tests.export.standin import StandInModel

    result, _, manifest = standin_onnx
    torch.manual_seed(123)
    other = StandInModel(len(rig)).eval()  # different weights than the exported model
    feeds = [("synthetic", feed) for feed in synthetic_feeds(manifest, rig, 1)]
    report = compare_onnx_to_torch(other, result.path, feeds, 18, threads=1)
    assert not report.passed
    with pytest.raises(EasyOccError, match=r"parity failed: synthetic frame 0 agrees on .* below the required 99.90 %"):
        report.raise_if_failed()


def test_fp16_check_flags_a_module_beyond_float16_range(standin, rig):
    import copy

    from easyocc.export.fp16_check import check_fp16

    model, manifest = standin
    feeds = [("synthetic", feed) for feed in synthetic_feeds(manifest, rig, 1)]
    report = check_fp16(model, manifest, feeds)
    assert report.overflowing == [] and report.parity.agreement > 0.95
    hot = copy.deepcopy(model)
    with torch.no_grad():
        hot.encoder[0].weight.mul_(1e5)
    flagged = check_fp16(hot, manifest, feeds)
    assert "encoder.0" in flagged.overflowing
    assert flagged.to_dict()["largest_activations"]["encoder.0"] > 65504


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A freshly initialised tiny EasyOcc model (the real network) saved as a checkpoint."""
    model_pkg = pytest.importorskip("easyocc.training.model")
    from easyocc.runtime.contract.grid import GridSpec

    grid = GridSpec(lower=(-16.0, -16.0, -1.0), upper=(16.0, 16.0, 2.2), voxel_size=0.8)
    config = model_pkg.ModelConfig(
        backbone_width=16,
        neck_channels=16,
        voxel_channels=8,
        bev_channels=16,
        bev_blocks=1,
        grid=grid.to_dict(),
        input_size=(128, 64),
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    model_pkg.save_checkpoint(path, model_pkg.build_model(config).eval(), config)
    return path


def test_cli_exports_tiny_real_model_with_lint_and_parity(tiny_checkpoint, tmp_path, capsys):
    from easyocc.commands.export import main

    out = tmp_path / "tiny.onnx"
    code = main(
        [
            "onnx",
            "--model",
            str(tiny_checkpoint),
            "--out",
            str(out),
            "--frames",
            "2",
            "--json",
            str(tmp_path / "report.json"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["lint"]["ok"], report["lint"]
    assert report["parity"]["passed"] and report["parity"]["agreement"] >= 0.999
    assert report["export"]["operators"]["GridSample"] == 1
    assert "parity PASS" in capsys.readouterr().err
    assert read_manifest(out).model_config["input_size"] == [128, 64]


def test_cli_parity_with_real_frames(tiny_checkpoint, tmp_path, nuscenes_root, capsys):
    from easyocc.commands.export import main

    out = tmp_path / "tiny.onnx"
    assert main(["onnx", "--model", str(tiny_checkpoint), "--out", str(out), "--skip-parity"]) == 0
    capsys.readouterr()
    code = main(
        [
            "parity",
            "--model",
            str(tiny_checkpoint),
            "--model",
            str(out),
            "--frames",
            "1",
            "--data",
            str(nuscenes_root),
            "--real-frames",
            "1",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["frames_by_source"] == {"dataset": 1, "synthetic": 1}


@pytest.mark.slow
def test_demo_model_exports_with_parity(tmp_path):
    """The bundled model exports, lints clean and keeps >= 99.9 % class agreement (real frames where present)."""
    if not DEMO_CHECKPOINT.is_file():
        pytest.skip(f"bundled demo model not found at {DEMO_CHECKPOINT}")
    from easyocc.commands.export import main
    from tests.conftest import NUSCENES_SCENE

    real = ["--data", str(NUSCENES_SCENE), "--real-frames", "1"] if (NUSCENES_SCENE / "v1.0-mini").is_dir() else []
    argv = ["onnx", "--model", str(DEMO_CHECKPOINT), "--out", str(tmp_path / "demo.onnx"), "--frames", "1"]
    code = main([*argv, *real, "--json", str(tmp_path / "demo.json")])
    report = json.loads((tmp_path / "demo.json").read_text())
    assert code == 0 and report["lint"]["ok"] and report["parity"]["passed"]
    assert report["parity"]["worst_frame_agreement"] >= 0.999


def test_cli_torchscript_runs_in_the_runtime_and_equals_onnx(tiny_checkpoint, tmp_path, rig):
    """The TorchScript export goes through the runtime's torch backend with eager's exact classes, and
    agrees with the ONNX export of the same checkpoint on the same feed."""
    from easyocc.runtime.backends import create_runner

    from easyocc.commands.export import main

    script, onnx_path = tmp_path / "tiny.ts", tmp_path / "tiny.onnx"
    argv = ["--model", str(tiny_checkpoint), "--frames", "1", "--json", str(tmp_path / "ts.json")]
    assert main(["torchscript", *argv, "--out", str(script)]) == 0
    check = json.loads((tmp_path / "ts.json").read_text())["parity"]
    assert check["passed"] and check["agreement"] == 1.0 and check["max_confidence_diff"] < 1e-6
    assert main(["onnx", "--model", str(tiny_checkpoint), "--out", str(onnx_path), "--skip-parity"]) == 0
    with create_runner(script, "torch", threads=1) as torch_runner, create_runner(onnx_path) as ort_runner:
        assert torch_runner.manifest.to_dict() == ort_runner.manifest.to_dict()
        feed = synthetic_feeds(ort_runner.manifest, rig, 1, seed=5)[0]
        got, expected = torch_runner.infer(feed), ort_runner.infer(feed)
    assert np.mean(got["semantics"] == expected["semantics"]) >= 0.999
    assert np.abs(got["confidence"] - expected["confidence"]).max() < 1e-4


def test_torchscript_that_differs_from_eager_is_refused(tiny_checkpoint, tmp_path, rig):
    """A TorchScript file compared against other weights fails with the frame and agreement named."""
    import copy

    from easyocc.export.torchscript_export import compare_torchscript, export_torchscript
    from easyocc.training.model import load_checkpoint, manifest_for

    model, config = load_checkpoint(tiny_checkpoint)
    manifest = manifest_for(config)
    path = export_torchscript(model, manifest, tmp_path / "tiny.ts")
    other = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn_like(parameter))
    feeds = [("synthetic", feed) for feed in synthetic_feeds(manifest, rig, 1)]
    assert compare_torchscript(model, path, feeds, 18).passed
    report = compare_torchscript(other, path, feeds, 18)
    assert not report.passed and report.agreement < 1.0
    with pytest.raises(
        EasyOccError, match=r"parity failed: synthetic frame 0 agrees on .* below the required 100.00 %"
    ):
        report.raise_if_failed()
