"""The camera rig from the vehicle: CameraInfo topics (intrinsics, image size, optical frame) plus
extrinsics from TF (the vehicle's `base_link_T_<camera optical frame>`) or from a rig file.

The arithmetic is ROS-free and tested without ROS: `transform_from_tf` (a TF translation + [x, y, z, w]
quaternion -> 4x4) and `rig_from_camera_infos` (CameraInfo dicts + extrinsics -> CameraRig). The ROS
side: `wait_for_camera_infos` subscribes to every camera's CameraInfo in a reentrant callback group and
waits (the executor must have a second thread) until each has arrived once; `TfLookup` asks tf2_ros
(imported lazily: it exists on the vehicle with a system ROS 2, not as a pip wheel).
"""

from __future__ import annotations

import threading

import numpy as np
from easyocc.calibration import CameraRig, camera_from_camera_info
from easyocc.calibration.geometry import make_transform, quaternion_to_matrix
from easyocc.ros_node.spinning import without_event_handlers
from easyocc.runtime.contract.errors import EasyOccError


def camera_info_to_dict(msg) -> dict:
    """sensor_msgs/CameraInfo -> the dict calibration.camera_from_camera_info reads (+ its frame_id)."""
    return {
        "width": int(msg.width),
        "height": int(msg.height),
        "k": [float(v) for v in msg.k],
        "d": [float(v) for v in msg.d],
        "distortion_model": str(msg.distortion_model),
        "frame_id": str(msg.header.frame_id),
    }


def transform_from_tf(translation_xyz, rotation_xyzw) -> np.ndarray:
    """4x4 `a_T_b` from a TF transform of child frame b in parent frame a: translation [x, y, z] metres and
    rotation quaternion in ROS order [x, y, z, w] (geometry_msgs/Transform)."""
    x, y, z, w = (float(v) for v in rotation_xyzw)
    translation = np.asarray(translation_xyz, np.float64)
    if translation.shape != (3,) or not np.isfinite(translation).all():
        raise EasyOccError(f"transform: translation must be 3 finite numbers, got {translation_xyz!r}")
    return make_transform(quaternion_to_matrix([w, x, y, z]), translation)


def transforms_from_parameter(camera_names, values) -> dict:
    """{name: base_T_cam} from the camera_transforms parameter: 7 numbers per camera (x y z qx qy qz qw)."""
    values = [float(v) for v in values]
    if len(values) != 7 * len(camera_names):
        raise EasyOccError(f"camera_transforms: {len(values)} numbers for {len(camera_names)} cameras (7 each)")
    return {
        name: transform_from_tf(values[7 * i : 7 * i + 3], values[7 * i + 3 : 7 * i + 7])
        for i, name in enumerate(camera_names)
    }


def rig_from_camera_infos(infos: dict, extrinsics) -> CameraRig:
    """CameraRig in the order of `infos` (name -> CameraInfo dict).

    extrinsics: a CameraRig (its ego_T_cam, from a rig file), or {name: ego_T_cam 4x4} as TF gives them
    (`base_link_T_<the CameraInfo's optical frame>`, e.g. from `transform_from_tf`).
    """
    names = list(extrinsics.names) if isinstance(extrinsics, CameraRig) else list(extrinsics)
    source = "extrinsics file" if isinstance(extrinsics, CameraRig) else "transforms"
    cameras = []
    for name, info in infos.items():
        if name not in names:
            raise EasyOccError(f"{source} has no camera '{name}' (it has {', '.join(names)})")
        ego_T_cam = extrinsics[name].ego_T_cam if isinstance(extrinsics, CameraRig) else extrinsics[name]
        cameras.append(camera_from_camera_info(name, info, np.asarray(ego_T_cam, np.float64)))
    return CameraRig(cameras)


def wait_for_camera_infos(node, info_topics: dict, qos, timeout_s: float, group) -> dict:
    """Subscribe to `info_topics` (name -> topic), wait up to timeout_s for one message each; {name: dict}."""
    from sensor_msgs.msg import CameraInfo

    infos: dict = {}
    complete = threading.Event()
    lock = threading.Lock()

    def on_info(name, msg):
        with lock:
            infos.setdefault(name, camera_info_to_dict(msg))
            if len(infos) == len(info_topics):
                complete.set()

    subscriptions = [
        node.create_subscription(
            CameraInfo,
            topic,
            lambda msg, n=name: on_info(n, msg),
            qos,
            callback_group=group,
            event_callbacks=without_event_handlers(),  # destroyed below, while the executor spins
        )
        for name, topic in info_topics.items()
    ]
    try:
        if not complete.wait(timeout_s):
            missing = [topic for name, topic in info_topics.items() if name not in infos]
            raise EasyOccError(f"no CameraInfo within {timeout_s:.1f} s on {', '.join(missing)}")
    finally:
        for subscription in subscriptions:
            node.destroy_subscription(subscription)
    return {name: infos[name] for name in info_topics}


class TfLookup:
    """4x4 transforms from the node's TF buffer (tf2_ros, imported here: the vehicle's system ROS 2 has it)."""

    def __init__(self, node):
        try:
            import tf2_ros
        except ImportError:
            raise EasyOccError(
                "tf2_ros is not installed (it comes with a system ROS 2: source /opt/ros/<distro>/setup.bash);"
                " use rig_source file or camera_info, and bev_frame_id ''"
            ) from None
        self._tf2 = tf2_ros
        self.buffer = tf2_ros.Buffer()
        self.listener = tf2_ros.TransformListener(self.buffer, node, spin_thread=False)

    def lookup(self, target: str, source: str, stamp_us: int | None = None, timeout_s: float = 0.0) -> np.ndarray:
        """`target_T_source` at `stamp_us` (None = the latest), waiting up to timeout_s; one-line errors."""
        from rclpy.duration import Duration
        from rclpy.time import Time

        when = Time() if stamp_us is None else Time(nanoseconds=int(stamp_us) * 1000)
        try:
            stamped = self.buffer.lookup_transform(target, source, when, timeout=Duration(seconds=timeout_s))
        except self._tf2.TransformException as exc:
            raise EasyOccError(f"TF {target} <- {source}: {str(exc).splitlines()[0]}") from None
        t, r = stamped.transform.translation, stamped.transform.rotation
        return transform_from_tf([t.x, t.y, t.z], [r.x, r.y, r.z, r.w])

    def camera_extrinsics(self, base_frame: str, infos: dict, timeout_s: float) -> dict:
        """{name: base_T_cam} for each CameraInfo dict's optical frame_id (latest transforms)."""
        extrinsics = {}
        for name, info in infos.items():
            if not info.get("frame_id"):
                raise EasyOccError(f"camera {name}: its CameraInfo has an empty frame_id, so TF cannot place it")
            extrinsics[name] = self.lookup(base_frame, info["frame_id"], None, timeout_s)
        return extrinsics
