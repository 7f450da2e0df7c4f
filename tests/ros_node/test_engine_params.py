"""Engine-management parameters: which combinations the node accepts, each refusal one line."""

from __future__ import annotations

import pytest
from easyocc.ros_node.params import config_from_values
from easyocc.runtime.contract.errors import EasyOccError


def test_engine_management_parameters(tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx")
    config = config_from_values(
        {"model_file_path": str(onnx), "engine_file_path": str(tmp_path / "not_yet.engine"), "backend": "tensorrt"}
    )
    assert config.engine_precision == "fp16" and not config.force_engine_update  # the engine is built on configure
    with pytest.raises(EasyOccError, match="parameter model_path is required .* or model_file_path / engine_file_path"):
        config_from_values({})
    with pytest.raises(EasyOccError, match="give model_path, or model_file_path / engine_file_path .*not both"):
        config_from_values({"model_path": str(onnx), "model_file_path": str(onnx)})
    with pytest.raises(EasyOccError, match="parameter engine_file_path needs backend tensorrt"):
        config_from_values({"engine_file_path": str(tmp_path / "x.engine")})
    with pytest.raises(EasyOccError, match="parameter model_file_path: file not found"):
        config_from_values({"model_file_path": str(tmp_path / "none.onnx"), "backend": "tensorrt"})
    with pytest.raises(EasyOccError, match="parameter engine_precision: 'fp8' is not one of fp32, fp16, int8"):
        config_from_values({"model_file_path": str(onnx), "engine_precision": "fp8"})


def test_providers_parameter_is_onnx_runtime_only(tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx")
    config = config_from_values(
        {"model_path": str(onnx), "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}
    )
    assert config.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    with pytest.raises(EasyOccError, match="parameter providers .* needs backend onnxruntime"):
        config_from_values({"model_path": str(onnx), "backend": "tensorrt", "providers": ["CPUExecutionProvider"]})
