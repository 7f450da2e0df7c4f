"""The ROS-free calibration path: TF transforms -> 4x4, CameraInfo + extrinsics -> rig; tf2_ros lookup."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.calibration.geometry import matrix_to_quaternion
from easyocc.ros_node.rig_source import rig_from_camera_infos, transform_from_tf, transforms_from_parameter
from easyocc.runtime.contract.errors import EasyOccError

from tests.runtime.stream_fixtures import small_rig


def _info(camera, frame_id="cam"):
    return {
        "width": camera.width,
        "height": camera.height,
        "k": camera.K.reshape(-1).tolist(),
        "d": camera.dist.tolist(),
        "distortion_model": "plumb_bob",
        "frame_id": frame_id,
    }


def test_transform_from_tf_uses_ros_quaternion_order():
    # 90 degrees about z, [x, y, z, w]: the child's x axis is the parent's y axis
    a_T_b = transform_from_tf([1.0, 2.0, 3.0], [0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)])
    np.testing.assert_allclose(a_T_b @ [1.0, 0.0, 0.0, 1.0], [1.0, 3.0, 3.0, 1.0], atol=1e-12)
    with pytest.raises(EasyOccError, match="translation must be 3 finite numbers"):
        transform_from_tf([1.0, np.nan, 0.0], [0, 0, 0, 1])
    with pytest.raises(EasyOccError, match="zero norm"):
        transform_from_tf([0.0, 0.0, 0.0], [0, 0, 0, 0])


def test_rig_from_camera_infos_and_tf_transforms_equals_the_rig():
    rig = small_rig()
    numbers = []
    for camera in rig:
        w, x, y, z = matrix_to_quaternion(camera.ego_T_cam[:3, :3])
        numbers += [*camera.ego_T_cam[:3, 3].tolist(), x, y, z, w]
    transforms = transforms_from_parameter(rig.names, numbers)
    built = rig_from_camera_infos({c.name: _info(c) for c in rig}, transforms)
    assert built.names == rig.names
    for camera in rig:
        np.testing.assert_allclose(built[camera.name].ego_T_cam, camera.ego_T_cam, atol=1e-12)
        np.testing.assert_allclose(built[camera.name].K, camera.K)
    with pytest.raises(EasyOccError, match="transforms has no camera 'CAM_FRONT'"):
        rig_from_camera_infos({"CAM_FRONT": _info(rig["CAM_FRONT"])}, {"CAM_BACK": np.eye(4)})
    with pytest.raises(EasyOccError, match=r"camera_transforms: 13 numbers for 2 cameras \(7 each\)"):
        transforms_from_parameter(["A", "B"], [0.0] * 13)


def test_tf2_lookup_needs_tf2_ros():
    from easyocc.ros_node.rig_source import TfLookup

    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        with pytest.raises(EasyOccError, match="tf2_ros is not installed"):
            TfLookup(node=None)
        pytest.skip(
            "tf2_ros is not installable from PyPI (it comes with a system ROS 2): the TF lookup is untested here"
        )
