"""The frozen teacher and the distillation step the trainer adds to its loss.

`Distiller(config.distill, config.model, student)` loads the teacher checkpoint (eval mode, no
gradients), checks that it reads the student's inputs, and hooks the student: the student's own
forward (inside the trainer's objective) leaves its logits and, where the head exposes one (a
`classifier` layer), the features that layer reads. `distiller.loss(batch)` then runs the teacher
without gradients, renders both along the batch's camera rays and returns the weighted sum of the
enabled terms. Nothing is added to the student: its checkpoint, export and ONNX contract are unchanged.
"""

from __future__ import annotations

import torch
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.distill.config import DistillConfig
from easyocc.training.distill.losses import depth_consistency, logit_kl, segment_affinity_loss
from easyocc.training.distill.render import Rendered, render_rays
from easyocc.training.model import ModelConfig, load_checkpoint

SHARED_INPUTS = ("input_size", "camera_names", "grid", "stride_xy", "stride_z", "num_classes", "min_depth_m")


def load_teacher(path: str, student: ModelConfig, device) -> torch.nn.Module:
    """The teacher in eval mode with frozen weights; refuses one that needs other inputs."""
    teacher, config = load_checkpoint(path)
    differing = [name for name in SHARED_INPUTS if getattr(config, name) != getattr(student, name)]
    if differing:
        raise EasyOccError(
            f"distill.teacher {path}: reads other inputs than the student ({', '.join(differing)} differ)"
        )
    teacher.requires_grad_(False)
    return teacher.to(device).eval()


class _Capture:
    """Forward hooks that keep a module's output and its head classifier's input (features)."""

    def __init__(self, model: torch.nn.Module):
        self.logits = self.features = None
        self.handles = [model.register_forward_hook(self._output)]
        classifier = getattr(getattr(model, "head", None), "classifier", None)
        if classifier is not None:
            self.handles.append(classifier.register_forward_hook(self._input))

    def _output(self, module, inputs, output):
        self.logits = output

    def _input(self, module, inputs, output):
        features = inputs[0]
        self.features = features[..., None] if features.dim() == 4 else features  # BEV -> [B, F, X, Y, 1]


class Distiller:
    """names: the loss parts it logs; loss(batch) -> (weighted sum, {part: float})."""

    def __init__(self, config: DistillConfig, student_config: ModelConfig, student: torch.nn.Module, device):
        if not (config.depth_weight or config.semantic_weight or config.kl_weight):
            raise EasyOccError("distill.teacher is set but depth_weight, semantic_weight and kl_weight are all 0")
        self.config, self.grid = config, student_config.grid_spec
        self.teacher = load_teacher(config.teacher, student_config, device)
        self.student = _Capture(student)
        self.taught = _Capture(self.teacher)
        self.names = tuple(
            name
            for name, weight in (
                ("depth", config.depth_weight),
                ("sem", config.semantic_weight),
                ("kl", config.kl_weight),
            )
            if weight
        )
        self.generator = torch.Generator().manual_seed(0)

    @property
    def needs_rays(self) -> bool:
        return bool(self.config.depth_weight or self.config.semantic_weight)

    def _render(self, logits, features, batch) -> Rendered:
        far = self.config.far_m or float(max(abs(v) for v in (*self.grid.lower[:2], *self.grid.upper[:2])) * 2**0.5)
        step = self.config.sample_step_m or self.grid.voxel_size
        feats = features if (features is not None and self.config.semantic_weight) else None
        return render_rays(
            logits.float(), self.grid, batch["ray_origins"], batch["ray_dirs"], far=far, step=step, features=feats
        )

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Distillation terms for the batch the student has just run on (its hooks hold the outputs)."""
        student_logits = self.student.logits
        if student_logits is None:
            raise EasyOccError("distill: the student has not run on this batch")
        with torch.no_grad():
            teacher_logits = self.teacher(batch["images"], batch["vt_uv"], batch["vt_weights"])
        cfg, parts, total = self.config, {}, student_logits.new_zeros(())
        if self.needs_rays:
            student = self._render(student_logits, self.student.features, batch)
            with torch.no_grad():
                teacher = self._render(teacher_logits, self.taught.features, batch)
            if cfg.depth_weight:
                depth = depth_consistency(student, teacher)
                total, parts["depth"] = total + cfg.depth_weight * depth, float(depth.detach())
            if cfg.semantic_weight:
                # rendered features where both heads expose them, else the rendered class distributions
                both = student.features is not None and teacher.features is not None
                fs, ft = (student.features, teacher.features) if both else (student.classes, teacher.classes)
                sem = segment_affinity_loss(fs, ft, batch["ray_segments"], cfg.semantic_rays, self.generator)
                total, parts["sem"] = total + cfg.semantic_weight * sem, float(sem.detach())
        if cfg.kl_weight:
            mask = batch.get("mask")
            kl = logit_kl(student_logits, teacher_logits, mask.bool() if mask is not None else None, cfg.kl_temperature)
            total, parts["kl"] = total + cfg.kl_weight * kl, float(kl.detach())
        self.student.logits = self.student.features = None
        return total, parts
