"""Training: synthetic world, pseudo-labels and their providers, model, losses, metric, trainer.

Importing this package does not import torch; the synthetic world runs on numpy alone.
"""
