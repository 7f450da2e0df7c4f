"""TensorRT lint: the exported model passes; planted problems are caught and name their node."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")
from easyocc.export.lint import lint_model, load_table, table_version_for  # noqa: E402
from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402


def make_model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "planted", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def grid_sample_model(rank: int):
    x_shape = [1, 4] + [8] * (rank - 2)
    grid_shape = [1] + [5] * (rank - 2) + [rank - 2]
    out_shape = [1, 4] + [5] * (rank - 2)
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], name="view_transform/GridSample", mode="bilinear")
    return make_model(
        [node],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape),
            helper.make_tensor_value_info("grid", TensorProto.FLOAT, grid_shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
    )


def test_table_names_its_source_and_versions():
    table = load_table()
    assert "onnx-tensorrt" in " ".join(table["source"]["documents"])
    assert set(table["versions"]) == {"8.5", "8.6", "10.x"}
    assert table["versions"]["8.5"]["max_opset"] == 17
    assert "GridSample" in table["versions"]["8.5"]["supported"]
    assert "LayerNormalization" not in table["versions"]["8.5"]["supported"]
    assert "LayerNormalization" in table["versions"]["8.6"]["supported"]


def test_exported_standin_passes(standin_onnx):
    result, _, _ = standin_onnx
    report = lint_model(result.path)
    assert report.ok, report.to_dict()
    assert report.opset == 17 and report.node_count == result.nodes


def test_4d_grid_sample_passes_and_5d_is_caught():
    assert lint_model(grid_sample_model(4)).ok
    report = lint_model(grid_sample_model(5))
    assert not report.ok
    lines = [issue.line() for issue in report.errors]
    assert any("view_transform/GridSample" in line and "5-D" in line for line in lines), lines
    with pytest.raises(EasyOccError, match="GridSample 'view_transform/GridSample'.*5-D input 'x'"):
        report.raise_for_errors()


def test_planted_unsupported_operator_is_named():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="ok_relu"),
        helper.make_node("Det", ["r"], ["y"], name="planted_det"),
    ]
    model = make_model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    report = lint_model(model)
    assert [issue.where for issue in report.errors] == ["planted_det"]
    assert report.errors[0].versions == ("8.5", "8.6", "10.x")
    assert "not supported" in report.errors[0].message


def test_custom_domain_operator_needs_a_plugin():
    node = helper.make_node("MyPlugin", ["x"], ["y"], name="custom", domain="com.example")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    assert "plugin" in lint_model(model).errors[0].message


def test_layer_norm_fails_on_85_only():
    node = helper.make_node("LayerNormalization", ["x", "scale"], ["y"], name="ln", axis=-1)
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [4], [1.0] * 4)
    model = make_model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [scale],
    )
    report = lint_model(model)
    assert [issue.versions for issue in report.errors] == [("8.5",)]
    assert any("FP16" in issue.message for issue in report.warnings)


def test_dynamic_input_is_an_error():
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    model = make_model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    messages = [issue.message for issue in lint_model(model).errors]
    assert any("input 'x' has a dynamic shape ['batch', 4]" in m for m in messages), messages


def test_int64_on_the_output_path_names_the_argmax():
    node = helper.make_node("ArgMax", ["x"], ["y"], name="head/ArgMax", axis=0, keepdims=0)
    model = make_model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [18, 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [4])],
    )
    errors = lint_model(model).errors
    assert any(issue.where == "head/ArgMax" and "INT64 tensor 'y'" in issue.message for issue in errors)


def test_uint8_must_be_cast_at_the_boundary():
    nodes = [
        helper.make_node("Transpose", ["images"], ["t"], name="early_transpose", perm=[2, 0, 1]),
        helper.make_node("Cast", ["t"], ["f"], name="late_cast", to=TensorProto.FLOAT),
    ]
    model = make_model(
        nodes,
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [4, 4, 3])],
        [helper.make_tensor_value_info("f", TensorProto.FLOAT, [3, 4, 4])],
    )
    wheres = {issue.where for issue in lint_model(model).errors}
    assert wheres == {"early_transpose"}


def test_opset_above_tensorrt_8_is_reported():
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    model = make_model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        opset=19,
    )
    errors = lint_model(model).errors
    assert [issue.versions for issue in errors] == [("8.5", "8.6")]
    assert "opset 19 > 17" in errors[0].message


@pytest.mark.parametrize(
    ("installed", "entry"), [("8.5.2.2", "8.5"), ("8.6.2.3", "8.6"), ("9.3.0", "8.6"), ("10.3.0", "10.x")]
)
def test_table_version_for_installed_tensorrt(installed, entry):
    assert table_version_for(installed) == entry


def test_tensorrt_older_than_85_is_refused():
    with pytest.raises(EasyOccError, match="8.4.3 is too old"):
        table_version_for("8.4.3")


def test_lint_cli_exit_codes(standin_onnx, tmp_path, capsys):
    from easyocc.commands.export import main

    result, _, _ = standin_onnx
    assert main(["lint", "--model", str(result.path)]) == 0
    bad = tmp_path / "bad.onnx"
    onnx.save(grid_sample_model(5), str(bad))
    assert main(["lint", "--model", str(bad), "--json", str(tmp_path / "lint.json")]) == 1
    assert "5-D input" in capsys.readouterr().err
    assert (tmp_path / "lint.json").is_file()
