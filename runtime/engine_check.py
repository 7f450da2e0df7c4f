"""Accepting an engine built outside EasyOcc (e.g. by trtexec), which has no sidecar manifest.

Without a sidecar, the engine itself is the evidence: what the deserialised engine reports (the
TensorRT version that built it, the GPU compute capability, its I/O tensor names, dtypes and shapes;
`tensorrt_runner._io_tensors` reads them) is checked against the ONNX model's manifest. A TensorRT
version or GPU that differs, or I/O that differs from the model contract, refuses the engine (it
would not run, or would be misread); what cannot be checked (precision, whether it came from this
very ONNX) becomes a warning, and the manifest the runtime uses is the ONNX's with the reported engine
facts. Torch-free and TensorRT-free: every decision is tested on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import EngineInfo, Manifest


@dataclass(frozen=True)
class EngineReport:
    """What a deserialised engine says about itself.

    io: {tensor name: (is_input, numpy dtype name, shape)} as tensorrt_runner reads it.
    """

    tensorrt_version: str
    compute_capability: str
    io: dict


def _major_minor(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in str(version).split(".")[:2] if part.isdigit())


def check_engine_report(
    report: EngineReport, onnx_manifest: Manifest, tensorrt_version: str, compute_capability: str, where: str
) -> tuple[Manifest, list[str]]:
    """(manifest to run the engine with, warnings) for an engine without a sidecar; raises EasyOccError
    (one line naming `where` and the first difference) when it cannot be the ONNX model's engine here."""
    if _major_minor(report.tensorrt_version) != _major_minor(tensorrt_version):
        raise EasyOccError(
            f"{where}: built with TensorRT {report.tensorrt_version}, this runtime has {tensorrt_version}; rebuild it"
        )
    if str(report.compute_capability) != str(compute_capability):
        raise EasyOccError(
            f"{where}: built for compute capability {report.compute_capability}, this GPU is {compute_capability};"
            " rebuild it"
        )
    expected = {spec.name: (True, spec.dtype, tuple(spec.shape)) for spec in onnx_manifest.inputs}
    expected.update({spec.name: (False, spec.dtype, tuple(spec.shape)) for spec in onnx_manifest.outputs})
    found = {name: (bool(i), str(d), tuple(int(v) for v in s)) for name, (i, d, s) in report.io.items()}
    for name, want in expected.items():
        if name not in found:
            raise EasyOccError(f"{where}: has no tensor '{name}' of the model (it has {', '.join(found)})")
        if found[name] != want:
            kind = lambda v: f"{'input' if v[0] else 'output'} {v[1]} {list(v[2])}"  # noqa: E731
            raise EasyOccError(f"{where}: tensor '{name}' is {kind(found[name])}, the model's is {kind(want)}")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise EasyOccError(f"{where}: tensors {extra} are not in the model's manifest")
    warnings = [
        f"{where}: no sidecar manifest (built outside EasyOcc, e.g. by trtexec); TensorRT {report.tensorrt_version},"
        f" GPU {report.compute_capability} and every I/O tensor match the ONNX model, but its precision and"
        " whether it was built from this ONNX file cannot be checked"
    ]
    info = EngineInfo(
        tensorrt_version=str(report.tensorrt_version),
        compute_capability=str(report.compute_capability),
        precision="unknown",  # engine_manager.FOREIGN_PRECISION
        onnx_sha256="",
    )
    return onnx_manifest.with_engine(info), warnings
