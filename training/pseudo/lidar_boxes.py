"""Providers for datasets with a lidar and 3-D boxes (nuScenes): lidar-projected depth, box semantics.

The strong baseline and the path that runs on the real data here. Depth is sparse (0 where no lidar
return lands); semantics paint each box's projected silhouette with its Occ3D class, nearest box on
top, and everything else `others` (nuScenes key frames carry no per-pixel background classes).
"""

from __future__ import annotations

import cv2
import numpy as np
from easyocc.calibration import invert_transform, transform_points
from easyocc.runtime.contract.classes import OTHERS
from easyocc.runtime.dataset.lidar_projection import ego_at_camera_T_ego_at_lidar, lidar_points_ego
from easyocc.training.pseudo.providers import DepthEstimator, ImageView, Segmentation, Segmenter


class LidarDepth(DepthEstimator):
    """Sparse metric depth: the key frame's lidar sweep, motion-compensated to the camera's time."""

    name = "lidar"

    def __init__(self, min_range_m: float = 2.0):
        self.min_range_m = float(min_range_m)

    def options(self) -> dict:
        return {"min_range_m": self.min_range_m}

    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        points_lidar_ego = lidar_points_ego(view.dataset, view.sample)
        sensor_origin = view.sample.lidar.ego_T_sensor[:3, 3]
        # Returns from the ego vehicle itself are within a couple of metres of the sensor.
        points_lidar_ego = points_lidar_ego[
            np.linalg.norm(points_lidar_ego - sensor_origin, axis=1) >= self.min_range_m
        ]
        points_ego = transform_points(ego_at_camera_T_ego_at_lidar(view.sample, view.channel), points_lidar_ego)
        return project_to_depth_map(points_ego, view)


def project_to_depth_map(points_ego: np.ndarray, view: ImageView) -> np.ndarray:
    """float32 [H, W] z-buffered camera depth (m) of ego points [N, 3]; 0 where no point lands."""
    height, width = view.shape
    uv, depth_m, in_image = view.camera.project(points_ego)
    u = np.round(uv[in_image, 0]).astype(np.int64).clip(0, width - 1)
    v = np.round(uv[in_image, 1]).astype(np.int64).clip(0, height - 1)
    depth_m = depth_m[in_image]
    flat = v * width + u
    order = np.lexsort((depth_m, flat))  # by pixel, nearest first
    flat, depth_m = flat[order], depth_m[order]
    first = np.ones(len(flat), dtype=bool)
    first[1:] = flat[1:] != flat[:-1]
    depth_map = np.zeros(height * width, dtype=np.float32)
    depth_map[flat[first]] = depth_m[first]
    return depth_map.reshape(height, width)


class BoxSegmenter(Segmenter):
    """Per-pixel classes from the sample's 3-D boxes projected into the image (nearest box wins)."""

    name = "boxes"

    def __init__(self, background_class: int = OTHERS, background_score: float = 0.3):
        self.background_class = int(background_class)
        self.background_score = float(background_score)
        self._boxes = {}

    def options(self) -> dict:
        return {"background_class": self.background_class, "background_score": self.background_score}

    def segment(self, image_rgb: np.ndarray, view: ImageView) -> Segmentation:
        height, width = view.shape
        classes = np.full((height, width), self.background_class, dtype=np.uint8)
        score = np.full((height, width), self.background_score, dtype=np.float32)
        if view.sample.token not in self._boxes:
            self._boxes = {view.sample.token: view.dataset.boxes(view.sample)}
        ego_T_global = invert_transform(view.frame.global_T_ego)
        painted = []
        for box in self._boxes[view.sample.token]:
            corners_ego = transform_points(ego_T_global, box.corners_global())
            uv, depth_m, _ = view.camera.project(corners_ego, min_depth_m=0.1)
            if np.any(depth_m <= 0.1):
                continue  # partly behind the camera: its silhouette is not the hull of its corners
            painted.append((float(depth_m.mean()), uv, box.class_id))
        for _, uv, class_id in sorted(painted, key=lambda item: -item[0]):
            hull = cv2.convexHull(np.round(np.clip(uv, -1e4, 1e4)).astype(np.int32))
            cv2.fillConvexPoly(classes, hull, int(class_id))
            cv2.fillConvexPoly(score, hull, 1.0)
        return Segmentation(classes, score)
