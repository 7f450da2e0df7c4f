"""The Occ3D metric: one 18x18 confusion matrix accumulated over a set, as the official evaluation.

mIoU is the mean IoU over classes 0-16 (free stays in the matrix), mIoU* the mean over the 15
classes without `others` and `other_flat`; geometry IoU scores occupied (any class but free) vs free.
Classes with no ground truth and no prediction are NaN and skipped by the means (np.nanmean).
Every score is in percent (0-100), the one convention of the project's JSON, tables and logs.
"""

from __future__ import annotations

import numpy as np
from easyocc.runtime.contract.classes import CLASS_NAMES, FREE, MIOU_CLASSES, MIOU_STAR_CLASSES, NUM_CLASSES
from easyocc.runtime.contract.errors import EasyOccError


class OccMetric:
    """Accumulates predictions against labels. `update` takes uint8 [X, Y, Z] arrays and a mask."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        self.num_classes = num_classes
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)  # [gt, pred]
        self.frames = 0

    def update(self, prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> None:
        if prediction.shape != target.shape:
            raise EasyOccError(f"metric: prediction shape {prediction.shape} != label shape {target.shape}")
        if mask is not None and mask.shape != target.shape:
            raise EasyOccError(f"metric: mask shape {mask.shape} != label shape {target.shape}")
        pred = prediction.reshape(-1).astype(np.int64)
        gt = target.reshape(-1).astype(np.int64)
        if mask is not None:
            keep = mask.reshape(-1).astype(bool)
            pred, gt = pred[keep], gt[keep]
        if pred.size and (pred.max() >= self.num_classes or gt.max() >= self.num_classes):
            raise EasyOccError(f"metric: class id >= {self.num_classes} in prediction or label")
        self.confusion += np.bincount(gt * self.num_classes + pred, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )
        self.frames += 1

    def per_class_iou(self) -> np.ndarray:
        """[num_classes] IoU in percent, NaN where a class is in neither prediction nor label."""
        tp = np.diag(self.confusion).astype(np.float64)
        union = self.confusion.sum(0) + self.confusion.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, 100.0 * tp / np.maximum(union, 1), np.nan)

    def geometry(self) -> dict:
        """Occupied-vs-free IoU, precision and recall of occupied voxels, in percent."""
        occupied = np.arange(self.num_classes) != FREE
        tp = self.confusion[np.ix_(occupied, occupied)].sum()
        fp = self.confusion[np.ix_(~occupied, occupied)].sum()
        fn = self.confusion[np.ix_(occupied, ~occupied)].sum()
        return {
            "iou": float(100 * tp / (tp + fp + fn)) if tp + fp + fn else float("nan"),
            "precision": float(100 * tp / (tp + fp)) if tp + fp else float("nan"),
            "recall": float(100 * tp / (tp + fn)) if tp + fn else float("nan"),
        }

    def results(self) -> dict:
        iou = self.per_class_iou()
        with np.errstate(invalid="ignore"):
            miou = (
                float(np.nanmean(iou[list(MIOU_CLASSES)]))
                if np.any(np.isfinite(iou[list(MIOU_CLASSES)]))
                else float("nan")
            )
            star = iou[list(MIOU_STAR_CLASSES)]
            miou_star = float(np.nanmean(star)) if np.any(np.isfinite(star)) else float("nan")
        geometry = self.geometry()
        return {
            "miou": miou,
            "miou_star": miou_star,
            "geometry_iou": geometry["iou"],
            "occupied_precision": geometry["precision"],
            "occupied_recall": geometry["recall"],
            "per_class_iou": {name: _finite_or_none(v) for name, v in zip(CLASS_NAMES, iou)},
            "frames": self.frames,
            "voxels": int(self.confusion.sum()),
        }

    def table(self, title: str = "") -> str:
        """A per-class text table in percent, both conventions at the bottom."""
        results = self.results()
        lines = [title] if title else []
        lines.append(f"{'class':<22}{'IoU %':>8}")
        for name in CLASS_NAMES[:FREE]:
            value = results["per_class_iou"][name]
            lines.append(f"{name:<22}{'-' if value is None else f'{value:.2f}':>8}")
        lines.append(f"{'mIoU (0-16)':<22}{results['miou']:>8.2f}")
        lines.append(f"{'mIoU* (15 classes)':<22}{results['miou_star']:>8.2f}")
        lines.append(f"{'geometry IoU':<22}{results['geometry_iou']:>8.2f}")
        return "\n".join(lines)


def _finite_or_none(value: float):
    return None if not np.isfinite(value) else float(value)
