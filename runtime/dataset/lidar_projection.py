"""Lidar points into camera images, motion-compensated between the lidar's and each camera's time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from easyocc.calibration import CameraRig, invert_transform, transform_points
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.nuscenes import NuScenesDataset, Sample, load_lidar


@dataclass(frozen=True)
class CameraProjection:
    camera: str
    uv: np.ndarray  # [M, 2] pixels of the points inside the image
    depth_m: np.ndarray  # [M] camera z-depth
    fraction_in_image: float  # of all lidar points


def lidar_points_ego(dataset: NuScenesDataset, sample: Sample) -> np.ndarray:
    """The sample's lidar sweep [N, 3] in the ego frame at the lidar's timestamp."""
    if sample.lidar is None:
        raise EasyOccError(f"sample {sample.token} has no {'LIDAR_TOP'} data")
    points = load_lidar(sample.lidar.path)[:, :3]
    return transform_points(sample.lidar.ego_T_sensor, points)


def ego_at_camera_T_ego_at_lidar(sample: Sample, camera: str) -> np.ndarray:
    """4x4: ego frame at the lidar's time -> ego frame at `camera`'s time, through the global frame."""
    return invert_transform(sample.cameras[camera].global_T_ego) @ sample.lidar.global_T_ego


def project_lidar(
    dataset: NuScenesDataset, sample: Sample, rig: CameraRig | None = None, motion_compensation: bool = True
) -> list[CameraProjection]:
    """Project the sample's lidar sweep into each camera of the rig (default: the sample's own rig)."""
    rig = rig or dataset.rig(sample)
    points_ego_lidar = lidar_points_ego(dataset, sample)
    projections = []
    for camera in rig:
        if motion_compensation:
            points_ego_cam = transform_points(ego_at_camera_T_ego_at_lidar(sample, camera.name), points_ego_lidar)
        else:
            points_ego_cam = points_ego_lidar
        uv, depth_m, in_image = camera.project(points_ego_cam)
        projections.append(
            CameraProjection(
                camera.name, uv[in_image], depth_m[in_image], float(in_image.mean()) if len(in_image) else 0.0
            )
        )
    return projections


def write_overlay_check(
    data, scene, sample_index: int, out, motion_compensation: bool = True, max_depth: float = 50.0
) -> dict:
    """Project one key frame's lidar sweep into every camera, write the mosaic PNG to `out` (atomically)
    and return {camera: fraction of the lidar points inside its image}: `easyocc calib check`."""
    import cv2
    from easyocc.calibration.overlay import depth_colours, draw_points, label_image, mosaic
    from easyocc.runtime.contract.fileio import atomic_path
    from easyocc.runtime.contract.preprocess import read_image

    dataset = NuScenesDataset(data)
    scene = scene or dataset.scene_names[0]
    samples = dataset.samples(scene)
    if not 0 <= sample_index < len(samples):
        raise EasyOccError(f"scene {scene} has {len(samples)} key frames; --sample {sample_index} is out of range")
    sample = samples[sample_index]
    tiles, fractions = [], {}
    for projection in project_lidar(dataset, sample, motion_compensation=motion_compensation):
        image = read_image(sample.cameras[projection.camera].path, bgr=True)  # refuses truncated files
        radius = max(1, image.shape[1] // 500)
        image = draw_points(image, projection.uv, depth_colours(projection.depth_m, max_depth), radius)
        tiles.append(label_image(image, f"{projection.camera}  {100 * projection.fraction_in_image:.1f}% of points"))
        fractions[projection.camera] = projection.fraction_in_image
    out = Path(out)
    with atomic_path(out) as tmp:
        ok, encoded = cv2.imencode(".png", mosaic(tiles))
        if not ok:
            raise EasyOccError("could not encode the overlay PNG")
        tmp.write_bytes(encoded.tobytes())
    return fractions
