"""Acceptance: the node built without a rig file, from what a vehicle provides (CameraInfo intrinsics,
extrinsics as TF would give them through the ROS-free path), publishes a cloud whose rgb values are the
palette of its labels and a dense grid whose unobserved voxels are exactly the cameras' blind voxels;
a changed CameraInfo takes effect on the next frame without a restart.

Real processes: the node runs as `easyocc ros run` in its own process; this process publishes the
CameraInfo and the images and collects the outputs over Fast DDS.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from tests.ros_node.helpers import CameraPublisher, Collector, RosProcess

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]


def _tf_numbers(ego_T_cam: np.ndarray) -> list[float]:
    """x y z qx qy qz qw of a 4x4, as TF (and static_transform_publisher) give a transform."""
    from easyocc.calibration.geometry import matrix_to_quaternion

    w, x, y, z = matrix_to_quaternion(ego_T_cam[:3, :3])
    return [*(float(v) for v in ego_T_cam[:3, 3]), float(x), float(y), float(z), float(w)]


def _camera_info(camera, frame_id: str):
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    msg.header.frame_id = frame_id
    msg.width, msg.height = camera.width, camera.height
    msg.k = [float(v) for v in camera.K.reshape(-1)]
    msg.d = [float(v) for v in camera.dist]
    msg.distortion_model = "plumb_bob"
    return msg


def test_yaml_free_node_publishes_palette_colours_and_camera_visibility(tiny_model, ros_context, tmp_path):
    from easyocc.ros_node import conversions
    from easyocc.ros_node.diagnostics import WARN, level_of, values_of
    from easyocc.ros_node.rig_source import camera_info_to_dict, rig_from_camera_infos, transforms_from_parameter
    from easyocc.runtime.contract.frames import CameraImage, FrameSet
    from easyocc.runtime.occupancy import OccupancyRuntime
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo

    from tests.runtime.stream_fixtures import small_rig

    model, _ = tiny_model
    rig = small_rig()
    # the optical frames the CameraInfo name; the images of the last camera carry another frame_id
    frames = {camera.name: camera.name.lower() for camera in rig}
    odd = rig.names[-1]
    frames[odd] = odd.lower() + "_optical_frame"
    numbers = [v for camera in rig for v in _tf_numbers(camera.ego_T_cam)]
    proc = RosProcess(
        [
            "run",
            "--model",
            str(model),
            "-p",
            "rig_source:=tf",
            "-p",
            f"camera_names:={','.join(rig.names)}",
            "-p",
            f"camera_transforms:={','.join(repr(v) for v in numbers)}",
            "-p",
            "input_reliability:=reliable",
            "-p",
            "threads:=1",
            "-p",
            "diagnostics_period_s:=0.3",
        ],
        dict(os.environ),
        tmp_path / "node.log",
    )
    info_node = collector = cameras = None
    stop = threading.Event()
    try:
        import rclpy

        info_node = rclpy.create_node("test_camera_info", context=ros_context)
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        info_pubs = {
            c.name: info_node.create_publisher(CameraInfo, f"/cameras/{c.name}/camera_info", reliable) for c in rig
        }
        infos = {c.name: _camera_info(c, frames[c.name]) for c in rig}

        def keep_publishing():  # as a camera driver does, until the node has configured
            while not stop.is_set():
                for name, pub in info_pubs.items():
                    pub.publish(infos[name])
                time.sleep(0.1)

        threading.Thread(target=keep_publishing, daemon=True).start()
        assert proc.wait_for_output("active:", 90), proc.output[-3000:]
        stop.set()
        collector = Collector(ros_context)
        cameras = CameraPublisher(ros_context, rig.names)
        assert cameras.wait_for_subscribers(30), "the node never subscribed to the camera topics"
        assert collector.publishers_ready("points", 30) and collector.publishers_ready("grid", 30)
        stamp = 2_000_000
        cameras.publish_grey(rig, 90, stamp)
        assert collector.wait_for("points", 1, 20), proc.output[-3000:]
        assert collector.wait_for("grid", 1, 10)

        # the rig the node built, rebuilt here by the same ROS-free path from the same inputs
        built = rig_from_camera_infos(
            {name: camera_info_to_dict(msg) for name, msg in infos.items()},
            transforms_from_parameter(rig.names, numbers),
        )
        for camera in rig:
            np.testing.assert_allclose(built[camera.name].ego_T_cam, camera.ego_T_cam, atol=1e-9)
            np.testing.assert_allclose(built[camera.name].K, camera.K, atol=1e-9)
        with OccupancyRuntime(model, rig=built, threads=1) as runtime:
            images = {
                c.name: CameraImage(c.name, stamp, image=np.full((c.height, c.width, 3), 90, np.uint8)) for c in rig
            }
            expected = runtime.process(FrameSet(stamp, images, seq=1))
            observed = runtime.observed()
        cloud = collector.get("points")[0]
        xyz, labels, _ = conversions.cloud_to_arrays(cloud)
        assert len(labels) > 0
        np.testing.assert_array_equal(labels, expected.voxels.labels)
        rgb = conversions.cloud_rgb(cloud)
        np.testing.assert_array_equal(rgb, conversions.RGB_PACKED[labels])  # rgb = the palette of its labels
        dense = conversions.dense_grid_from_msg(collector.get("grid")[0], runtime.grid)
        unobserved = dense == conversions.UNOBSERVED
        assert 0 < unobserved.sum() < unobserved.size  # the small rig leaves blind voxels, and sees most
        np.testing.assert_array_equal(unobserved, ~observed)  # exactly the voxels no camera sees
        np.testing.assert_array_equal(dense[observed], expected.semantics[observed])

        # a new calibration of one camera (its focal length halved) is used from the next frame, no restart
        changed = _camera_info(rig[rig.names[0]], frames[rig.names[0]])
        changed.k = [v * (0.5 if i in (0, 4) else 1.0) for i, v in enumerate(changed.k)]
        infos[rig.names[0]] = changed
        rebuilt = rig_from_camera_infos(
            {name: camera_info_to_dict(msg) for name, msg in infos.items()},
            transforms_from_parameter(rig.names, numbers),
        )
        for _ in range(10):  # as a driver republishes it; the node keeps the newest
            info_pubs[rig.names[0]].publish(changed)
            time.sleep(0.1)
        stamp = 2_100_000
        cameras.publish_grey(rig, 90, stamp)
        assert collector.wait_for("grid", 2, 20), proc.output[-3000:]
        assert proc.wait_for_output("calibration changed (CameraInfo): view-transform tables rebuilt", 10)
        with OccupancyRuntime(model, rig=rebuilt, threads=1) as runtime:
            widened = runtime.observed()
        assert not np.array_equal(widened, observed)  # a wider view sees other voxels
        dense = conversions.dense_grid_from_msg(collector.get("grid")[1], runtime.grid)
        np.testing.assert_array_equal(dense == conversions.UNOBSERVED, ~widened)

        # the odd camera's images name another frame than its CameraInfo: a diagnostic says so
        deadline, warned = time.monotonic() + 10, None
        while warned is None and time.monotonic() < deadline:
            for array in collector.get("diagnostics"):
                for status in array.status:
                    if status.name.endswith("inputs") and f"frame_id_mismatch/{odd}" in values_of(status):
                        warned = status
            time.sleep(0.1)
        assert warned is not None, "no frame_id mismatch in /diagnostics"
        assert level_of(warned) == WARN and f"{odd} '{odd.lower()}' (rig: '{frames[odd]}')" in warned.message
        assert values_of(warned)[f"frame_id_mismatch/{odd}"] == f"{odd.lower()} (rig: {frames[odd]})"
    finally:
        stop.set()
        for part in (collector, cameras):
            if part:
                part.close()
        if info_node:
            info_node.destroy_node()
        proc.close()
