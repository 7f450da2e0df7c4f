"""An engine without a sidecar (trtexec) is checked by what it reports against the ONNX model's manifest."""

from __future__ import annotations

import pytest
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.engine_check import EngineReport, check_engine_report


@pytest.fixture(scope="module")
def manifest():
    import onnxruntime as ort
    from easyocc.models import bundled_model
    from easyocc.runtime.backends.onnxruntime_runner import manifest_from_metadata

    session = ort.InferenceSession(str(bundled_model(".onnx")), providers=["CPUExecutionProvider"])
    return manifest_from_metadata(session.get_modelmeta().custom_metadata_map, "bundled model")


def _report(manifest, version="10.3.0", capability="8.7", **changes):
    io = {spec.name: (True, spec.dtype, spec.shape) for spec in manifest.inputs}
    io.update({spec.name: (False, spec.dtype, spec.shape) for spec in manifest.outputs})
    io.update(changes)
    return EngineReport(version, capability, io)


def test_trtexec_engine_matching_the_model_is_accepted_with_a_warning(manifest):
    used, warnings = check_engine_report(_report(manifest, "10.3.0.26"), manifest, "10.3.0", "8.7", "model.engine")
    assert len(warnings) == 1 and "no sidecar manifest (built outside EasyOcc, e.g. by trtexec)" in warnings[0]
    assert "precision" in warnings[0]
    assert used.engine.tensorrt_version == "10.3.0.26" and used.engine.compute_capability == "8.7"
    assert used.engine.precision == "unknown" and used.inputs == manifest.inputs


def test_trtexec_engine_for_another_tensorrt_or_gpu_is_refused(manifest):
    with pytest.raises(EasyOccError, match="model.engine: built with TensorRT 8.6.2, this runtime has 10.3.0; rebuild"):
        check_engine_report(_report(manifest, "8.6.2"), manifest, "10.3.0", "8.7", "model.engine")
    with pytest.raises(EasyOccError, match="built for compute capability 8.6, this GPU is 8.7; rebuild it"):
        check_engine_report(_report(manifest, capability="8.6"), manifest, "10.3.0", "8.7", "model.engine")


def test_trtexec_engine_with_other_io_is_refused(manifest):
    images = manifest.inputs[0]
    wrong = (True, images.dtype, (images.shape[0], images.shape[1] * 2, *images.shape[2:]))
    with pytest.raises(EasyOccError, match=f"tensor '{images.name}' is input uint8 .*, the model's is input uint8"):
        check_engine_report(_report(manifest, **{images.name: wrong}), manifest, "10.3.0", "8.7", "model.engine")
    io = dict(_report(manifest).io)
    del io[manifest.outputs[0].name]
    with pytest.raises(EasyOccError, match=f"has no tensor '{manifest.outputs[0].name}' of the model"):
        check_engine_report(EngineReport("10.3.0", "8.7", io), manifest, "10.3.0", "8.7", "model.engine")
    with pytest.raises(EasyOccError, match=r"tensors \['logits'\] are not in the model's manifest"):
        report = _report(manifest, logits=(False, "float32", (18, 200, 200, 16)))
        check_engine_report(report, manifest, "10.3.0", "8.7", "model.engine")
