"""RadOcc rendering-assisted distillation: a differentiable volume renderer of occupancy logits along
camera rays, camera rays and segments per training sample, the distillation losses, and the frozen
teacher that the trainer calls (training/trainer.py, config section `distill`)."""
