"""Engine cache: naming, sidecar manifests, reuse only when everything matches, refusal messages."""

from __future__ import annotations

import json

import pytest
from easyocc.export.engine_build import plan_engine
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.engine_cache import (
    check_cached_engine,
    default_engine_path,
    expected_engine_info,
    read_engine_manifest,
    resolve_cache,
    sidecar_path,
    write_engine,
)

SHA = "ab" * 32


def info(**changes):
    values = {"tensorrt_version": "8.6.2", "compute_capability": "8.7", "precision": "fp16", "onnx_sha256": SHA}
    values.update(changes)
    return expected_engine_info(**values)


def test_names_spell_out_what_the_engine_is_bound_to(tmp_path):
    assert default_engine_path(tmp_path / "m.onnx", info()).name == "m.fp16.sm87.trt8.6.2.engine"
    dla = expected_engine_info("10.3.0", "8.7", "int8", SHA, dla_core=1)
    assert default_engine_path(tmp_path / "m.onnx", dla).name == "m.int8.sm87.trt10.3.0.dla1.engine"
    assert sidecar_path(tmp_path / "m.fp16.engine").name == "m.fp16.engine.json"


def test_invalid_precision_and_capability_are_refused():
    with pytest.raises(EasyOccError, match="precision 'bf16'"):
        info(precision="bf16")
    with pytest.raises(EasyOccError, match="compute capability 'sm87'"):
        info(compute_capability="sm87")


def test_reuse_only_when_everything_matches(tmp_path, standin):
    _, manifest = standin
    engine = tmp_path / "m.engine"
    assert check_cached_engine(engine, info()).reasons == ["no engine file"]
    write_engine(engine, b"serialized-engine", manifest, info())
    assert check_cached_engine(engine, info()).reuse
    stored = read_engine_manifest(engine)
    assert stored.engine == info() and stored.camera_names == manifest.camera_names
    decision = check_cached_engine(engine, info(tensorrt_version="10.3.0", precision="int8"))
    assert not decision.reuse
    assert decision.reasons == ["TensorRT version: engine 8.6.2 != now 10.3.0", "precision: engine fp16 != now int8"]
    assert (
        "GPU compute capability: engine 8.7 != now 8.6"
        in check_cached_engine(engine, info(compute_capability="8.6")).reasons
    )
    assert "ONNX model (sha256)" in check_cached_engine(engine, info(onnx_sha256="cd" * 32)).reasons[0]


def test_tampered_or_orphaned_engines_are_not_reused(tmp_path, standin):
    _, manifest = standin
    engine = tmp_path / "m.engine"
    write_engine(engine, b"serialized-engine", manifest, info())
    engine.write_bytes(b"another engine")
    assert "sha256" in check_cached_engine(engine, info()).reasons[0]
    sidecar_path(engine).unlink()
    assert check_cached_engine(engine, info()).reasons == ["no sidecar manifest m.engine.json"]
    sidecar_path(engine).write_text("{not json")
    assert "unreadable" in check_cached_engine(engine, info()).reasons[0]


def test_policy_never_refuses_naming_the_difference(tmp_path, standin):
    _, manifest = standin
    engine = tmp_path / "m.engine"
    write_engine(engine, b"serialized-engine", manifest, info())
    assert resolve_cache(engine, info(), "never").reuse
    with pytest.raises(EasyOccError, match=r"TensorRT version: engine 8.6.2 != now 10.3.0.*--no-rebuild"):
        resolve_cache(engine, info(tensorrt_version="10.3.0"), "never")
    assert not resolve_cache(engine, info(), "always").reuse
    assert not resolve_cache(engine, info(precision="fp32"), "auto").reuse


def test_plan_engine_reads_the_onnx_manifest_and_hash(standin_onnx, tmp_path):
    result, _, manifest = standin_onnx
    plan = plan_engine(result.path, "8.5.2.2", "8.7", "fp16")
    assert plan.info.onnx_sha256 == result.sha256
    assert plan.engine_path.name == "standin.fp16.sm87.trt8.5.2.2.engine"
    assert plan.manifest.to_dict() == manifest.to_dict()
    assert plan.decision.reasons == ["no engine file"]
    write_engine(tmp_path / "e.engine", b"x", plan.manifest, plan.info)
    again = plan_engine(result.path, "8.5.2.2", "8.7", "fp16", tmp_path / "e.engine", rebuild="never")
    assert again.decision.reuse
    sidecar = json.loads(sidecar_path(tmp_path / "e.engine").read_text())
    assert sidecar["engine"]["precision"] == "fp16" and sidecar["engine_file_sha256"]


def test_engine_modules_import_without_tensorrt():
    import importlib.util

    import easyocc.export.calibrator
    import easyocc.export.engine_build
    import easyocc.export.trt_builder
    import easyocc.runtime.backends.tensorrt_runner  # noqa: F401

    if importlib.util.find_spec("tensorrt") is None:
        from easyocc.export.trt_builder import import_tensorrt

        with pytest.raises(EasyOccError, match="TensorRT is not installed"):
            import_tensorrt()
