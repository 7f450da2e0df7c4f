"""Checks of a generated dataset against its own ground truth (used by the tests and the benchmark)."""

from __future__ import annotations

import cv2
import numpy as np
from easyocc.calibration import invert_transform, transform_points
from easyocc.runtime.contract.classes import NUM_CLASSES
from easyocc.runtime.dataset.labels import read_labels
from easyocc.runtime.dataset.lidar_projection import project_lidar
from easyocc.runtime.dataset.nuscenes import NuScenesDataset, aux_path


def _depth(root, frame) -> np.ndarray:
    with np.load(aux_path(root, frame.path, "depth")) as data:
        return data["depth_m"].astype(np.float64)


def pixel_grid_agreement(root, max_samples: int | None = None) -> dict:
    """Unproject every non-sky pixel with its depth (camera.unproject, through the global frame into the
    key frame's ego frame) and compare the pixel's class with the class of the voxel it lands in.

    Returns {"fraction": agreeing / pixels inside the grid, "pixels": count, "confusion": [18, 18]
    (row: pixel class, column: voxel class)}.
    """
    dataset = NuScenesDataset(root)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    grid = None
    for sample in dataset.samples()[:max_samples]:
        labels = read_labels(dataset.labels_path(sample))
        if grid is None:
            from easyocc.runtime.contract.grid import OCC3D_NUSCENES

            grid = OCC3D_NUSCENES
        ego0_T_global = invert_transform(sample.lidar.global_T_ego)
        for camera in dataset.rig(sample):
            frame = sample.cameras[camera.name]
            depth = _depth(root, frame)
            semantic = cv2.imread(str(aux_path(root, frame.path, "semantic")), cv2.IMREAD_UNCHANGED)
            v, u = np.nonzero(depth > 0)
            points = transform_points(
                ego0_T_global @ frame.global_T_ego, camera.unproject(np.stack([u, v], 1), depth[v, u])
            )
            index, inside = grid.index_of(points)
            voxel = labels.semantics[tuple(index[inside].T)]
            np.add.at(confusion, (semantic[v, u][inside], voxel), 1)
    total = int(confusion.sum())
    return {"fraction": float(np.trace(confusion) / max(total, 1)), "pixels": total, "confusion": confusion}


def lidar_depth_error(root, max_samples: int | None = None) -> np.ndarray:
    """|projected lidar depth - rendered depth at the nearest pixel| (m) for every lidar point that
    easyocc.runtime.dataset.lidar_projection.project_lidar (motion-compensated) puts on a non-sky pixel."""
    dataset = NuScenesDataset(root)
    errors = []
    for sample in dataset.samples()[:max_samples]:
        for projection in project_lidar(dataset, sample):
            depth = _depth(root, sample.cameras[projection.camera])
            u = np.clip(np.rint(projection.uv[:, 0]).astype(int), 0, depth.shape[1] - 1)
            v = np.clip(np.rint(projection.uv[:, 1]).astype(int), 0, depth.shape[0] - 1)
            hit = depth[v, u] > 0
            errors.append(np.abs(depth[v, u] - projection.depth_m)[hit])
    return np.concatenate(errors) if errors else np.zeros(0)


def class_histogram(root) -> np.ndarray:
    """Voxel count per class [18] over all key frames' ground truth."""
    dataset = NuScenesDataset(root)
    counts = np.zeros(NUM_CLASSES, np.int64)
    for sample in dataset.samples():
        counts += np.bincount(read_labels(dataset.labels_path(sample)).semantics.ravel(), minlength=NUM_CLASSES)
    return counts
