"""Grid, labels on disk, and the model manifest."""

import json

import numpy as np
import pytest
from easyocc.calibration import default_rig
from easyocc.runtime.contract.classes import (
    CLASS_NAMES,
    DYNAMIC_CLASSES,
    FREE,
    PALETTE,
    class_from_nuscenes_category,
    class_id,
)
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import OCC3D_NUSCENES, GridSpec
from easyocc.runtime.contract.manifest import Manifest, TensorSpec
from easyocc.runtime.contract.view_feed import view_transform_feed
from easyocc.runtime.dataset.labels import OccLabels, labels_path, read_labels, write_labels


def test_grid_is_occ3d_and_centres_follow_the_convention():
    grid = OCC3D_NUSCENES
    assert grid.shape == (200, 200, 16)
    centres = grid.centres()
    assert centres.shape == (200, 200, 16, 3)
    np.testing.assert_allclose(centres[0, 0, 0], [-39.8, -39.8, -0.8])
    np.testing.assert_allclose(centres[199, 199, 15], [39.8, 39.8, 5.2])
    index, inside = grid.index_of(np.array([[0.1, -0.1, 0.0], [45.0, 0, 0]]))
    assert index[0].tolist() == [100, 99, 2] and inside.tolist() == [True, False]
    coarse = grid.centres(2, 2)
    assert coarse.shape == (100, 100, 8, 3)
    np.testing.assert_allclose(coarse[0, 0, 0], [-39.6, -39.6, -0.6])
    assert GridSpec.from_dict(grid.to_dict()) == grid
    with pytest.raises(EasyOccError, match="not a positive multiple"):
        GridSpec((-1, -1, -1), (1, 1, 1.1), 0.4)
    with pytest.raises(EasyOccError, match="stated shape"):
        GridSpec.from_dict({**grid.to_dict(), "shape": [100, 100, 16]})


def test_classes():
    assert len(CLASS_NAMES) == 18 and CLASS_NAMES[FREE] == "free" and CLASS_NAMES[16] == "vegetation"
    assert PALETTE.shape == (18, 3)
    assert class_id("car") in DYNAMIC_CLASSES and class_id("manmade") not in DYNAMIC_CLASSES
    assert class_from_nuscenes_category("human.pedestrian.adult") == class_id("pedestrian")
    assert class_from_nuscenes_category("vehicle.bus.rigid") == class_id("bus")
    assert class_from_nuscenes_category("static_object.bicycle_rack") == class_id("others")
    with pytest.raises(EasyOccError, match="unknown Occ3D class 'sky'"):
        class_id("sky")


def test_labels_round_trip_and_errors(tmp_path, occ3d_files):
    real = read_labels(occ3d_files[0], OCC3D_NUSCENES)
    path = labels_path(tmp_path, "scene-x", "token")
    write_labels(path, real)
    again = read_labels(path, OCC3D_NUSCENES)
    for key in ("semantics", "mask_lidar", "mask_camera"):
        np.testing.assert_array_equal(getattr(again, key), getattr(real, key))
    assert not list(path.parent.glob(".*tmp"))
    small = GridSpec((-4, -4, -1), (4, 4, 0.6), 0.4)
    with pytest.raises(EasyOccError, match=r"semantics has shape \(200, 200, 16\), grid expects \(20, 20, 4\)"):
        read_labels(path, small)
    np.savez(tmp_path / "partial.npz", semantics=real.semantics)
    with pytest.raises(EasyOccError, match="missing key"):
        read_labels(tmp_path / "partial.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(EasyOccError, match="unreadable"):
        read_labels(tmp_path / "junk.npz")
    with pytest.raises(EasyOccError, match="not found"):
        read_labels(tmp_path / "missing.npz")


def make_manifest(**overrides):
    fields = dict(
        model_name="easyocc-compact",
        model_version="test",
        grid=OCC3D_NUSCENES.to_dict(),
        camera_names=default_rig().names,
        input_size=(704, 256),
        view_transform={"stride_xy": 4, "stride_z": 4, "min_depth_m": 0.1},
        inputs=(TensorSpec("images", "uint8", (6, 256, 704, 3)),),
        outputs=(TensorSpec("semantics", "uint8", (200, 200, 16)),),
    )
    fields.update(overrides)
    return Manifest(**fields)


def test_manifest_round_trip_and_checks():
    manifest = make_manifest()
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest
    manifest.check_rig(default_rig().names)
    manifest.check_grid(OCC3D_NUSCENES)
    with pytest.raises(EasyOccError, match=r"missing \['CAM_BACK'\], unexpected \['CAM_REAR'\]"):
        manifest.check_rig(tuple(n if n != "CAM_BACK" else "CAM_REAR" for n in default_rig().names))
    with pytest.raises(EasyOccError, match="rig camera order"):
        manifest.check_rig(tuple(reversed(default_rig().names)))
    with pytest.raises(EasyOccError, match="grid differs: model has 200x200x16"):
        manifest.check_grid(GridSpec(voxel_size=0.8))
    data = json.loads(manifest.to_json())
    data["format"] = "easyocc-manifest/99"
    with pytest.raises(EasyOccError, match="not supported by this runtime"):
        Manifest.from_dict(data)
    del data["format"], data["grid"]
    data["format"] = "easyocc-manifest/1"
    with pytest.raises(EasyOccError, match="missing field 'grid'"):
        Manifest.from_dict(data)
    with pytest.raises(EasyOccError, match="invalid JSON"):
        Manifest.from_json("{")


def test_view_transform_feed_from_manifest():
    manifest = make_manifest()
    feed = view_transform_feed(manifest, default_rig())
    assert feed["vt_uv"].shape == (6, 50 * 50 * 4, 2) and feed["vt_uv"].dtype == np.float32
    assert feed["vt_weights"].shape == (6, 50 * 50 * 4)
    zeroed = view_transform_feed(manifest, default_rig(), missing_cameras=[0])
    assert zeroed["vt_weights"][0].sum() == 0 and feed["vt_weights"][0].sum() > 0


def test_empty_labels():
    labels = OccLabels.empty(OCC3D_NUSCENES)
    assert labels.semantics.max() == FREE and labels.mask("none") is None
    with pytest.raises(EasyOccError, match="unknown mask 'sky'"):
        labels.mask("sky")
