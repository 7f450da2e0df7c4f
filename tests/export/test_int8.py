"""INT8 Q/DQ export: placement, manifest, agreement with float, sensitivity, CLI and refused inputs.

The stand-in model is quantized on real scene-0916 frames (skips without ../shared/data); every
check runs the real ONNX Runtime quantizer and sessions.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")
from easyocc.export.onnx_model import embed_manifest, read_manifest  # noqa: E402
from easyocc.export.quantize import (  # noqa: E402
    MIN_CALIBRATION_FRAMES,
    TAIL,
    VIEW_TRANSFORM,
    Int8Options,
    is_quantized,
    kept_out_nodes,
    module_scope,
    quantize_int8,
)
from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from onnx import numpy_helper  # noqa: E402

CALIBRATION = Int8Options(frames=MIN_CALIBRATION_FRAMES, stride=5)


@pytest.fixture(scope="module")
def quantized(standin_onnx, nuscenes_root, tmp_path_factory):
    """(float path, Int8Result) of the stand-in quantized on 8 real frames (key frames 0, 5, ..., 35)."""
    result, _, _ = standin_onnx
    out = tmp_path_factory.mktemp("int8") / "standin.int8.onnx"
    return result.path, quantize_int8(result.path, nuscenes_root, out, CALIBRATION)


def _graph(path):
    graph = onnx.load(str(path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    return graph, producer, inits


def test_qdq_placement_is_the_one_tensorrt_fuses(quantized):
    _, result = quantized
    graph, producer, inits = _graph(result.path)
    convs = [node for node in graph.node if node.op_type == "Conv"]
    assert len(convs) == 3 and result.manifest.quantization.quantized_nodes == 3
    for conv in convs:
        activation, weight = (producer[name] for name in conv.input[:2])
        assert activation.op_type == weight.op_type == "DequantizeLinear", conv.name
        scales, zero = inits[weight.input[1]], inits[weight.input[2]]
        out_channels = inits[weight.input[0]].shape[0]
        assert inits[weight.input[0]].dtype == np.int8 and scales.shape == (out_channels,)  # per channel
        assert not zero.any() and not inits[activation.input[2]].any()  # symmetric
        assert not any(c.op_type == "QuantizeLinear" for c in graph.node if conv.output[0] in c.input)
        assert len(conv.input) < 3 or conv.input[2] in inits and inits[conv.input[2]].dtype == np.float32
    grid_sample = next(node for node in graph.node if node.op_type == "GridSample")
    assert all(name not in producer or producer[name].op_type != "DequantizeLinear" for name in grid_sample.input)
    # nothing after the last convolution (the argmax/confidence tail) reads a dequantized tensor
    tail = set(result.manifest.quantization.kept_out[TAIL])
    assert tail and all(
        producer.get(name) is None or producer[name].op_type != "DequantizeLinear"
        for node in graph.node
        if node.name in tail
        for name in node.input
    )


def test_manifest_records_the_quantization(quantized):
    float_path, result = quantized
    from easyocc.export.onnx_model import sha256_file

    stored = read_manifest(result.path)
    info = stored.quantization
    assert stored == result.manifest and info.scheme == "int8-qdq"
    assert info.calibration["frames"] == 8 and info.calibration["method"] == "minmax"
    assert info.source_onnx_sha256 == sha256_file(float_path)
    assert "/model/GridSample" in info.kept_out[VIEW_TRANSFORM]
    assert replace(stored, quantization=None) == read_manifest(float_path)
    assert "int8-qdq" in stored.summary()


def test_quantized_model_runs_and_agrees_with_float(quantized, nuscenes_root):
    from easyocc.export.int8_check import check_int8, heldout_feeds
    from easyocc.export.lint import lint_model

    float_path, result = quantized
    feeds = heldout_feeds(result.manifest, nuscenes_root, CALIBRATION, real=2, synthetic=1)
    assert [source for source, _ in feeds] == ["dataset", "dataset", "synthetic"]
    report = check_int8(float_path, result.path, feeds, min_agreement=0.9, threads=1)
    assert report.passed and 0.9 <= report.agreement <= 1.0, report.summary()
    assert 0 < report.max_confidence_diff < 0.5
    assert lint_model(result.path).ok


def test_kept_out_nodes_of_the_bundled_model():
    from easyocc.models import bundled_model

    kept = kept_out_nodes(bundled_model())
    assert {"/ReduceMax", "/Exp", "/Reciprocal", "/Cast_2"} <= set(kept[TAIL])
    assert {"/model/GridSample", "/model/Mul", "/model/ReduceSum", "/model/Reshape_1"} <= set(kept[VIEW_TRANSFORM])
    assert not any("Conv" in name for names in kept.values() for name in names)
    scope = module_scope("backbone.layer2.1.conv1")
    assert scope == "/model/backbone/layer2/layer2.1/conv1/"
    flagged = kept_out_nodes(bundled_model(), fp16_modules=("backbone.layer2.1.conv1",))
    assert flagged["flagged by the FP16 check"] == ["/model/backbone/layer2/layer2.1/conv1/Conv"]


def test_kept_prefix_stays_float(standin_onnx, nuscenes_root, tmp_path):
    result, _, _ = standin_onnx
    options = replace(CALIBRATION, keep=("/model/head/",), fp16_modules=("encoder.0",))
    out = quantize_int8(result.path, nuscenes_root, tmp_path / "kept.onnx", options)
    graph, producer, _ = _graph(out.path)
    dequantized = {
        node.name
        for node in graph.node
        if node.op_type == "Conv"
        and node.input[1] in producer
        and producer[node.input[1]].op_type == "DequantizeLinear"
    }
    assert dequantized == {"/model/encoder/encoder.2/Conv"}
    assert out.manifest.quantization.kept_out["kept by request"] == ["/model/head/Conv"]
    assert out.manifest.quantization.quantized_nodes == 1
    with pytest.raises(EasyOccError, match=r"^--keep /model/nothing/: no node name starts with it$"):
        kept_out_nodes(result.path, keep=("/model/nothing/",))


def test_onnx_without_manifest_is_refused(standin_onnx, nuscenes_root, tmp_path):
    result, _, _ = standin_onnx
    model = onnx.load(str(result.path))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(EasyOccError, match=r"bare.onnx has no 'easyocc_manifest' metadata entry") as error:
        quantize_int8(bare, nuscenes_root, tmp_path / "out.onnx", CALIBRATION)
    assert "\n" not in str(error.value)


def test_too_few_calibration_frames_are_refused(standin_onnx, synth_root, tmp_path):
    result, _, _ = standin_onnx
    with pytest.raises(EasyOccError, match=r"^INT8 calibration needs at least 8 frames, 4 requested$"):
        Int8Options(frames=4)
    # the tiny synthetic world has 3 key frames
    with pytest.raises(EasyOccError, match=r"gives 3 usable frame\(s\) at stride 1; 8 are needed$"):
        quantize_int8(result.path, synth_root, tmp_path / "out.onnx", Int8Options(frames=8))
    assert not (tmp_path / "out.onnx").exists()


def test_calibration_set_from_another_rig_is_refused(standin_onnx, nuscenes_root, tmp_path):
    result, _, manifest = standin_onnx
    names = ("CAM_FRONT", "CAM_FRONT_WIDE", "CAM_LEFT", "CAM_RIGHT", "CAM_BACK", "CAM_BACK_WIDE")
    model = onnx.load(str(result.path))
    embed_manifest(model, replace(manifest, camera_names=names))
    other = tmp_path / "other_rig.onnx"
    onnx.save(model, str(other))
    expected = r"is from another rig: it lacks the model's cameras \['CAM_FRONT_WIDE', 'CAM_LEFT', 'CAM_RIGHT', 'CAM_BACK_WIDE'\]"
    with pytest.raises(EasyOccError, match=expected) as error:
        quantize_int8(other, nuscenes_root, tmp_path / "out.onnx", CALIBRATION)
    assert "\n" not in str(error.value)


def test_quantized_model_is_not_quantized_again(quantized, nuscenes_root, tmp_path):
    _, result = quantized
    assert is_quantized(result.path)
    with pytest.raises(EasyOccError, match=r"is already quantized; quantize the float model it came from$"):
        quantize_int8(result.path, nuscenes_root, tmp_path / "again.onnx", CALIBRATION)


def test_sensitivity_report_covers_every_layer_group(standin_onnx, nuscenes_root):
    from easyocc.export.feeds import synthetic_feeds
    from easyocc.export.sensitivity import layer_groups, sensitivity, table

    result, _, manifest = standin_onnx
    from easyocc.calibration import default_rig

    assert layer_groups(result.path) == {
        "/model/encoder/encoder.0/": ["/model/encoder/encoder.0/Conv"],
        "/model/encoder/encoder.2/": ["/model/encoder/encoder.2/Conv"],
        "/model/head/": ["/model/head/Conv"],
    }
    feeds = [("synthetic", feed) for feed in synthetic_feeds(manifest, default_rig(), 2)]
    report = sensitivity(result.path, nuscenes_root, feeds, CALIBRATION, threads=1, target=1.0)
    groups = {row["group"]: row for row in report["groups"]}
    assert set(groups) == {"/model/encoder/encoder.0/", "/model/encoder/encoder.2/", "/model/head/"}
    assert [row["nodes"] for row in report["groups"]] == [1, 1, 1]
    for row in report["groups"]:
        alone = row["only_this_group_quantized"]["agreement"]
        kept = row["all_but_this_group_quantized"]["agreement"]
        assert 0.5 < alone <= 1.0 and 0.5 < kept <= 1.0
    alone = [row["only_this_group_quantized"]["agreement"] for row in report["groups"]]
    assert alone == sorted(alone)  # most damaging first
    assert 0.5 < report["all_groups_quantized"]["agreement"] <= 1.0
    assert sum(row["macs_share"] for row in report["groups"]) == pytest.approx(1.0)
    assert min(row["macs_share"] for row in report["groups"]) > 0
    greedy = report["keep_to_reach_target"]
    order = [row["group"] for row in report["groups"]]
    assert greedy["reached"] and greedy["keep"] == order[: len(greedy["keep"])]
    assert [step["int8_convolutions"] for step in greedy["steps"]] == list(range(2, 2 - len(greedy["steps"]), -1))
    assert greedy["steps"][-1]["agreement"] == 1.0 and all(step["agreement"] < 1.0 for step in greedy["steps"][:-1])
    assert table(report).count("\n") == 5 and "`/model/head/`" in table(report)


def test_cli_writes_the_qdq_model_and_its_report(standin_onnx, nuscenes_root, tmp_path, capsys):
    from easyocc.cli import run_command
    from easyocc.commands.export import main

    result, _, _ = standin_onnx
    out, report = tmp_path / "cli.int8.onnx", tmp_path / "int8.json"
    argv = ["int8", "--model", str(result.path), "--data", str(nuscenes_root), "--out", str(out), "--frames", "8"]
    argv += ["--stride", "5", "--eval-frames", "1", "--synthetic-frames", "1", "--min-agreement", "0.5"]
    assert main([*argv, "--threads", "1", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["int8"]["quantization"]["calibration"]["frames"] == 8 and data["lint"]["ok"]
    assert data["agreement"]["frames_by_source"] == {"dataset": 1, "synthetic": 1}
    assert "class agreement" in capsys.readouterr().err
    assert read_manifest(out).quantization is not None
    code = run_command("export", main, [*argv[:-6], "--frames", "4"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "easyocc export: error: INT8 calibration needs at least 8 frames, 4 requested"
    )


def test_score_runner_scores_saved_predictions(synth_root, tmp_path):
    from easyocc.export.int8_check import score_runner
    from easyocc.models import bundled_model
    from easyocc.runtime.backends import create_runner
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset

    dataset = NuScenesDataset(synth_root)
    scene = dataset.scene_names[0]
    runner = create_runner(bundled_model(), "onnxruntime", threads=1, providers=["CPUExecutionProvider"])
    scores = score_runner(runner, synth_root, scene, tmp_path / "pred", rays=False)
    assert scores["frames"] == 3 and scores["scenes"] == [scene]
    assert 0.0 < scores["miou"] < 100.0 and 0.0 < scores["geometry_iou"] < 100.0
    saved = sorted((tmp_path / "pred" / scene).glob("*/labels.npz"))
    assert [p.parent.name for p in saved] == sorted(dataset.sample_tokens(scene))
    with np.load(saved[0]) as data:
        assert data["semantics"].dtype == np.uint8 and data["semantics"].shape == (200, 200, 16)
    with pytest.raises(EasyOccError, match=r"has no scene 'synth-9999'"):
        score_runner(runner, synth_root, "synth-9999", tmp_path / "none")


def test_kept_nodes_get_their_float_input_back():
    """The quantizer dequantizes a shared activation for every consumer; a kept Conv must read the float tensor."""
    from easyocc.export.quantize import float_inputs_for_kept
    from onnx import TensorProto, helper

    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zero = helper.make_tensor("z", TensorProto.INT8, [], [0])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 1, 1], [0.5] * 9)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
        helper.make_node("Conv", ["xd", "w"], ["a"], name="int8_conv"),
        helper.make_node("Conv", ["xd", "w"], ["b"], name="kept_conv"),
    ]
    value = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 4, 4]) for n in ("x", "a", "b")]
    graph = helper.make_graph(nodes, "shared", value[:1], value[1:], initializer=[scale, zero, weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert float_inputs_for_kept(model, {"kept_conv"}) == 1
    inputs = {node.name: list(node.input) for node in model.graph.node}
    assert inputs["kept_conv"] == ["x", "w"] and inputs["int8_conv"] == ["xd", "w"]
    assert float_inputs_for_kept(model, {"int8_conv"}) == 1
    assert [node.op_type for node in model.graph.node] == ["Conv", "Conv"]  # the unused Q/DQ pair is gone


def test_more_refusals_are_one_line(standin_onnx, nuscenes_root, tmp_path, capsys):
    from easyocc.export.sensitivity import sensitivity
    from easyocc.runtime.contract.manifest import Manifest
    from easyocc.runtime.dataset.nuscenes import REQUIRED_TABLES

    from easyocc.commands.export import main

    result, _, manifest = standin_onnx
    with pytest.raises(EasyOccError, match=r"^calibration method 'kl' is not one of minmax, percentile, entropy$"):
        Int8Options(method="kl")
    empty = tmp_path / "empty"
    (empty / "v1.0-mini").mkdir(parents=True)
    for table in REQUIRED_TABLES:
        (empty / "v1.0-mini" / f"{table}.json").write_text("[]")
    with pytest.raises(EasyOccError, match=r"^calibration set .*empty: no samples$"):
        quantize_int8(result.path, empty, tmp_path / "out.onnx", CALIBRATION)
    everything = replace(CALIBRATION, keep=("/model/",))
    with pytest.raises(EasyOccError, match=r"standin.onnx: no quantizable node \(Conv\) left$"):
        sensitivity(result.path, nuscenes_root, [], everything)
    data = replace(manifest, quantization=None).to_dict()
    data["quantization"] = {"scheme": "int8-qdq"}
    with pytest.raises(EasyOccError, match=r"^manifest: missing field 'tool'$"):
        Manifest.from_dict(data)
    bad = tmp_path / "fp16.json"
    bad.write_text("[1, 2")
    argv = ["int8", "--model", str(result.path), "--data", str(nuscenes_root), "--out", str(tmp_path / "o.onnx")]
    with pytest.raises(EasyOccError, match=r"^--fp16-report .*fp16.json: not a readable fp16-check JSON"):
        main([*argv, "--fp16-report", str(bad)])
    message = r"^--sensitivity needs frames to compare on \(--eval-frames or --synthetic-frames\)$"
    with pytest.raises(EasyOccError, match=message):
        main(
            [*argv, "--stride", "5", "--frames", "8", "--eval-frames", "0", "--synthetic-frames", "0", "--sensitivity"]
        )
    capsys.readouterr()
