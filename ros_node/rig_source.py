"""The camera rig from CameraInfo topics (intrinsics, image size) plus an extrinsics file (ego_T_cam).

Used by on_configure when `rig_source` is camera_info: it subscribes to every camera's CameraInfo
in a reentrant callback group and waits (the executor must have a second thread) until each has
arrived once, then builds the rig. Calibration changes need a reconfigure, as an engine reload does.
"""

from __future__ import annotations

import threading

from easyocc.calibration import CameraRig, camera_from_camera_info
from easyocc.ros_node.spinning import without_event_handlers
from easyocc.runtime.contract.errors import EasyOccError


def camera_info_to_dict(msg) -> dict:
    """sensor_msgs/CameraInfo -> the dict calibration.camera_from_camera_info reads."""
    return {
        "width": int(msg.width),
        "height": int(msg.height),
        "k": [float(v) for v in msg.k],
        "d": [float(v) for v in msg.d],
        "distortion_model": str(msg.distortion_model),
    }


def rig_from_camera_infos(infos: dict, extrinsics: CameraRig) -> CameraRig:
    """CameraRig in the order of `infos` (name -> CameraInfo dict), extrinsics taken from a rig file."""
    cameras = []
    for name, info in infos.items():
        if name not in extrinsics.names:
            raise EasyOccError(f"extrinsics file has no camera '{name}' (it has {', '.join(extrinsics.names)})")
        cameras.append(camera_from_camera_info(name, info, extrinsics[name].ego_T_cam))
    return CameraRig(cameras)


def wait_for_camera_info_rig(node, info_topics: dict, extrinsics: CameraRig, qos, timeout_s: float, group):
    """Subscribe to `info_topics` (name -> topic), wait up to timeout_s for one message each, build the rig."""
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
    return rig_from_camera_infos({name: infos[name] for name in info_topics}, extrinsics)
