"""Rig files (YAML), nuScenes tables and ROS CameraInfo as rig sources."""

import numpy as np
import pytest
import yaml
from easyocc.calibration import (
    EasyOccError,
    camera_from_camera_info,
    camera_from_nuscenes,
    default_rig,
    load_rig,
    rig_to_dict,
    save_rig,
)


def test_yaml_round_trip(tmp_path):
    rig = default_rig()
    path = tmp_path / "rig.yaml"
    save_rig(rig, path)
    assert load_rig(path).allclose(rig, atol=1e-6)
    assert "rotation_wxyz" in path.read_text()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["cameras"][0].pop("K"), "rig camera CAM_FRONT: missing field 'K'"),
        (lambda d: d["cameras"][1].pop("width"), "rig camera CAM_FRONT_RIGHT: missing field 'width'"),
        (
            lambda d: d["cameras"][2]["ego_T_cam"].pop("translation"),
            "rig camera CAM_FRONT_LEFT: ego_T_cam: missing field 'translation'",
        ),
        (lambda d: d["cameras"][0].pop("name"), "rig camera #0: missing field 'name'"),
        (lambda d: d.pop("cameras"), "rig file: missing field 'cameras'"),
        (
            lambda d: d["cameras"][3]["ego_T_cam"].update(rotation_wxyz=[2, 0, 0, 0]),
            "CAM_BACK: ego_T_cam: rotation_wxyz is not a unit quaternion",
        ),
        (lambda d: d["cameras"][4].update(name="CAM_FRONT"), "duplicate camera name CAM_FRONT"),
        (
            lambda d: d["cameras"][0].update(distortion=d["cameras"][0].pop("dist")),
            "bad.yaml: rig camera CAM_FRONT: unknown key 'distortion'; known: name, width, height, K, dist, ego_T_cam",
        ),
        (
            lambda d: d["cameras"][1]["ego_T_cam"].update(rotation=[1, 0, 0, 0]),
            "rig camera CAM_FRONT_RIGHT: ego_T_cam: unknown key 'rotation'; known: translation, rotation_wxyz",
        ),
        (lambda d: d.update(camera=[]), "rig file: unknown key 'camera'; known: version, cameras"),
    ],
)
def test_yaml_errors_name_camera_and_field(tmp_path, edit, message):
    data = rig_to_dict(default_rig())
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(EasyOccError) as error:
        load_rig(path)
    assert message in str(error.value)


def test_missing_and_invalid_rig_files(tmp_path):
    with pytest.raises(EasyOccError, match="rig file not found"):
        load_rig(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [unclosed")
    with pytest.raises(EasyOccError, match="invalid YAML"):
        load_rig(bad)


def test_rig_from_nuscenes_tables(nuscenes_dataset):
    sample = nuscenes_dataset.samples()[0]
    front = sample.cameras["CAM_FRONT"]
    camera = camera_from_nuscenes("CAM_FRONT", front.calibrated_sensor, 1600, 900)
    assert camera.allclose(default_rig()["CAM_FRONT"], atol=1e-5)
    with pytest.raises(EasyOccError, match="camera_intrinsic is empty"):
        camera_from_nuscenes("LIDAR_TOP", sample.lidar.calibrated_sensor, 1, 1)


def test_rig_from_camera_info():
    info = {
        "width": 1600,
        "height": 900,
        "k": [1266.4, 0, 816.3, 0, 1266.4, 491.5, 0, 0, 1],
        "d": [-0.1, 0.01, 0.0, 0.0, 0.0],
        "distortion_model": "plumb_bob",
    }
    ego_T_cam = default_rig()["CAM_FRONT"].ego_T_cam
    camera = camera_from_camera_info("CAM_FRONT", info, ego_T_cam)
    assert camera.K[0, 2] == pytest.approx(816.3)
    np.testing.assert_allclose(camera.dist, info["d"])
    with pytest.raises(EasyOccError, match="distortion_model 'equidistant' is not supported"):
        camera_from_camera_info("CAM_FRONT", {**info, "distortion_model": "equidistant"}, ego_T_cam)
    with pytest.raises(EasyOccError, match="CAM_FRONT: CameraInfo: k must have 9 values"):
        camera_from_camera_info("CAM_FRONT", {**info, "k": [1, 2, 3]}, ego_T_cam)


def test_default_rig_holds_the_one_nuscenes_camera_list():
    from easyocc.calibration import NUSCENES_CAMERAS, default_rig
    from easyocc.training.synth.synthetic import CAMERA_OFFSETS_MS

    assert default_rig().names == NUSCENES_CAMERAS == tuple(CAMERA_OFFSETS_MS)
    assert CAMERA_OFFSETS_MS["CAM_BACK_RIGHT"] == 17.0 and CAMERA_OFFSETS_MS["CAM_FRONT_LEFT"] == -8.0
