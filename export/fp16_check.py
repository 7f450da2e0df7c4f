"""FP16 readiness on the CPU: would the model survive float16 weights and activations?

No GPU is needed. Two runs of the deploy-wrapped torch model on the same feeds:
1. float32 with forward hooks on every module, recording each module's largest |activation|;
   modules above the float16 maximum (65504) would overflow to inf in an FP16 engine;
2. float16 emulation: weights rounded to float16, the float inputs rounded to float16, and every
   module's output rounded through float16 by a forward hook (overflow becomes inf, as on the GPU).
The emulation rounds at module boundaries only (functional operations between modules, such as
the view transform's sums, stay float32), so it approximates TensorRT FP16, which may also keep
some layers in float32. The report gives the class agreement and confidence difference of run 2
against run 1 and the modules at risk.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from easyocc.runtime.backends.compare import ParityReport
from easyocc.runtime.contract.manifest import Manifest

FLOAT16_MAX = 65504.0


@dataclass
class Fp16Report:
    """parity: float16 emulation vs float32; peaks: module -> largest |activation| in float32."""

    parity: ParityReport
    peaks: dict[str, float] = field(default_factory=dict)
    warn_fraction: float = 0.25

    @property
    def overflowing(self) -> list[str]:
        return [name for name, peak in self.peaks.items() if not peak < FLOAT16_MAX]

    @property
    def near_overflow(self) -> list[str]:
        return [name for name, peak in self.peaks.items() if self.warn_fraction * FLOAT16_MAX <= peak < FLOAT16_MAX]

    def to_dict(self) -> dict:
        largest = sorted(self.peaks.items(), key=lambda item: -item[1])[:10]
        return {
            "method": "torch float16 emulation on the CPU (weights, float inputs and module outputs rounded to float16)",
            "agreement_with_fp32": self.parity.agreement,
            "worst_frame_agreement": self.parity.worst_frame_agreement,
            "max_confidence_diff": self.parity.max_confidence_diff,
            "mean_confidence_diff": self.parity.mean_confidence_diff,
            "overflowing_modules": self.overflowing,
            "near_overflow_modules": self.near_overflow,
            "largest_activations": {name: peak for name, peak in largest},
            "float16_max": FLOAT16_MAX,
        }

    def summary(self) -> str:
        risky = self.overflowing or ["none"]
        return (
            f"fp16 check: class agreement with fp32 {100 * self.parity.agreement:.3f} % "
            f"(worst frame {100 * self.parity.worst_frame_agreement:.3f} %), confidence |diff| max "
            f"{self.parity.max_confidence_diff:.2e}; modules over the float16 range: {', '.join(risky)}"
        )


def _leaf_modules(model):
    return [(name, module) for name, module in model.named_modules() if name and not list(module.children())]


def _round_half(value):
    import torch

    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.half().float()
    if isinstance(value, tuple):
        return tuple(_round_half(v) for v in value)
    return value


def _peak(value) -> float:
    import torch

    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
        return float(value.detach().abs().max())
    if isinstance(value, tuple | list):
        return max((_peak(v) for v in value), default=0.0)
    return 0.0


def fp16_emulation_runner(model, manifest: Manifest):
    """The runtime's torch runner around a copy of `model` that emulates an FP16 engine: weights and
    buffers rounded to float16, every leaf module's output rounded through float16 (forward hooks on
    the copy), the view-transform tables rounded on the way in. Also used to score FP16 accuracy."""
    import torch
    from easyocc.export.parity import torch_eager_runner
    from easyocc.export.wrapper import HalfTables

    runner = torch_eager_runner(copy.deepcopy(model), manifest)
    with torch.no_grad():
        for tensor in [*runner.module.model.parameters(), *runner.module.model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    for _, module in _leaf_modules(runner.module.model):
        module.register_forward_hook(lambda _m, _i, out: _round_half(out))
    runner.module = HalfTables(runner.module)
    return runner


def check_fp16(model, manifest: Manifest, feeds) -> Fp16Report:
    """Run the float32 and float16-emulated model on every (source, feed) pair, through the comparator."""
    from easyocc.export.parity import torch_eager_runner
    from easyocc.runtime.backends.compare import compare_runners

    fp32 = torch_eager_runner(model, manifest)
    fp16 = fp16_emulation_runner(model, manifest)
    peaks: dict[str, float] = {}

    def record(name):
        def hook(_module, _inputs, output):
            peaks[name] = max(peaks.get(name, 0.0), _peak(output))

        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in _leaf_modules(fp32.module.model)]
    try:
        (report,) = compare_runners(
            [fp32, fp16], feeds, labels=["torch float32 (CPU)", "torch float16 emulation (CPU)"]
        )
    finally:
        for handle in handles:
            handle.remove()
    return Fp16Report(parity=report, peaks=peaks)
