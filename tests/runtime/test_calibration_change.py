"""A calibration change rebuilds the view-transform tables between frames, without a restart."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.calibration import Camera, CameraRig
from easyocc.calibration.geometry import make_transform
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.occupancy import OccupancyRuntime

from tests.runtime.stream_fixtures import (
    grey_frame,
    rig,  # noqa: F401  (pytest fixture)
    tiny_model,  # noqa: F401  (pytest fixture)
)


def _turned(rig, name: str, yaw_rad: float) -> CameraRig:  # noqa: F811
    """`rig` with camera `name` turned about the ego z axis (a re-mounted or re-calibrated camera)."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    turn = make_transform([[c, -s, 0], [s, c, 0], [0, 0, 1]], [0, 0, 0])
    return CameraRig(
        [
            Camera(
                cam.name,
                cam.K,
                cam.width,
                cam.height,
                turn @ cam.ego_T_cam if cam.name == name else cam.ego_T_cam,
                cam.dist,
            )
            for cam in rig
        ]
    )


def test_new_extrinsics_take_effect_on_the_next_frame(tiny_model, rig):  # noqa: F811
    moved = _turned(rig, rig.names[0], np.pi / 2)
    with (
        OccupancyRuntime(tiny_model, rig=rig, threads=1) as runtime,
        OccupancyRuntime(tiny_model, rig=moved, threads=1) as fresh,
    ):
        before = runtime.process(grey_frame(rig, 120, 1_000_000, seq=1))
        assert not np.array_equal(runtime.observed(), fresh.observed())  # the turn changes what is seen
        runtime.set_rig(moved)
        after = runtime.process(grey_frame(rig, 120, 1_100_000, seq=2))
        expected = fresh.process(grey_frame(rig, 120, 1_100_000, seq=2))
        np.testing.assert_array_equal(runtime.observed(), fresh.observed())
        np.testing.assert_array_equal(after.semantics, expected.semantics)  # the new tables were bound
        np.testing.assert_array_equal(after.observed, expected.observed)
        assert not np.array_equal(after.observed, before.observed)


def test_other_image_sizes_need_a_reconfigure(tiny_model, rig):  # noqa: F811
    bigger = rig.resized(rig.cameras[0].width * 2, rig.cameras[0].height * 2)
    with OccupancyRuntime(tiny_model, rig=rig, threads=1) as runtime:
        with pytest.raises(
            EasyOccError, match="calibration change: cameras or image sizes differ .*needs a reconfigure"
        ):
            runtime.set_rig(bigger)
        assert runtime.rig is rig
