"""INT8 Q/DQ on the TensorRT side, decided on the CPU: builder flags, engine cache keys, Q/DQ lint."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")
from easyocc.export.engine_build import plan_engine  # noqa: E402
from easyocc.export.lint import lint_model  # noqa: E402
from easyocc.export.quantize import Int8Options, quantize_int8  # noqa: E402
from easyocc.export.trt_builder import precision_plan  # noqa: E402
from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from easyocc.runtime.contract.manifest import EngineInfo, Manifest  # noqa: E402
from easyocc.runtime.engine_cache import (  # noqa: E402
    check_cached_engine,
    default_engine_path,
    expected_engine_info,
    write_engine,
)
from onnx import TensorProto, helper  # noqa: E402

SHA = "ab" * 32


@pytest.fixture(scope="module")
def qdq_onnx(standin_onnx, nuscenes_root, tmp_path_factory):
    result, _, _ = standin_onnx
    out = tmp_path_factory.mktemp("qdq") / "standin.int8.onnx"
    return quantize_int8(result.path, nuscenes_root, out, Int8Options(frames=8, stride=5)).path


@pytest.mark.parametrize(
    ("precision", "explicit", "flags", "calibrator"),
    [
        ("fp32", False, (), False),
        ("fp16", False, ("FP16",), False),
        ("int8", False, ("FP16", "INT8"), True),  # TensorRT calibrates a float model itself
        ("int8", True, ("FP16", "INT8"), False),  # Q/DQ: scales from the model, no calibrator
    ],
)
def test_builder_flags_and_calibrator(precision, explicit, flags, calibrator):
    assert precision_plan(precision, explicit) == (flags, calibrator)


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_qdq_model_builds_as_int8_only(precision):
    message = rf"^the ONNX model is explicitly quantized \(qdq\): build it with --precision int8, not {precision}$"
    with pytest.raises(EasyOccError, match=message):
        precision_plan(precision, True)


def test_plan_keys_the_qdq_engine_apart(qdq_onnx, standin_onnx, tmp_path):
    float_path = standin_onnx[0].path
    plan = plan_engine(qdq_onnx, "10.3.0", "8.7", "int8")
    assert plan.info.quantization == "int8-qdq"
    assert plan.engine_path.name == "standin.int8.int8-qdq.sm87.trt10.3.0.engine"
    calibrated = plan_engine(float_path, "10.3.0", "8.7", "int8")
    assert calibrated.info.quantization == "" and calibrated.engine_path.name == "standin.int8.sm87.trt10.3.0.engine"
    with pytest.raises(
        EasyOccError, match=r"explicitly quantized \(int8-qdq\): build it with --precision int8, not fp16"
    ):
        plan_engine(qdq_onnx, "10.3.0", "8.7", "fp16")
    # an engine TensorRT calibrated itself is never reused for the Q/DQ model, even under the same name
    engine = tmp_path / "m.engine"
    write_engine(engine, b"engine", plan.manifest, expected_engine_info("10.3.0", "8.7", "int8", SHA))
    qdq = expected_engine_info("10.3.0", "8.7", "int8", SHA, quantization="int8-qdq")
    assert check_cached_engine(engine, qdq).reasons == ["quantization: engine none != now int8-qdq"]
    assert default_engine_path(tmp_path / "m.onnx", qdq).name == "m.int8-qdq.sm87.trt10.3.0.engine"


def test_sidecars_without_the_quantization_field_still_load(standin):
    _, manifest = standin
    data = manifest.with_engine(expected_engine_info("8.6.2", "8.7", "fp16", SHA)).to_dict()
    del data["engine"]["quantization"], data["quantization"]
    loaded = Manifest.from_dict(data)
    assert loaded.engine == EngineInfo("8.6.2", "8.7", "fp16", SHA) and loaded.quantization is None


def test_qdq_export_lints_clean(qdq_onnx):
    report = lint_model(qdq_onnx)
    assert report.ok and not report.warnings, report.to_dict()


def _qdq_model(nodes, initializers, inputs, outputs):
    graph = helper.make_graph(nodes, "planted", inputs, outputs, initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _tensor(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_dequantized_grid_sample_input_is_an_error():
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zero = helper.make_tensor("z", TensorProto.INT8, [], [0])
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
        helper.make_node("GridSample", ["xd", "grid"], ["y"], name="view/GridSample"),
    ]
    model = _qdq_model(
        nodes, [scale, zero], [_tensor("x", [1, 4, 8, 8]), _tensor("grid", [1, 5, 5, 2])], [_tensor("y", [1, 4, 5, 5])]
    )
    errors = [issue.line() for issue in lint_model(model).errors]
    assert errors == [
        "error: TensorRT 8.5, 8.6, 10.x: GridSample 'view/GridSample': input 'xd' comes from a DequantizeLinear: "
        "TensorRT cannot fuse Q/DQ into GridSample; keep the view-transform sampling in float"
    ]


def test_asymmetric_uint8_and_wrong_axis_are_errors():
    weight = helper.make_tensor("w", TensorProto.INT8, [4, 3, 1, 1], [1] * 12)
    scales = helper.make_tensor("ws", TensorProto.FLOAT, [3], [0.1] * 3)
    wzero = helper.make_tensor("wz", TensorProto.INT8, [3], [0] * 3)
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    uzero = helper.make_tensor("uz", TensorProto.UINT8, [], [128])
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "uz"], ["xq"], name="act_q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "uz"], ["xd"], name="act_dq"),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="w_dq", axis=1),
        helper.make_node("Conv", ["xd", "wd"], ["y"], name="conv"),
    ]
    model = _qdq_model(
        nodes, [weight, scales, wzero, scale, uzero], [_tensor("x", [1, 3, 4, 4])], [_tensor("y", [1, 4, 4, 4])]
    )
    messages = {(issue.where, issue.message) for issue in lint_model(model).errors}
    assert ("act_q", "quantized type UINT8: TensorRT 8.x/10.x Q/DQ is INT8") in messages
    assert ("act_dq", "zero point 'uz' is not 0: TensorRT quantization is symmetric") in messages
    assert ("w_dq", "per-channel scale on axis 1; TensorRT needs axis 0 for weights") in messages


def test_conv_with_a_float_weight_after_a_dequantized_input_is_a_warning():
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 1, 1], [0.5] * 12)
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zero = helper.make_tensor("z", TensorProto.INT8, [], [0])
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
        helper.make_node("Conv", ["xd", "w"], ["y"], name="half_conv"),
    ]
    model = _qdq_model(nodes, [weight, scale, zero], [_tensor("x", [1, 3, 4, 4])], [_tensor("y", [1, 4, 4, 4])])
    report = lint_model(model)
    assert report.ok
    assert [(w.where, w.message) for w in report.warnings] == [
        ("half_conv", "its weight is not dequantized: TensorRT runs it unfused, not in INT8")
    ]


def test_quantized_view_transform_table_is_an_error():
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.01])
    zero = helper.make_tensor("z", TensorProto.INT8, [], [0])
    nodes = [helper.make_node("QuantizeLinear", ["vt_uv", "s", "z"], ["q"], name="table_q")]
    model = _qdq_model(
        nodes, [scale, zero], [_tensor("vt_uv", [6, 10, 2])], [_tensor("q", [6, 10, 2], TensorProto.INT8)]
    )
    assert [(e.where, e.message) for e in lint_model(model).errors] == [
        ("table_q", "quantizes the view-transform table 'vt_uv'; keep it in float")
    ]
