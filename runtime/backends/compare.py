"""The comparator (after Polygraphy's): the same feeds through several runners, differences per output.

`compare_runners([reference, candidate, ...], feeds)` activates the runners it was given inactive,
runs every feed through each of them and returns one `ParityReport` per candidate against the
first runner. Every output is compared: the fraction of elements that are exactly equal (for the
class output `semantics` this is the class agreement) and the max and mean absolute difference
(for the float output `confidence`). A report passes when the class output's agreement reaches
`min_agreement` on every frame. numpy only: export's ONNX, TorchScript, FP16 and TensorRT checks
and INT8 Q/DQ models all come through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
from easyocc.runtime.backends.base import Runner
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import OUTPUT_CONFIDENCE, OUTPUT_SEMANTICS

DEFAULT_MIN_AGREEMENT = 0.999


@dataclass(frozen=True)
class OutputDiff:
    """One output of one frame: `equal` of `size` elements identical; |reference - candidate| max and mean."""

    size: int
    equal: int
    max_abs_diff: float
    mean_abs_diff: float

    @property
    def agreement(self) -> float:
        return self.equal / self.size if self.size else 1.0


def diff_outputs(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> dict[str, OutputDiff]:
    """{output name: OutputDiff} over the reference's outputs; raises when the candidate lacks one or its shape differs."""
    diffs = {}
    for name, ref in reference.items():
        if name not in candidate:
            raise EasyOccError(f"parity: the candidate did not return output '{name}'")
        cand = np.asarray(candidate[name])
        if ref.shape != cand.shape:
            raise EasyOccError(f"parity: output '{name}' has shape {list(cand.shape)}, the reference {list(ref.shape)}")
        delta = np.abs(ref.astype(np.float64) - cand.astype(np.float64))
        diffs[name] = OutputDiff(
            size=int(ref.size),
            equal=int(np.count_nonzero(ref == cand)),
            max_abs_diff=float(delta.max()) if delta.size else 0.0,
            mean_abs_diff=float(delta.mean()) if delta.size else 0.0,
        )
    return diffs


@dataclass(frozen=True)
class FrameParity:
    """One frame: its source ('synthetic', 'dataset', ...), index and per-output differences."""

    source: str
    index: int
    outputs: dict[str, OutputDiff]
    class_output: str = OUTPUT_SEMANTICS
    value_output: str = OUTPUT_CONFIDENCE

    @property
    def agreement(self) -> float:
        return self.outputs[self.class_output].agreement

    @property
    def max_confidence_diff(self) -> float:
        return self.outputs[self.value_output].max_abs_diff if self.value_output in self.outputs else float("nan")

    @property
    def mean_confidence_diff(self) -> float:
        return self.outputs[self.value_output].mean_abs_diff if self.value_output in self.outputs else float("nan")

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "index": self.index,
            "agreement": self.agreement,
            "max_confidence_diff": self.max_confidence_diff,
            "mean_confidence_diff": self.mean_confidence_diff,
        }


@dataclass
class ParityReport:
    """A candidate against a reference over all frames; `agreement` is over all voxels of all frames."""

    frames: list[FrameParity] = field(default_factory=list)
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    reference: str = "torch eager (CPU, float32)"
    candidate: str = "ONNX Runtime (CPU)"
    class_output: str = OUTPUT_SEMANTICS
    value_output: str = OUTPUT_CONFIDENCE

    def add(self, source: str, reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> FrameParity:
        """Compare one frame's outputs ({name: array} each) and record it."""
        outputs = diff_outputs(reference, candidate)
        if self.class_output not in outputs:
            raise EasyOccError(f"parity: the reference has no class output '{self.class_output}'")
        frame = FrameParity(source, len(self.frames), outputs, self.class_output, self.value_output)
        self.frames.append(frame)
        return frame

    def output_summary(self, name: str) -> dict:
        """Over all frames: agreement (equal elements / elements), worst frame, max and mean |diff|."""
        diffs = [frame.outputs[name] for frame in self.frames]
        size = sum(d.size for d in diffs)
        return {
            "agreement": sum(d.equal for d in diffs) / size if size else 0.0,
            "worst_frame_agreement": min((d.agreement for d in diffs), default=0.0),
            "max_abs_diff": max((d.max_abs_diff for d in diffs), default=float("nan")),
            "mean_abs_diff": float(np.mean([d.mean_abs_diff for d in diffs])) if diffs else float("nan"),
        }

    @property
    def agreement(self) -> float:
        return self.output_summary(self.class_output)["agreement"] if self.frames else 0.0

    @property
    def worst_frame_agreement(self) -> float:
        return min((f.agreement for f in self.frames), default=0.0)

    @property
    def max_confidence_diff(self) -> float:
        return max((f.max_confidence_diff for f in self.frames), default=float("nan"))

    @property
    def mean_confidence_diff(self) -> float:
        return float(np.mean([f.mean_confidence_diff for f in self.frames])) if self.frames else float("nan")

    @property
    def passed(self) -> bool:
        return bool(self.frames) and self.worst_frame_agreement >= self.min_agreement

    def to_dict(self) -> dict:
        names = list(self.frames[0].outputs) if self.frames else []
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
            "outputs": {name: self.output_summary(name) for name in names},
            "per_frame": [f.to_dict() for f in self.frames],
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


def compare_runners(
    runners: Sequence[Runner],
    feeds: Iterable,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    labels: Sequence[str] | None = None,
    class_output: str = OUTPUT_SEMANTICS,
    value_output: str = OUTPUT_CONFIDENCE,
) -> list[ParityReport]:
    """Run every feed through every runner; one report per runner after the first, against the first.

    feeds: feed dicts ({input name: array}) or (source, feed) pairs; each runner checks each feed.
    labels: names for the reports (default: each runner's `describe()` or `name`). Runners given
    inactive are activated here and deactivated on return; active ones are left active.
    """
    if len(runners) < 2:
        raise EasyOccError(f"parity: a comparison needs at least two runners, got {len(runners)}")
    with ExitStack() as stack:
        for runner in runners:
            if not runner.is_active:
                stack.enter_context(runner)
        labels = list(labels) if labels is not None else [_label(r) for r in runners]
        if len(labels) != len(runners):
            raise EasyOccError(f"parity: {len(labels)} labels for {len(runners)} runners")
        reports = [
            ParityReport(
                min_agreement=min_agreement,
                reference=labels[0],
                candidate=label,
                class_output=class_output,
                value_output=value_output,
            )
            for label in labels[1:]
        ]
        for item in feeds:
            source, feed = item if isinstance(item, tuple) else ("feed", item)
            reference = runners[0].infer(feed)
            for runner, report in zip(runners[1:], reports):
                report.add(source, reference, runner.infer(feed))
    return reports


def _label(runner: Runner) -> str:
    describe = getattr(runner, "describe", None)
    return describe() if callable(describe) else runner.name
