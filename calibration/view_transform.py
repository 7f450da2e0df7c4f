"""View-transform tables: where each voxel centre lands in each camera, for bilinear sampling.

Computed once per rig (and image size), never per frame, and fed to the model as inputs so that a
new rig needs no new engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from easyocc.calibration.camera import CameraRig
from easyocc.calibration.errors import EasyOccError

# Sampling coordinate given to voxels a camera does not see: outside [-1, 1], so GridSample with
# zero padding returns 0 there even before the weight masks it.
OUTSIDE = -2.0


@dataclass(frozen=True)
class ViewTransformTables:
    """uv_norm: float32 [N_cam, N_vox, 2], (x, y) in [-1, 1] for grid_sample(align_corners=False),
    valid for a feature map of any stride that divides the image size; OUTSIDE where not seen.
    weights: float32 [N_cam, N_vox], 1 / (number of cameras that see the voxel), 0 where none does.
    """

    uv_norm: np.ndarray
    weights: np.ndarray

    @property
    def num_cameras(self) -> int:
        return self.uv_norm.shape[0]

    def with_cameras_zeroed(self, camera_indices) -> ViewTransformTables:
        """Tables for a frame that lacks some cameras: their weights are 0 and the rest renormalised."""
        seen = self.weights > 0
        seen[list(camera_indices)] = False
        return ViewTransformTables(self.uv_norm, _weights_from_visibility(seen))


def _weights_from_visibility(seen: np.ndarray) -> np.ndarray:
    count = seen.sum(axis=0, keepdims=True)
    return np.where(seen, 1.0 / np.maximum(count, 1), 0.0).astype(np.float32)


def build_view_transform(rig: CameraRig, centres_ego: np.ndarray, min_depth_m: float = 0.1) -> ViewTransformTables:
    """Tables for voxel centres [..., 3] (ego frame, metres), flattened in C order to N_vox.

    A voxel is seen by a camera when its centre projects inside the image with depth > min_depth_m.
    The sampling coordinate of pixel u in an image W wide is (u + 0.5) / W * 2 - 1.
    """
    centres = np.asarray(centres_ego, dtype=np.float64).reshape(-1, 3)
    if centres.size == 0:
        raise EasyOccError("view transform: no voxel centres given")
    uv_norm = np.full((len(rig), len(centres), 2), OUTSIDE, dtype=np.float32)
    seen = np.zeros((len(rig), len(centres)), dtype=bool)
    for index, camera in enumerate(rig):
        uv, _, in_image = camera.project(centres, min_depth_m=min_depth_m)
        norm = np.stack([(uv[:, 0] + 0.5) / camera.width, (uv[:, 1] + 0.5) / camera.height], axis=1) * 2 - 1
        uv_norm[index, in_image] = norm[in_image]
        seen[index] = in_image
    return ViewTransformTables(uv_norm, _weights_from_visibility(seen))
