"""The node's calibration from the vehicle, kept apart from its lifecycle (ros_node/node.py).

`VehicleCalibration(node, group)`:
- `load(config)`: the rig from a YAML file (rig_source file), or CameraInfo intrinsics + extrinsics
  from a file (camera_info) or from TF / the camera_transforms parameter (tf);
- `follow(config)`: keeps listening to CameraInfo; a changed one builds a new rig, which the worker
  takes with `take_changed_rig()` between frames (OccupancyRuntime.set_rig: new view-transform
  tables, no restart);
- `check_frame(camera, frame_id)`: an image frame_id that differs from its CameraInfo's (recorded in
  `mismatched` for /diagnostics, returned once as a warning);
- `tf()`: the node's tf2_ros lookup, created on first use (also for the BEV in odom/map).
The arithmetic under it is ROS-free (ros_node/rig_source.py).
"""

from __future__ import annotations

import functools
import threading

from easyocc.ros_node.qos import input_qos
from easyocc.ros_node.rig_source import (
    TfLookup,
    camera_info_to_dict,
    rig_from_camera_infos,
    transforms_from_parameter,
    wait_for_camera_infos,
)
from easyocc.runtime.contract.errors import EasyOccError


class VehicleCalibration:
    def __init__(self, node, group):
        self._node, self._group = node, group
        self._tf_lookup = None
        self._lock = threading.Lock()
        self._subscriptions: list = []
        self._reset()

    def _reset(self) -> None:
        self.frames: dict[str, str] = {}  # camera -> optical frame_id its CameraInfo named
        self.mismatched: dict[str, tuple[str, str]] = {}  # camera -> (image frame_id, the CameraInfo's)
        self._infos: dict = {}  # camera -> the CameraInfo dict the rig was built from
        self._extrinsics = None
        self._topics: dict[str, str] = {}
        self._changed_rig = None

    def load(self, config):
        """The rig of `config.rig_source` (None = the bundled nuScenes rig)."""
        from easyocc.calibration import load_rig

        self.close()
        self._reset()
        if config.rig_source == "file":
            return load_rig(config.rig_file) if config.rig_file else None
        extrinsics = load_rig(config.extrinsics_file) if config.rig_source == "camera_info" else None
        names = config.camera_names or extrinsics.names  # rig_source tf requires camera_names (params)
        topics = {name: topic.rsplit("/", 1)[0] + "/camera_info" for name, topic in config.topics_for(names).items()}
        timeout_s = config.camera_info_timeout_s
        infos = wait_for_camera_infos(self._node, topics, input_qos(config), timeout_s, self._group)
        if extrinsics is None and config.camera_transforms:  # rig_source tf, the transforms given as a parameter
            extrinsics = transforms_from_parameter(names, config.camera_transforms)
        elif extrinsics is None:  # rig_source tf: base_link_T_<each CameraInfo's optical frame> from TF
            extrinsics = self.tf().camera_extrinsics(config.frame_id, infos, timeout_s)
        self.frames = {name: info["frame_id"] for name, info in infos.items() if info["frame_id"]}
        self._infos, self._extrinsics, self._topics = infos, extrinsics, topics
        return rig_from_camera_infos(infos, extrinsics)

    def follow(self, config) -> None:
        """Keep listening to CameraInfo (rig_source camera_info or tf): a changed one rebuilds the rig."""
        from sensor_msgs.msg import CameraInfo

        self._subscriptions = [
            self._node.create_subscription(
                CameraInfo,
                topic,
                functools.partial(self._on_camera_info, name),
                input_qos(config),
                callback_group=self._group,
            )
            for name, topic in self._topics.items()
        ]

    def _on_camera_info(self, camera: str, msg) -> None:
        info = camera_info_to_dict(msg)
        with self._lock:
            if info == self._infos.get(camera):
                return
            infos = {**self._infos, camera: info}
            try:
                rig = rig_from_camera_infos(infos, self._extrinsics)
            except EasyOccError as exc:
                self._node.get_logger().warning(f"camera {camera}: new CameraInfo ignored: {exc}")
                return
            self._infos, self._changed_rig = infos, rig
            if info["frame_id"]:
                self.frames[camera] = info["frame_id"]

    def take_changed_rig(self):
        """The rig of a calibration changed since the last call, or None."""
        with self._lock:
            rig, self._changed_rig = self._changed_rig, None
        return rig

    def check_frame(self, camera: str, frame_id: str) -> str:
        """'' or, the first time, a warning that this camera's images name another frame than its CameraInfo."""
        expected = self.frames.get(camera)
        if not expected or frame_id == expected or camera in self.mismatched:
            return ""
        self.mismatched[camera] = (frame_id, expected)
        return f"camera {camera}: image frame_id '{frame_id}' differs from its CameraInfo's '{expected}'"

    def tf(self) -> TfLookup:
        """The node's TF buffer and listener (tf2_ros), created on first use."""
        if self._tf_lookup is None:
            self._tf_lookup = TfLookup(self._node)
        return self._tf_lookup

    def close(self) -> None:
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions = []
        with self._lock:
            self._changed_rig = None
