"""The Occ3D metric against hand-computed confusion matrices and the real Occ3D files."""

import numpy as np
import pytest
from easyocc.runtime.contract.classes import FREE, NUM_CLASSES
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.labels import read_labels
from easyocc.runtime.dataset.metric import OccMetric


def test_hand_computed_confusion():
    gt = np.array([4, 4, 4, 17, 17, 7, 7, 11], np.uint8).reshape(2, 2, 2)
    pred = np.array([4, 4, 17, 17, 4, 7, 11, 11], np.uint8).reshape(2, 2, 2)
    metric = OccMetric()
    metric.update(pred, gt)
    assert metric.confusion[4, 4] == 2 and metric.confusion[4, 17] == 1 and metric.confusion[17, 4] == 1
    results = metric.results()
    iou = results["per_class_iou"]
    assert iou["car"] == pytest.approx(100 * 2 / 4)  # tp 2, fp 1, fn 1
    assert iou["pedestrian"] == pytest.approx(50.0)
    assert iou["driveable_surface"] == pytest.approx(50.0)
    assert iou["free"] == pytest.approx(100 / 3)
    assert iou["bus"] is None  # absent from both -> NaN, skipped
    assert results["miou"] == pytest.approx(50.0)  # percent, like every score
    # Geometry: occupied gt 6 voxels, pred occupied 6; tp = occupied in both = 5 (gt 4,4,4?,7,7,11 vs pred).
    occupied_gt = gt != FREE
    occupied_pred = pred != FREE
    tp = (occupied_gt & occupied_pred).sum()
    expected = 100 * tp / (occupied_gt | occupied_pred).sum()
    assert results["geometry_iou"] == pytest.approx(expected)


def test_mask_and_star_convention():
    gt = np.array([0, 12, 4, 4], np.uint8).reshape(1, 1, 4)
    pred = np.array([0, 12, 4, 17], np.uint8).reshape(1, 1, 4)
    metric = OccMetric()
    metric.update(pred, gt, mask=np.array([1, 1, 1, 0], bool).reshape(1, 1, 4))
    results = metric.results()
    assert results["miou"] == pytest.approx(100.0)  # others, other_flat, car all perfect
    assert results["miou_star"] == pytest.approx(100.0)  # only car counts
    assert results["voxels"] == 3
    metric2 = OccMetric()
    metric2.update(np.array([4, 4], np.uint8), np.array([0, 4], np.uint8))
    assert metric2.results()["miou"] == pytest.approx(25.0)
    assert metric2.results()["miou_star"] == pytest.approx(50.0)


def test_real_occ3d_self_and_all_free(occ3d_files):
    for path in occ3d_files:
        labels = read_labels(path)
        assert labels.semantics.shape == (200, 200, 16)
        metric = OccMetric()
        metric.update(labels.semantics, labels.semantics, labels.mask("camera"))
        iou = metric.results()["per_class_iou"]
        present = np.unique(labels.semantics[labels.mask_camera.astype(bool)])
        assert len(present) > 3
        for class_id in present:
            assert list(iou.values())[class_id] == 100.0
        free = OccMetric()
        free.update(np.full_like(labels.semantics, FREE), labels.semantics, None)
        assert free.results()["geometry_iou"] == 0.0
        assert "mIoU* (15 classes)" in metric.table()


def test_metric_errors():
    metric = OccMetric()
    with pytest.raises(EasyOccError, match="prediction shape"):
        metric.update(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(EasyOccError, match=f"class id >= {NUM_CLASSES}"):
        metric.update(np.full((2, 2, 2), 30, np.uint8), np.zeros((2, 2, 2), np.uint8))
