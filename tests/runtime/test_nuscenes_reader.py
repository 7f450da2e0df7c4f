"""The nuScenes-layout reader and the lidar-to-camera projection on the real scene-0916."""

import numpy as np
import pytest
from easyocc.calibration import NUSCENES_CAMERAS as CAMERA_CHANNELS
from easyocc.calibration import transform_points
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.lidar_projection import ego_at_camera_T_ego_at_lidar, lidar_points_ego, project_lidar
from easyocc.runtime.dataset.nuscenes import NuScenesDataset, aux_path, load_lidar


def test_scene_samples_in_temporal_order(nuscenes_dataset):
    assert nuscenes_dataset.scene_names == ["scene-0916"]
    samples = nuscenes_dataset.samples("scene-0916")
    assert len(samples) == 41
    stamps = [s.timestamp_us for s in samples]
    assert stamps == sorted(stamps)
    first = samples[0]
    assert tuple(first.cameras) == CAMERA_CHANNELS
    assert first.cameras["CAM_FRONT"].path.is_file()
    # Cameras fire at their own times, up to ~45 ms from the lidar; each has its own ego pose.
    offsets = [abs(f.timestamp_us - first.lidar.timestamp_us) for f in first.cameras.values()]
    assert max(offsets) < 60_000 and max(offsets) > 10_000
    assert not np.allclose(first.cameras["CAM_BACK"].global_T_ego, first.lidar.global_T_ego)


def test_rig_boxes_and_lidar(nuscenes_dataset):
    sample = nuscenes_dataset.samples()[10]
    rig = nuscenes_dataset.rig(sample)
    assert rig.names == CAMERA_CHANNELS
    assert (rig["CAM_FRONT"].width, rig["CAM_FRONT"].height) == (1600, 900)
    boxes = nuscenes_dataset.boxes(sample)
    assert len(boxes) > 20
    classes = {b.class_id for b in boxes}
    assert 7 in classes  # pedestrians in the parking lot
    assert boxes[0].corners_global().shape == (8, 3)
    points = load_lidar(sample.lidar.path)
    assert points.shape[1] == 5 and 30_000 < len(points) < 40_000


def test_lidar_fraction_in_each_image_for_every_key_frame(nuscenes_dataset):
    fractions = []
    for sample in nuscenes_dataset.samples():
        for projection in project_lidar(nuscenes_dataset, sample):
            assert np.all(projection.depth_m > 0)
            fractions.append(projection.fraction_in_image)
    fractions = np.array(fractions)
    assert len(fractions) == 41 * 6
    assert fractions.min() >= 0.05 and fractions.max() <= 0.20, (fractions.min(), fractions.max())


def test_motion_compensation_is_applied(nuscenes_dataset):
    """Turning compensation off moves some projected point by more than 0.1 m at its depth."""
    largest_m = 0.0
    for sample in nuscenes_dataset.samples():
        points = lidar_points_ego(nuscenes_dataset, sample)
        for camera in nuscenes_dataset.rig(sample):
            uv_on, depth_on, in_on = camera.project(
                transform_points(ego_at_camera_T_ego_at_lidar(sample, camera.name), points)
            )
            uv_off, _, in_off = camera.project(points)
            both = in_on & in_off
            # A pixel shift is worth shift * depth / focal metres at the point's depth.
            shift_m = np.linalg.norm(uv_on[both] - uv_off[both], axis=1) * depth_on[both] / camera.K[0, 0]
            largest_m = max(largest_m, float(shift_m.max()))
    assert largest_m > 0.1, largest_m


def test_reader_errors(tmp_path, nuscenes_root):
    with pytest.raises(EasyOccError, match="dataset folder not found"):
        NuScenesDataset(tmp_path / "nothing")
    with pytest.raises(EasyOccError, match="no table folder"):
        NuScenesDataset(tmp_path)
    dataset = NuScenesDataset(nuscenes_root)
    with pytest.raises(EasyOccError, match="no scene named 'scene-9999'"):
        dataset.samples("scene-9999")
    with pytest.raises(EasyOccError, match="lidar file not found"):
        load_lidar(tmp_path / "x.pcd.bin")
    with pytest.raises(EasyOccError, match="unknown per-image ground truth 'normals'"):
        aux_path(tmp_path, tmp_path / "samples/CAM_FRONT/a.jpg", "normals")
    assert aux_path(tmp_path, "samples/CAM_FRONT/a.jpg", "depth") == tmp_path / "depth/CAM_FRONT/a.npz"


def test_calib_check_cli_writes_mosaic(tmp_path, nuscenes_root, capsys):
    import cv2

    from easyocc.cli import main

    out = tmp_path / "overlay.png"
    assert (
        main(
            [
                "calib",
                "check",
                "--data",
                str(nuscenes_root),
                "--scene",
                "scene-0916",
                "--sample",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "CAM_BACK_RIGHT" in printed and "%" in printed
    image = cv2.imread(str(out))
    assert image.shape[0] > 300 and image.shape[1] > 1000
    assert main(["calib", "check", "--data", str(nuscenes_root), "--sample", "99", "--out", str(out)]) == 2
    assert "--sample 99 is out of range" in capsys.readouterr().err
