"""The in-graph resize (export --resize-in-graph): exact INTER_AREA inside the graph, the exported
model's contract, its parity against the CPU resize on real frames, and its errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from easyocc.runtime.contract.errors import EasyOccError


def _smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (7, 7), 0)


@pytest.mark.parametrize(
    "camera,network",
    [((1600, 900), (704, 256)), ((1600, 900), (352, 128)), ((1000, 700), (353, 129)), ((704, 256), (704, 256))],
)
def test_graph_resize_is_cv2_inter_area(camera, network):
    """Block-diagonal area weights reproduce cv2.INTER_AREA to within one grey level on 0.01 % of pixels."""
    import torch
    from easyocc.export.wrapper import GraphResize

    image = _smooth_image(camera[1], camera[0])
    expected = cv2.resize(image, network, interpolation=cv2.INTER_AREA).astype(np.float64)
    resized = GraphResize(camera, network)(torch.from_numpy(image).float()[None])[0].numpy()
    assert resized.shape == (network[1], network[0], 3)
    delta = np.abs(resized - expected)
    assert delta.max() <= 1.0 and np.mean(delta > 0) < 1e-4


def test_area_weights_are_exact_coverage():
    from easyocc.export.wrapper import area_weights

    weights = area_weights(25, 11)  # 1600 -> 704 in blocks of 25 -> 11
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=1e-6)  # each output averages
    np.testing.assert_allclose(weights[:, 0][:3], [11 / 25, 11 / 25, 3 / 25], rtol=1e-6)  # 2.27 pixels
    with pytest.raises(EasyOccError, match=r"^area resize shrinks only: 3 -> 4 pixels$"):
        area_weights(3, 4)


def test_in_graph_resize_errors(rig):
    from easyocc.calibration import CameraRig
    from easyocc.export.in_graph_resize import rig_camera_size
    from easyocc.export.wrapper import GraphResize

    with pytest.raises(EasyOccError, match=r"^in-graph resize shrinks only: camera images 320x180 are smaller"):
        GraphResize((320, 180), (352, 128))
    assert rig_camera_size(rig) == (1600, 900)
    mixed = CameraRig([rig.cameras[0].resized(0.5, 0.5), *rig.cameras[1:]])
    with pytest.raises(EasyOccError, match=r"^--resize-in-graph needs one image size for all cameras; the rig has "):
        rig_camera_size(mixed)


@pytest.fixture(scope="module")
def standin_in_graph(standin, rig, tmp_path_factory):
    """The stand-in exported twice: network-size images (reference) and 1600x900 images resized in the graph."""
    from easyocc.export.onnx_export import export_onnx
    from easyocc.export.wrapper import in_graph_resize_manifest

    model, manifest = standin
    folder = tmp_path_factory.mktemp("in_graph")
    reference = export_onnx(model, manifest, folder / "reference.onnx")
    in_graph = export_onnx(model, in_graph_resize_manifest(manifest, (1600, 900)), folder / "in_graph.onnx")
    return reference, in_graph


def test_in_graph_model_contract_and_lint(standin_in_graph):
    from easyocc.export.lint import lint_model
    from easyocc.export.onnx_model import read_manifest

    _, in_graph = standin_in_graph
    manifest = read_manifest(in_graph.path)
    assert manifest.input("images").shape == (6, 900, 1600, 3) and manifest.input_size == (64, 32)
    assert in_graph.operators.get("MatMul") == 2 and "Round" in in_graph.operators
    lint = lint_model(in_graph.path)
    assert not lint.errors and not lint.warnings, [issue.line() for issue in lint.issues]


def test_in_graph_model_in_the_runtime(standin_in_graph, nuscenes_root, rig):
    """Real JPEG frames: the in-graph model through the runtime agrees with the CPU resize (>= 99.9 %);
    a rig at another camera size is refused with the reason."""
    from easyocc.export.in_graph_resize import compare_in_graph_resize
    from easyocc.runtime.occupancy import OccupancyRuntime
    from easyocc.runtime.sources import NuScenesSource

    reference, in_graph = standin_in_graph
    frames = [frame for frame, _ in zip(NuScenesSource(nuscenes_root), range(3))]
    parity = compare_in_graph_resize(reference.path, in_graph.path, frames, rig=rig)
    assert parity.passed and parity.worst >= 0.999, parity.summary()
    assert len(parity.agreement) == 3 and parity.to_dict()["frames"] == 3
    small = rig.resized(800, 450)
    with pytest.raises(
        EasyOccError, match=r"^model takes camera images at 1600x900 \(resized in its graph\); the rig "
    ):
        OccupancyRuntime(in_graph.path, rig=small)


def test_cli_needs_data_for_the_parity(tmp_path, capsys):
    from easyocc.models import bundled_model

    from easyocc.cli import main as easyocc

    checkpoint = bundled_model(".pt")
    if not checkpoint.is_file():
        pytest.skip(f"bundled checkpoint {checkpoint} is absent")
    code = easyocc(
        ["export", "onnx", "--model", str(checkpoint), "--out", str(tmp_path / "m.onnx")] + ["--resize-in-graph"]
    )
    assert code == 2
    expected = "--resize-in-graph checks parity on real frames: give --data DATASET (or --skip-parity)"
    assert capsys.readouterr().err.strip().endswith(expected)


@pytest.mark.slow
def test_bundled_model_in_graph_resize_parity_on_real_frames(nuscenes_root, tmp_path, capsys):
    """The acceptance check: the bundled model exported with --resize-in-graph, 4 real frames of
    scene-0916, class agreement >= 99.9 % on every frame against the CPU resize of the same pixels."""
    from easyocc.models import bundled_model

    from easyocc.cli import main as easyocc

    checkpoint = bundled_model(".pt")
    if not checkpoint.is_file():
        pytest.skip(f"bundled checkpoint {checkpoint} is absent")
    report = tmp_path / "export.json"
    code = easyocc(
        ["export", "onnx", "--model", str(checkpoint), "--out", str(tmp_path / "in_graph.onnx")]
        + ["--resize-in-graph", "--data", str(nuscenes_root), "--real-frames", "4", "--json", str(report)]
    )
    assert code == 0, capsys.readouterr().err
    parity = json.loads(report.read_text())["resize_parity"]
    assert parity["frames"] == 4 and parity["passed"]
    assert min(parity["agreement_per_frame"]) >= 0.999
