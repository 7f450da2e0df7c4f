"""Real ROS 2 test plumbing: the node as a separate process (easyocc.testing, shared with the
benchmarks), a collector and a camera publisher in this one.

No mocks: processes talk over Fast DDS on loopback, in a domain id unique to the test session.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from easyocc import testing
from easyocc.testing import ros_env  # noqa: F401  (re-exported for the tests)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class RosProcess(testing.RosProcess):
    """`python -m easyocc ros ...` (easyocc.testing.RosProcess) run from the repository root."""

    def __init__(self, args: list[str], env: dict, log_path: Path):
        super().__init__(args, env, log_path, cwd=PROJECT_ROOT)


class Collector:
    """Subscribes (reliable) to the node's outputs and /diagnostics; keeps every message with its receipt time."""

    def __init__(self, context, node_name: str = "easyocc", markers: bool = False):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import OccupancyGrid
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, PointCloud2
        from std_msgs.msg import String
        from visualization_msgs.msg import MarkerArray

        self.node = rclpy.create_node("test_collector", context=context)
        self.messages: dict[str, list] = {
            "points": [],
            "bev": [],
            "grid": [],
            "grid_info": [],
            "diagnostics": [],
            "markers": [],
        }
        self._lock = threading.Lock()
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        topics = [
            ("points", PointCloud2, reliable),
            ("bev", OccupancyGrid, reliable),
            ("grid", Image, reliable),
            ("grid_info", String, latched),
        ]
        if markers:
            topics.append(("markers", MarkerArray, reliable))
        for key, kind, qos in topics:
            self.node.create_subscription(kind, f"/{node_name}/occupancy/{key}", self._keeper(key), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._keeper("diagnostics"), reliable)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._stop = threading.Event()
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _keeper(self, key):
        def keep(msg):
            with self._lock:
                self.messages[key].append((time.monotonic(), msg))

        return keep

    def get(self, key: str) -> list:
        with self._lock:
            return [msg for _, msg in self.messages[key]]

    def timed(self, key: str) -> list:
        with self._lock:
            return list(self.messages[key])

    def wait_for(self, key: str, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.get(key)) >= count:
                return True
            time.sleep(0.02)
        return False

    def publishers_ready(self, key: str, timeout_s: float = 20.0) -> bool:
        """Wait until the node publishes on ~/occupancy/<key> (discovery done)."""
        deadline = time.monotonic() + timeout_s
        topic = f"/easyocc/occupancy/{key}"
        while time.monotonic() < deadline:
            if self.node.count_publishers(topic) > 0:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()


class CameraPublisher:
    """Publishes camera images (raw rgb8 or compressed JPEG) on /cameras/<name>/image_raw[/compressed]."""

    def __init__(self, context, camera_names, compressed: bool = False, namespace: str = "/cameras"):
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image

        self.node = rclpy.create_node("test_cameras", context=context)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        kind, suffix = (CompressedImage, "/image_raw/compressed") if compressed else (Image, "/image_raw")
        self.publishers = {
            name: self.node.create_publisher(kind, f"{namespace}/{name}{suffix}", qos) for name in camera_names
        }

    def wait_for_subscribers(self, timeout_s: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in self.publishers.values()):
                time.sleep(0.3)  # let the reverse direction of discovery settle too
                return True
            time.sleep(0.05)
        return False

    def publish(self, name: str, msg) -> None:
        self.publishers[name].publish(msg)

    def publish_grey(self, rig, level: int, stamp_us: int, skip=(), encoding: str = "rgb8", size=None) -> None:
        """One uniform grey image per camera of `rig` (not those in `skip`), all stamped `stamp_us`."""
        from easyocc.ros_node.images import rgb_to_raw_msg

        for camera in rig:
            if camera.name in skip:
                continue
            width, height = size or (camera.width, camera.height)
            image = np.full((height, width, 3), level, np.uint8)
            msg = rgb_to_raw_msg(image, stamp_us, camera.name.lower())
            if encoding != "rgb8":
                msg.encoding = encoding
            self.publish(camera.name, msg)

    def close(self) -> None:
        self.node.destroy_node()
