"""Label quality: against ground-truth labels (synthetic world), and against the next key frame's
lidar (real data, where no 3-D ground truth exists)."""

from __future__ import annotations

import numpy as np
from easyocc.calibration import invert_transform, transform_points
from easyocc.runtime.contract.classes import DYNAMIC_CLASSES, FREE
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.dataset.labels import OccLabels
from easyocc.runtime.dataset.lidar_projection import lidar_points_ego
from easyocc.runtime.dataset.metric import OccMetric
from easyocc.runtime.dataset.nuscenes import NuScenesDataset, Sample
from easyocc.training.pseudo.pipeline import label_frame_pose


class LabelQuality:
    """Accumulates pseudo-labels vs ground truth: the Occ3D metric inside the GT camera mask, and the
    fraction of voxels labelled free (and observed) that are free in the ground truth."""

    def __init__(self):
        self.metric = OccMetric()
        self.free_total = 0
        self.free_correct = 0

    def update(self, pseudo: OccLabels, truth: OccLabels) -> None:
        self.metric.update(pseudo.semantics, truth.semantics, truth.mask_camera.astype(bool))
        labelled_free = (pseudo.semantics == FREE) & pseudo.mask_camera.astype(bool)
        self.free_total += int(labelled_free.sum())
        self.free_correct += int((labelled_free & (truth.semantics == FREE)).sum())

    def results(self) -> dict:
        results = self.metric.results()
        results.pop("per_class_iou")
        results["free_precision"] = 100 * self.free_correct / self.free_total if self.free_total else float("nan")
        results["free_voxels"] = self.free_total
        return results


def next_frame_lidar_fraction(
    dataset: NuScenesDataset, labels: OccLabels, sample: Sample, next_sample: Sample, grid: GridSpec
) -> dict:
    """Fraction of the next key frame's lidar returns (motion-compensated into `sample`'s label frame,
    points inside dynamic-class boxes and on the ego vehicle removed) that fall in occupied voxels.

    Returns {"fraction": strict, "fraction_within_1_voxel": with a one-voxel tolerance, "points": N}.
    """
    points_ego = lidar_points_ego(dataset, next_sample)
    sensor = next_sample.lidar.ego_T_sensor[:3, 3]
    points_ego = points_ego[np.linalg.norm(points_ego - sensor, axis=1) >= 2.0]
    points_global = transform_points(next_sample.lidar.global_T_ego, points_ego)
    static = np.ones(len(points_global), dtype=bool)
    for box in dataset.boxes(next_sample):
        if box.class_id not in DYNAMIC_CLASSES:
            continue
        local = (points_global - box.centre_global) @ box.rotation_global
        half = np.array([box.size_wlh[1], box.size_wlh[0], box.size_wlh[2]]) / 2 + 0.2
        static &= ~np.all(np.abs(local) <= half, axis=1)
    points_label = transform_points(invert_transform(label_frame_pose(sample)), points_global[static])
    index, inside = grid.index_of(points_label)
    occupied = labels.semantics != FREE
    hit = occupied[tuple(index[inside].T)]
    dilated = occupied.copy()
    for axis in range(3):
        for shift in (-1, 1):
            dilated |= np.roll(occupied, shift, axis=axis)
    near = dilated[tuple(index[inside].T)]
    count = int(inside.sum())
    return {
        "fraction": float(hit.mean()) if count else float("nan"),
        "fraction_within_1_voxel": float(near.mean()) if count else float("nan"),
        "points": count,
    }


class DepthQuality:
    """Per-camera depth error against the image's own lidar (projected, motion-compensated):
    abs_rel = mean |d - d*| / d*, delta1 = fraction with max(d / d*, d* / d) < 1.25, over lidar
    returns within `max_depth_m`; coverage = fraction of those returns where the depth map has a value
    (the others are not in abs_rel)."""

    def __init__(self, max_depth_m: float = 80.0):
        self.max_depth_m = float(max_depth_m)
        self._sums: dict[str, np.ndarray] = {}

    def update(self, view, depth_m: np.ndarray) -> None:
        """view: providers.ImageView of a sample with lidar; depth_m: float [H, W] m, 0 = none."""
        from easyocc.training.pseudo.lidar_boxes import LidarDepth

        if view.sample.lidar is None:
            return
        lidar = LidarDepth().estimate(None, view)
        returns = (lidar > 0) & (lidar <= self.max_depth_m)
        truth, predicted = lidar[returns].astype(np.float64), depth_m[returns].astype(np.float64)
        has = predicted > 0
        truth, predicted = truth[has], predicted[has]
        ratio = np.maximum(predicted / truth, truth / np.maximum(predicted, 1e-9))
        sums = self._sums.setdefault(view.channel, np.zeros(5))
        sums += [(np.abs(predicted - truth) / truth).sum(), (ratio < 1.25).sum(), len(truth), int(returns.sum()), 1]

    def results(self) -> dict:
        """{camera: {abs_rel, delta1, coverage, returns, images}}."""
        out = {}
        for channel, (abs_rel, delta1, used, total, images) in self._sums.items():
            out[channel] = {
                "abs_rel": abs_rel / used if used else float("nan"),
                "delta1": delta1 / used if used else float("nan"),
                "coverage": used / total if total else float("nan"),
                "returns": int(used),
                "images": int(images),
            }
        return out


def depth_table(depth: dict) -> str:
    """The per-camera depth errors of `DepthQuality.results()` as a text table."""
    lines = [f"{'camera':<16} {'abs_rel':>8} {'delta1':>8} {'coverage':>9} {'returns':>8}"]
    for channel, row in depth.items():
        lines.append(
            f"{channel:<16} {row['abs_rel']:>8.4f} {row['delta1']:>8.4f} {row['coverage']:>9.4f} {row['returns']:>8d}"
        )
    return "\n".join(lines)
