"""TensorRT builder: pure logic always runs; engine build and run need tensorrt, pycuda and a GPU."""

from __future__ import annotations

import importlib.util
import json

import pytest
from easyocc.export.trt_builder import BuildOptions, network_creation_flags
from easyocc.runtime.contract.errors import EasyOccError


def _trt_skip_reason() -> str | None:
    for module in ("tensorrt", "pycuda"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (TensorRT engine tests need tensorrt, pycuda and a CUDA GPU)"
    try:
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() == 0:
            return "no CUDA GPU"
    except Exception as exc:  # any driver failure means: no usable GPU here
        return f"no usable CUDA GPU ({exc})"
    return None


needs_trt = pytest.mark.skipif(_trt_skip_reason() is not None, reason=str(_trt_skip_reason()))


def test_network_flags_by_version():
    assert network_creation_flags("8.5.2.2", 0) == 1
    assert network_creation_flags("8.6.1", 0) == 1
    assert network_creation_flags("10.3.0", 0) == 0  # explicit batch is implicit (and the flag deprecated)
    with pytest.raises(EasyOccError, match="EXPLICIT_BATCH"):
        network_creation_flags("8.6.1", None)


def test_build_options_are_validated():
    with pytest.raises(EasyOccError, match="DLA runs FP16 or INT8"):
        BuildOptions(precision="fp32", dla_core=0)
    with pytest.raises(EasyOccError, match="workspace must be positive"):
        BuildOptions(workspace_mib=0)
    with pytest.raises(EasyOccError, match="precision 'fp8'"):
        BuildOptions(precision="fp8")


@pytest.mark.trt
@needs_trt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_build_reuse_and_verify(standin_onnx, tmp_path, precision):
    from easyocc.export.engine_build import build_or_reuse

    result, _, _ = standin_onnx
    options = BuildOptions(precision=precision, workspace_mib=256, timing_cache=tmp_path / "timing.cache")
    engine = tmp_path / f"standin.{precision}.engine"
    first = build_or_reuse(result.path, options, engine_path=engine, verify_frames=2, min_agreement=0.99)
    assert not first.reused and engine.is_file() and (tmp_path / "timing.cache").is_file()
    assert first.verification["passed"]
    second = build_or_reuse(result.path, options, engine_path=engine, rebuild="never")
    assert second.reused
    sidecar = json.loads(engine.with_name(engine.name + ".json").read_text())
    assert sidecar["engine"]["precision"] == precision


@pytest.mark.trt
@needs_trt
def test_int8_engine_with_real_calibration_frames(standin_onnx, tmp_path, nuscenes_root):
    from easyocc.export.engine_build import build_or_reuse

    result, _, _ = standin_onnx
    options = BuildOptions(
        precision="int8", workspace_mib=256, calibration_cache=tmp_path / "c.cache", calibration_frames=4
    )
    report = build_or_reuse(result.path, options, engine_path=tmp_path / "i8.engine", calib_data=nuscenes_root)
    assert (tmp_path / "c.cache").is_file() and not report.reused
