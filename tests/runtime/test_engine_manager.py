"""Engine management decisions on configure (CPU: real ONNX, real sidecars; TensorRT is never called)."""

from __future__ import annotations

import shutil

import pytest
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import sha256_file
from easyocc.runtime.engine_cache import expected_engine_info, sidecar_path, write_engine
from easyocc.runtime.engine_manager import (
    BUILD,
    CHECK_REPORT,
    REUSE,
    EngineRequest,
    build_command,
    decide_engine,
    onnx_manifest,
    record_foreign_engine,
)

TRT, GPU = "10.3.0", "8.7"


@pytest.fixture()
def onnx(tmp_path):
    from easyocc.models import bundled_model

    path = tmp_path / "model.onnx"
    shutil.copy(bundled_model(".onnx"), path)
    return path


def _built(onnx, engine, version=TRT, capability=GPU, precision="fp16", sha=None):
    """An engine file with the sidecar a build for these facts writes."""
    info = expected_engine_info(version, capability, precision, sha or sha256_file(onnx))
    write_engine(engine, b"serialized engine bytes", onnx_manifest(onnx), info)
    return engine


def _decide(onnx, engine, **request):
    return decide_engine(EngineRequest(str(onnx), str(engine), **request), TRT, GPU)


def test_missing_engine_is_built_with_a_timing_cache(onnx, tmp_path):
    decision = _decide(onnx, tmp_path / "model.engine")
    assert decision.action == BUILD and decision.reasons == ["no engine file"]
    command = build_command(EngineRequest(str(onnx), cache_dir=str(tmp_path / "cache")), decision.engine_path)
    assert command[1:5] == ["-m", "easyocc", "export", "engine"]
    assert command[command.index("--timing-cache") + 1] == str(tmp_path / "cache" / "timing.cache")
    assert command[command.index("--out") + 1] == str(tmp_path / "model.engine") and "--force-rebuild" in command


def test_cache_folder_name_spells_out_what_the_engine_is_bound_to(onnx, tmp_path):
    decision = decide_engine(EngineRequest(str(onnx), cache_dir=str(tmp_path / "cache")), TRT, GPU)
    assert decision.engine_path == tmp_path / "cache" / "model.fp16.sm87.trt10.3.0.engine"


def test_matching_engine_is_reused(onnx, tmp_path):
    engine = _built(onnx, tmp_path / "model.engine")
    assert _decide(onnx, engine).action == REUSE


def test_engine_of_another_tensorrt_is_rebuilt(onnx, tmp_path):
    engine = _built(onnx, tmp_path / "model.engine", version="8.6.2")
    decision = _decide(onnx, engine)
    assert decision.action == BUILD and decision.reasons == ["TensorRT version: engine 8.6.2 != now 10.3.0"]


def test_engine_of_another_gpu_is_rebuilt(onnx, tmp_path):
    engine = _built(onnx, tmp_path / "model.engine", capability="8.6")
    decision = _decide(onnx, engine)
    assert decision.action == BUILD and decision.reasons == ["GPU compute capability: engine 8.6 != now 8.7"]


def test_engine_of_another_precision_is_rebuilt(onnx, tmp_path):
    engine = _built(onnx, tmp_path / "model.engine", precision="fp32")
    decision = _decide(onnx, engine)
    assert decision.action == BUILD and decision.reasons == ["precision: engine fp32 != now fp16"]


def test_changed_onnx_rebuilds_the_engine(onnx, tmp_path):
    engine = _built(onnx, tmp_path / "model.engine")
    old = sha256_file(onnx)
    onnx.write_bytes(onnx.read_bytes() + b"\0")  # another model file (a retrained or re-exported one)
    decision = _decide(onnx, engine)
    assert decision.action == BUILD
    assert decision.reasons == [f"ONNX model (sha256): engine {old[:12]} != now {sha256_file(onnx)[:12]}"]
    assert "building it from the ONNX model: ONNX model (sha256)" in decision.message()


def test_forced_update_rebuilds_a_matching_engine(onnx, tmp_path):
    engine = _built(onnx, tmp_path / "model.engine")
    decision = _decide(onnx, engine, force=True)
    assert decision.action == BUILD and decision.reasons == ["force_engine_update is set"]


def test_trtexec_engine_without_sidecar_is_checked_not_refused(onnx, tmp_path):
    engine = tmp_path / "trtexec.engine"
    engine.write_bytes(b"an engine trtexec wrote")
    decision = _decide(onnx, engine)
    assert decision.action == CHECK_REPORT and "no sidecar manifest" in decision.message()
    alone = decide_engine(EngineRequest(engine_file_path=str(engine)), TRT, GPU)
    assert alone.action == CHECK_REPORT


def test_what_a_checked_trtexec_engine_reported_is_recorded(onnx, tmp_path):
    from easyocc.runtime.backends.tensorrt_runner import load_sidecar
    from easyocc.runtime.contract.manifest import EngineInfo

    engine = tmp_path / "trtexec.engine"
    engine.write_bytes(b"an engine trtexec wrote")
    info = EngineInfo(TRT, GPU, "unknown", sha256_file(onnx))
    record_foreign_engine(engine, onnx_manifest(onnx).with_engine(info))
    assert load_sidecar(engine).engine == info  # what the TensorRT runner reads
    assert _decide(onnx, engine).action == REUSE  # next configure: kept, whatever precision was requested
    assert _decide(onnx, engine, precision="fp32").action == REUSE
    decision = decide_engine(EngineRequest(str(onnx), str(engine)), "10.4.0", GPU)  # TensorRT upgraded: rebuild
    assert decision.action == BUILD and decision.reasons == ["TensorRT version: engine 10.3.0 != now 10.4.0"]
    assert sidecar_path(engine).is_file()


def test_nothing_to_run_is_one_line(onnx, tmp_path):
    with pytest.raises(EasyOccError, match="give model_file_path \\(ONNX\\) or engine_file_path"):
        decide_engine(EngineRequest(), TRT, GPU)
    with pytest.raises(EasyOccError, match="engine_file_path .*none.engine does not exist, and no model_file_path"):
        decide_engine(EngineRequest(engine_file_path=str(tmp_path / "none.engine")), TRT, GPU)
    with pytest.raises(EasyOccError, match="model_file_path .*missing.onnx does not exist"):
        decide_engine(EngineRequest(str(tmp_path / "missing.onnx")), TRT, GPU)
