"""Scoring saved predictions (`easyocc eval --predictions`): torch-free, any model's outputs.

Predictions are stored in the Occ3D layout, `DIR/<scene>/<sample_token>/labels.npz` with key
`semantics` (uint8 [X, Y, Z], classes 0-17); the ground truth is the dataset's (or another labels
folder's) `gts/<scene>/<sample_token>/labels.npz`. Every sample of each scene present in DIR (or of
the scenes asked for) must have a prediction. Scores, all in percent: the Occ3D voxel metric inside
the camera mask and on the full scene, and RayIoU (no mask) with rays from the scene's lidar origins.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from easyocc.runtime.contract.classes import NUM_CLASSES
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.dataset.labels import read_labels
from easyocc.runtime.dataset.metric import OccMetric
from easyocc.runtime.dataset.nuscenes import NuScenesDataset
from easyocc.runtime.dataset.rayiou import RayMetric, sample_lidar_origins

PREDICTION_FILE = "labels.npz"
HEADLINE_KEYS = ("miou", "miou_star", "geometry_iou", "rayiou", "rayiou@1", "rayiou@2", "rayiou@4")


def prediction_path(root, scene_name: str, sample_token: str) -> Path:
    return Path(root) / scene_name / sample_token / PREDICTION_FILE


def read_prediction(path, grid: GridSpec) -> np.ndarray:
    """uint8 [X, Y, Z] `semantics` of a saved prediction; one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise EasyOccError(f"prediction file not found: {path}")
    try:
        with np.load(path) as data:
            if "semantics" not in data:
                raise EasyOccError(f"prediction file {path}: no 'semantics' array (keys: {', '.join(data.files)})")
            semantics = np.asarray(data["semantics"])
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EasyOccError(f"prediction file {path}: unreadable ({exc})") from None
    if semantics.dtype != np.uint8:
        raise EasyOccError(f"prediction file {path}: semantics has dtype {semantics.dtype}, expected uint8")
    if semantics.shape != grid.shape:
        raise EasyOccError(f"prediction file {path}: semantics has shape {semantics.shape}, grid expects {grid.shape}")
    if semantics.size and int(semantics.max()) >= NUM_CLASSES:
        raise EasyOccError(f"prediction file {path}: class id {int(semantics.max())} >= {NUM_CLASSES}")
    return semantics


def headline(camera: dict, rays: dict) -> dict:
    """The top-level scores of an evaluation: voxel metric inside the camera mask, RayIoU beside it."""
    return {
        "miou": camera["miou"],
        "miou_star": camera["miou_star"],
        "geometry_iou": camera["geometry_iou"],
        **{key: rays[key] for key in HEADLINE_KEYS[3:]},
    }


def _predicted_scenes(root: Path, dataset: NuScenesDataset) -> list[str]:
    """Scene folders under DIR; each must be a dataset scene and hold only dataset sample tokens."""
    known = set(dataset.scene_names)
    scenes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not scenes:
        raise EasyOccError(f"predictions folder {root}: no <scene>/<sample_token>/{PREDICTION_FILE} inside")
    for scene in scenes:
        if scene not in known:
            raise EasyOccError(f"predictions folder {root / scene}: scene '{scene}' is not in dataset {dataset.root}")
        tokens = set(dataset.sample_tokens(scene))
        for token_dir in sorted((root / scene).iterdir()):
            if token_dir.name not in tokens:
                raise EasyOccError(
                    f"prediction {token_dir / PREDICTION_FILE}: sample token '{token_dir.name}' is not in scene "
                    f"'{scene}' of dataset {dataset.root}"
                )
    return scenes


def score_predictions(
    predictions,
    data,
    labels=None,
    scenes: list[str] | None = None,
    grid: GridSpec | None = None,
    rays: bool = True,
) -> dict:
    """Score `predictions` (DIR/<scene>/<token>/labels.npz) against the ground truth of dataset `data`
    (or of labels folder `labels`). Returns the headline scores (percent) at the top level plus
    "camera" and "full" voxel results, "rays" (RayIoU per class), "frames" and text "tables"."""
    root = Path(predictions)
    if not root.is_dir():
        raise EasyOccError(f"predictions folder not found: {root}")
    dataset = NuScenesDataset(data)
    grid = grid or GridSpec()
    scenes = list(scenes) if scenes else _predicted_scenes(root, dataset)
    metrics = {"camera": OccMetric(), "full": OccMetric()}
    ray_metric = RayMetric(grid)
    for scene in scenes:
        for sample in dataset.samples(scene):
            prediction = read_prediction(prediction_path(root, scene, sample.token), grid)
            truth = read_labels(dataset.labels_path(sample, labels), grid)
            metrics["camera"].update(prediction, truth.semantics, truth.mask("camera"))
            metrics["full"].update(prediction, truth.semantics, None)
            if rays:
                ray_metric.update(prediction, truth.semantics, sample_lidar_origins(dataset, sample))
    results = {name: metric.results() for name, metric in metrics.items()}
    ray_results = ray_metric.results()
    summary = headline(results["camera"], ray_results)
    tables = {name: metric.table(f"{name} ({metric.frames} frames)") for name, metric in metrics.items()}
    tables["rayiou"] = ray_metric.table(f"RayIoU ({ray_metric.frames} frames, {ray_metric.rays} rays)")
    return {
        **summary,
        "units": "percent",
        "frames": metrics["full"].frames,
        "scenes": scenes,
        **results,
        "rays": ray_results,
        "tables": tables,
    }
