"""TensorRT backend: pure logic always (version dispatch, sidecar and I/O validation); a real engine
only where tensorrt and a GPU exist (skipped with a reason otherwise)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from easyocc.runtime.backends import backend_for_path, create_runner
from easyocc.runtime.backends.base import check_manifest_io
from easyocc.runtime.backends.tensorrt_runner import (
    BINDINGS_API,
    TENSORS_API,
    check_engine_manifest,
    load_sidecar,
    sidecar_path,
    split_io,
    tensorrt_api,
)
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import EngineInfo

from tests.runtime.stream_fixtures import tiny_manifest

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None and importlib.util.find_spec("pycuda") is not None


def engine_manifest(version="8.6.1", cc="8.7"):
    return tiny_manifest().with_engine(EngineInfo(version, cc, "fp16", "0" * 64))


@pytest.mark.parametrize(
    "version, api",
    [("8.5.2.2", BINDINGS_API), ("8.6.1", BINDINGS_API), ("9.2.0", TENSORS_API), ("10.3.0.26", TENSORS_API)],
)
def test_api_dispatch_by_version(version, api):
    assert tensorrt_api(version) == api


def test_old_or_garbled_versions_are_refused():
    with pytest.raises(EasyOccError, match="TensorRT 8.4.3 is too old; the runtime needs 8.5"):
        tensorrt_api("8.4.3")
    with pytest.raises(EasyOccError, match="cannot parse TensorRT version 'ten'"):
        tensorrt_api("ten")


def test_engine_manifest_must_match_tensorrt_and_gpu():
    manifest = engine_manifest("8.6.1", "8.7")
    check_engine_manifest(manifest, "8.6.1.6", "8.7", "engine m.engine")  # patch level may differ
    with pytest.raises(EasyOccError, match="built with TensorRT 8.6.1, this runtime has 10.3.0; rebuild"):
        check_engine_manifest(manifest, "10.3.0", "8.7", "engine m.engine")
    with pytest.raises(EasyOccError, match="built for compute capability 8.7, this GPU is 8.6; rebuild"):
        check_engine_manifest(manifest, "8.6.1", "8.6", "engine m.engine")
    with pytest.raises(EasyOccError, match="manifest has no engine section"):
        check_engine_manifest(tiny_manifest(), "8.6.1", "8.7", "engine m.engine")


def test_binding_validation_against_manifest():
    manifest = engine_manifest()
    io = {s.name: (True, s.dtype, s.shape) for s in manifest.inputs}
    io.update({s.name: (False, s.dtype, s.shape) for s in manifest.outputs})
    inputs, outputs = split_io(io)
    check_manifest_io(manifest, inputs, outputs, "engine m.engine")
    io["images"] = (True, "float16", io["images"][2])
    with pytest.raises(EasyOccError, match="input 'images' is float16 \\[6, 64, 96, 3\\] in the model, uint8"):
        check_manifest_io(manifest, *split_io(io), "engine m.engine")
    io["images"] = (True, "uint8", (-1, 64, 96, 3))
    with pytest.raises(EasyOccError, match="tensor 'images' has a dynamic shape \\[-1, 64, 96, 3\\]"):
        split_io(io)


def test_sidecar_manifest(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    assert sidecar_path(engine).name == "model.engine.json"
    with pytest.raises(EasyOccError, match="manifest model.engine.json not found beside it"):
        load_sidecar(engine)
    sidecar_path(engine).write_text(engine_manifest().to_json())
    assert load_sidecar(engine).engine.precision == "fp16"
    sidecar_path(engine).write_text(json.dumps({"format": "other"}))
    with pytest.raises(EasyOccError, match="engine manifest model.engine.json: manifest format 'other'"):
        load_sidecar(engine)


def test_backend_from_suffix():
    assert backend_for_path("a/m.engine") == "tensorrt" and backend_for_path("m.onnx") == "onnxruntime"
    assert backend_for_path("m.ts") == "torch"
    with pytest.raises(EasyOccError, match="cannot tell the backend of m.bin"):
        backend_for_path("m.bin")


@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed: the missing-dependency message does not apply")
def test_missing_tensorrt_gives_install_hint(tmp_path):
    with pytest.raises(EasyOccError, match="tensorrt backend needs '(tensorrt|pycuda)'"):
        create_runner(tmp_path / "m.engine", "tensorrt").activate()


@pytest.mark.trt
@pytest.mark.skipif(not HAS_TENSORRT, reason="needs tensorrt and pycuda (and a GPU); not installed here")
def test_tensorrt_engine_matches_onnxruntime(tmp_path):  # pragma: no cover - runs on a GPU machine
    import numpy as np
    import tensorrt as trt
    from easyocc.runtime.contract.view_feed import view_transform_feed

    from tests.runtime.stream_fixtures import build_tiny_model, small_rig

    onnx_path = build_tiny_model(tmp_path / "tiny.onnx")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), parser.get_error(0)
    serialized = builder.build_serialized_network(network, builder.create_builder_config())
    engine = tmp_path / "tiny.engine"
    engine.write_bytes(bytes(serialized))
    import pycuda.driver as cuda

    cuda.init()
    cc = "{}.{}".format(*cuda.Device(0).compute_capability())
    sidecar_path(engine).write_text(tiny_manifest().with_engine(EngineInfo(trt.__version__, cc, "fp32", "")).to_json())
    with create_runner(onnx_path) as ort_runner, create_runner(engine, "tensorrt", cuda_graph=True) as trt_runner:
        feed = view_transform_feed(ort_runner.manifest, small_rig())
        feed["images"] = np.random.default_rng(0).integers(0, 255, (6, 64, 96, 3), dtype=np.uint8)
        expected = ort_runner.infer(feed)
        for _ in range(2):  # plain run, then the CUDA graph
            got = trt_runner.infer(feed)
            assert np.mean(got["semantics"] == expected["semantics"]) > 0.99
            assert np.allclose(got["confidence"], expected["confidence"], atol=1e-3)
