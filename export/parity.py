"""Numeric parity of the deployed ONNX model (ONNX Runtime, CPU) against torch eager, per frame.

Reported per frame and overall: the fraction of voxels whose class agrees, and the max and mean
absolute difference of the confidence. Export fails when the agreement is below the threshold
(99.9 % by default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError

DEFAULT_MIN_AGREEMENT = 0.999


@dataclass(frozen=True)
class FrameParity:
    """One frame: source ('synthetic' or 'dataset'), class agreement fraction, confidence diffs."""

    source: str
    index: int
    agreement: float
    max_confidence_diff: float
    mean_confidence_diff: float


@dataclass
class ParityReport:
    """All frames compared; `agreement` is over all voxels of all frames."""

    frames: list[FrameParity] = field(default_factory=list)
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    reference: str = "torch eager (CPU, float32)"
    candidate: str = "ONNX Runtime (CPU)"
    _agree: int = 0
    _voxels: int = 0

    def add(self, source: str, reference: tuple, candidate: tuple) -> FrameParity:
        """Compare (semantics, confidence) of the reference and the candidate for one frame."""
        ref_sem, ref_conf = reference
        cand_sem, cand_conf = candidate
        if ref_sem.shape != cand_sem.shape or ref_conf.shape != cand_conf.shape:
            raise EasyOccError(
                f"parity: output shapes differ: semantics {ref_sem.shape} vs {cand_sem.shape}, "
                f"confidence {ref_conf.shape} vs {cand_conf.shape}"
            )
        agree = int(np.count_nonzero(ref_sem == cand_sem))
        diff = np.abs(ref_conf.astype(np.float64) - cand_conf.astype(np.float64))
        frame = FrameParity(
            source=source,
            index=len(self.frames),
            agreement=agree / ref_sem.size,
            max_confidence_diff=float(diff.max()),
            mean_confidence_diff=float(diff.mean()),
        )
        self.frames.append(frame)
        self._agree += agree
        self._voxels += ref_sem.size
        return frame

    @property
    def agreement(self) -> float:
        return self._agree / self._voxels if self._voxels else 0.0

    @property
    def worst_frame_agreement(self) -> float:
        return min((f.agreement for f in self.frames), default=0.0)

    @property
    def max_confidence_diff(self) -> float:
        return max((f.max_confidence_diff for f in self.frames), default=float("nan"))

    @property
    def mean_confidence_diff(self) -> float:
        if not self.frames:
            return float("nan")
        return float(np.mean([f.mean_confidence_diff for f in self.frames]))

    @property
    def passed(self) -> bool:
        return bool(self.frames) and self.worst_frame_agreement >= self.min_agreement

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reference": self.reference,
            "candidate": self.candidate,
            "frames": len(self.frames),
            "frames_by_source": {
                s: sum(f.source == s for f in self.frames) for s in sorted({f.source for f in self.frames})
            },
            "agreement": self.agreement,
            "worst_frame_agreement": self.worst_frame_agreement,
            "min_agreement": self.min_agreement,
            "max_confidence_diff": self.max_confidence_diff,
            "mean_confidence_diff": self.mean_confidence_diff,
            "per_frame": [asdict(f) for f in self.frames],
        }

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"parity {verdict}: {self.candidate} vs {self.reference} on {len(self.frames)} frames: "
            f"class agreement {100 * self.agreement:.4f} % (worst frame {100 * self.worst_frame_agreement:.4f} %, "
            f"required {100 * self.min_agreement:.2f} %), confidence |diff| max {self.max_confidence_diff:.2e} "
            f"mean {self.mean_confidence_diff:.2e}"
        )

    def raise_if_failed(self) -> None:
        if not self.frames:
            raise EasyOccError("parity: no frames were compared")
        if not self.passed:
            worst = min(self.frames, key=lambda f: f.agreement)
            raise EasyOccError(
                f"parity failed: {worst.source} frame {worst.index} agrees on {100 * worst.agreement:.4f} % of voxels, "
                f"below the required {100 * self.min_agreement:.2f} %"
            )


def compare_onnx_to_torch(
    model,
    onnx_path,
    feeds,
    num_classes: int,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    threads: int | None = None,
    report: ParityReport | None = None,
) -> ParityReport:
    """Run every (source, feed) pair through torch eager and ONNX Runtime and add it to a report."""
    from easyocc.export.feeds import check_feed
    from easyocc.export.onnx_export import onnxruntime_session, run_session
    from easyocc.export.onnx_model import read_manifest
    from easyocc.export.wrapper import DeployWrapper, reference_outputs

    manifest = read_manifest(onnx_path)
    session = onnxruntime_session(onnx_path, threads)
    wrapper = DeployWrapper(model, num_classes).eval()
    report = report or ParityReport(min_agreement=min_agreement)
    for source, feed in feeds:
        check_feed(manifest, feed)
        report.add(source, reference_outputs(wrapper, feed, num_classes), run_session(session, feed))
    return report
