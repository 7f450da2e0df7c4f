"""Config of RadOcc distillation: the `distill` section of TrainConfig (training/config.py)."""

from __future__ import annotations

from dataclasses import dataclass

from easyocc.runtime.contract.config import setting


@dataclass(frozen=True)
class DistillConfig:
    teacher: str = ""
    """Checkpoint (.pt) of the frozen teacher, trained with the same trainer; '' = no distillation. It
    must read the student's inputs: same cameras, input size, grid and view-transform strides."""
    depth_weight: float = setting(0.0, min=0.0)
    """Weight of the depth consistency: KL between the teacher's and the student's ray termination
    distributions (plus the no-termination bin) along camera rays."""
    semantic_weight: float = setting(0.0, min=0.0)
    """Weight of the semantic consistency: L1 between teacher and student affinities (cosine) of
    rendered features of rays that fall in the same image segment."""
    kl_weight: float = setting(0.0, min=0.0)
    """Weight of the plain logit-KL baseline: KL(teacher || student) of per-voxel class distributions
    on the labelled voxels."""
    kl_temperature: float = setting(1.0, above=0.0)
    """Softmax temperature of the logit-KL baseline (the loss is scaled by its square)."""
    ray_stride: int = setting(32, min=1)
    """One camera ray every `ray_stride` pixels of the network-resolution images, in both directions."""
    sample_step_m: float = setting(0.0, min=0.0)
    """Distance between samples along a ray (0 = one voxel)."""
    far_m: float = setting(0.0, min=0.0)
    """Rays end here (0 = the grid's half diagonal in x and y)."""
    semantic_rays: int = setting(512, min=2)
    """Rays per sample whose pairwise affinities the semantic consistency compares."""
