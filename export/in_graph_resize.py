"""Export with the resize inside the graph (`easyocc export onnx --resize-in-graph`) and its parity
against the CPU resize, through the runtime.

The exported model takes images uint8 [N_cam, Hc, Wc, 3] at the cameras' resolution and resizes them
inside the graph (export.wrapper.GraphResize), so raw camera frames leave the CPU nothing to do but
one copy into the input buffer.

The same frames (real JPEGs) go through OccupancyRuntimes: the in-graph model, which gets the images
at the cameras' resolution (decoded at full size) and resizes them inside its graph, against the
reference model fed by the CPU path (cv2.INTER_AREA) from the same full-size decode: that isolates
the resize, and its class agreement per frame must reach the export's 99.9 % bar. The reference with
the runtime's default reduced-size JPEG decode (1/2, 1/4 in the IDCT) is reported beside it: that
difference is the decoder's, not the resize's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from easyocc.runtime.backends.compare import DEFAULT_MIN_AGREEMENT
from easyocc.runtime.contract.errors import EasyOccError


@dataclass
class ResizeParity:
    """Per-frame class agreement and confidence difference of the in-graph model against the reference."""

    agreement: list[float] = field(default_factory=list)
    confidence_mean_abs_diff: list[float] = field(default_factory=list)
    reduced_decode_agreement: list[float] = field(default_factory=list)
    min_agreement: float = DEFAULT_MIN_AGREEMENT

    @property
    def worst(self) -> float:
        return min(self.agreement) if self.agreement else float("nan")

    @property
    def passed(self) -> bool:
        return bool(self.agreement) and self.worst >= self.min_agreement

    def to_dict(self) -> dict:
        return {
            "frames": len(self.agreement),
            "agreement_per_frame": [round(a, 6) for a in self.agreement],
            "worst_frame_agreement": self.worst,
            "mean_agreement": float(np.mean(self.agreement)) if self.agreement else float("nan"),
            "confidence_mean_abs_diff": float(np.mean(self.confidence_mean_abs_diff))
            if self.confidence_mean_abs_diff
            else float("nan"),
            "reduced_decode_reference_agreement": [round(a, 6) for a in self.reduced_decode_agreement],
            "min_agreement": self.min_agreement,
            "passed": self.passed,
        }

    def summary(self) -> str:
        return (
            f"in-graph vs CPU resize: class agreement worst {100 * self.worst:.3f} %, "
            f"mean {100 * float(np.mean(self.agreement)):.3f} % over {len(self.agreement)} frames "
            f"({'pass' if self.passed else 'FAIL'}, bar {100 * self.min_agreement:.1f} %)"
        )


def rig_camera_size(rig) -> tuple[int, int]:
    """(width, height) shared by every camera of the rig (the in-graph model has one static input)."""
    sizes = {(camera.width, camera.height) for camera in rig}
    if len(sizes) != 1:
        listed = ", ".join(f"{c.name} {c.width}x{c.height}" for c in rig)
        raise EasyOccError(f"--resize-in-graph needs one image size for all cameras; the rig has {listed}")
    return sizes.pop()


def export_in_graph_resize(model, manifest, rig, out, data=None, frames: int = 4, min_agreement=DEFAULT_MIN_AGREEMENT):
    """Export `model` twice (network-size images, the reference; camera-size images resized in the
    graph, to `out`) and compare them on `frames` real frames of the dataset `data` (None: no parity).
    Returns (ExportResult of `out`, ResizeParity or None)."""
    import tempfile
    from pathlib import Path

    from easyocc.export.onnx_export import export_onnx
    from easyocc.export.wrapper import in_graph_resize_manifest
    from easyocc.runtime.sources import NuScenesSource

    in_graph = in_graph_resize_manifest(manifest, rig_camera_size(rig))
    result = export_onnx(model, in_graph, out)
    if data is None:
        return result, None
    source = NuScenesSource(data)
    if source.rig.names != rig.names or rig_camera_size(source.rig) != rig_camera_size(rig):
        raise EasyOccError(f"dataset {data}: its cameras differ from the export rig's {list(rig.names)}")
    with tempfile.TemporaryDirectory(prefix="easyocc-resize-") as folder:
        reference = export_onnx(model, manifest, Path(folder) / "reference.onnx").path
        step = max(1, len(source.samples) // max(1, frames))
        picked = [frame for i, frame in enumerate(source) if i % step == 0][:frames]
        parity = compare_in_graph_resize(reference, result.path, picked, rig=source.rig, min_agreement=min_agreement)
    return result, parity


def compare_in_graph_resize(
    reference_model,
    in_graph_model,
    frames,
    rig=None,
    threads: int | None = 1,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
) -> ResizeParity:
    """Run `frames` (FrameSets of encoded or raw camera images) through both models; compare semantics.

    threads=1 by default: the same float reduction order in both sessions, so what differs is the resize.
    """
    from easyocc.runtime.occupancy import OccupancyRuntime

    report = ResizeParity(min_agreement=min_agreement)
    with (
        OccupancyRuntime(reference_model, rig=rig, threads=threads, reduced_decode=False) as reference,
        OccupancyRuntime(reference_model, rig=rig, threads=threads) as deployed,
        OccupancyRuntime(in_graph_model, rig=rig, threads=threads) as candidate,
    ):
        for frame in frames:
            for runtime in (reference, deployed, candidate):
                runtime.reset()
            expected = reference.process(frame)
            actual = candidate.process(frame)
            report.agreement.append(float(np.mean(expected.semantics == actual.semantics)))
            delta = np.abs(expected.confidence.astype(np.float64) - actual.confidence.astype(np.float64))
            report.confidence_mean_abs_diff.append(float(delta.mean()))
            reduced = deployed.process(frame).semantics
            report.reduced_decode_agreement.append(float(np.mean(reduced == actual.semantics)))
    return report
