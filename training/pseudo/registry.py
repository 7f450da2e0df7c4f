"""The provider registry: segmenters and depth estimators by their CLI names, each imported lazily
(the foundation-model ones need torch and transformers). Kept apart from the interfaces
(providers.py), which the implementations import: no import cycle."""

from __future__ import annotations

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.pseudo.providers import DepthEstimator, Segmenter

SEGMENTERS = ("ground-truth", "simulated-low", "simulated-high", "boxes", "grounded-sam")
DEPTHS = (
    "ground-truth",
    "simulated-low",
    "simulated-high",
    "lidar",
    "metric3d",
    "metric3d-vit-large",
    "metric3d-vit-giant2",
    "depth-anything",
)
RELATIVE_DEPTHS = ("simulated-relative-low", "simulated-relative-high", "lidar-relative")
"""Relative (disparity) stand-ins: only usable as aligned-<name>."""


def build_segmenter(name: str, models_dir=None, vocabulary=None, seed: int = 0) -> Segmenter:
    """A segmenter by CLI name (see SEGMENTERS)."""
    if name in ("ground-truth", "simulated-low", "simulated-high"):
        from easyocc.training.pseudo.simulated import SimulatedSegmenter

        return SimulatedSegmenter(noise=name.split("-")[-1] if name != "ground-truth" else "none", seed=seed)
    if name == "boxes":
        from easyocc.training.pseudo.lidar_boxes import BoxSegmenter

        return BoxSegmenter()
    if name == "grounded-sam":
        from easyocc.training.pseudo.grounded_sam import GroundedSam

        return GroundedSam.from_folders(
            _model_folder(models_dir, "grounding-dino"), _model_folder(models_dir, "sam"), vocabulary
        )
    raise EasyOccError(f"unknown segmenter '{name}'; known: {', '.join(SEGMENTERS)}")


def build_depth(name: str, models_dir=None, seed: int = 0, anchor: str = "none") -> DepthEstimator:
    """A depth estimator by CLI name (see DEPTHS, RELATIVE_DEPTHS); 'aligned-<name>' wraps one in the
    metric alignment (align.py; `anchor` 'none' or 'lidar'). A relative model without 'aligned-' is
    refused: its output is disparity up to scale and shift, not metres."""
    if name.startswith("aligned-"):
        from easyocc.training.pseudo.align import AlignedDepth

        return AlignedDepth(_build_base(name[len("aligned-") :], models_dir, seed), anchor)
    depth = _build_base(name, models_dir, seed)
    if getattr(depth, "relative", False):
        raise EasyOccError(
            f"depth '{name}' is relative (disparity up to scale and shift, not metres); use --depth aligned-{name}"
        )
    return depth


def _build_base(name: str, models_dir, seed: int) -> DepthEstimator:
    if name in RELATIVE_DEPTHS:
        if name == "lidar-relative":
            from easyocc.training.pseudo.relative import LidarRelativeDepth

            return LidarRelativeDepth(seed=seed)
        from easyocc.training.pseudo.simulated import SimulatedRelativeDepth

        return SimulatedRelativeDepth(noise=name.split("-")[-1], seed=seed)
    if name in ("ground-truth", "simulated-low", "simulated-high"):
        from easyocc.training.pseudo.simulated import SimulatedDepth

        return SimulatedDepth(noise=name.split("-")[-1] if name != "ground-truth" else "none", seed=seed)
    if name == "lidar":
        from easyocc.training.pseudo.lidar_boxes import LidarDepth

        return LidarDepth()
    if name == "metric3d" or name.startswith("metric3d-"):
        from easyocc.training.pseudo.metric_depth import Metric3D

        variant = name[len("metric3d-") :] if name != "metric3d" else "vit-small"
        return Metric3D(_model_folder(models_dir, "metric3d"), variant=variant)
    if name == "depth-anything":
        from easyocc.training.pseudo.metric_depth import DepthAnything

        return DepthAnything(_model_folder(models_dir, "depth-anything"))
    raise EasyOccError(
        f"unknown depth estimator '{name}'; known: {', '.join(DEPTHS + RELATIVE_DEPTHS)} or aligned-<name>"
    )


def _model_folder(models_dir, name: str):
    from pathlib import Path

    if models_dir is None:
        raise EasyOccError(f"provider needs --models DIR with a '{name}' folder (local weights, no downloads)")
    folder = Path(models_dir) / name
    if not folder.is_dir():
        raise EasyOccError(f"model folder not found: {folder}")
    return folder
