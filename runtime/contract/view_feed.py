"""The view-transform inputs of a model, built from its manifest and a rig once per rig."""

from __future__ import annotations

import numpy as np
from easyocc.calibration import CameraRig, build_view_transform
from easyocc.runtime.contract.manifest import INPUT_VT_UV, INPUT_VT_WEIGHTS, Manifest


def network_rig(manifest: Manifest, rig: CameraRig) -> CameraRig:
    """The rig at the model's input size, cameras checked against the model's order."""
    manifest.check_rig(rig.names)
    width, height = manifest.input_size
    return rig.resized(width, height)


def view_transform_feed(manifest: Manifest, rig: CameraRig, missing_cameras=()) -> dict[str, np.ndarray]:
    """{vt_uv: float32 [N_cam, N_cell, 2], vt_weights: float32 [N_cam, N_cell]} for this rig.

    `missing_cameras`: indices of cameras absent from a frame; their weights are zeroed and the
    remaining cameras' weights renormalised.
    """
    spec = manifest.view_transform
    centres = manifest.grid_spec.centres(int(spec.get("stride_xy", 1)), int(spec.get("stride_z", 1)))
    tables = build_view_transform(network_rig(manifest, rig), centres, float(spec.get("min_depth_m", 0.1)))
    if missing_cameras:
        tables = tables.with_cameras_zeroed(missing_cameras)
    return {INPUT_VT_UV: tables.uv_norm, INPUT_VT_WEIGHTS: tables.weights}
