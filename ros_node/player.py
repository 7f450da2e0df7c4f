"""Play a nuScenes-layout dataset as ROS 2 camera topics at its recorded timing (demos and tests).

Every camera image of every key frame is published at its own recorded time offset (divided by
`rate`), stamped with its recorded capture time, on `<namespace>/<CHANNEL>/image_raw` (rgb8
sensor_msgs/Image) or `<namespace>/<CHANNEL>/image_raw/compressed` (the file's JPEG bytes), with a
CameraInfo on `<namespace>/<CHANNEL>/camera_info`. A background thread reads and decodes ahead
into a small bounded queue, so decoding never delays a publication.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from easyocc.runtime.contract.errors import EasyOccError

PREFETCH_MESSAGES = 18  # three key frames of six cameras


@dataclass(frozen=True)
class PlayItem:
    """One camera image to publish: when (recorded us), which channel, which file, its camera."""

    stamp_us: int
    channel: str
    path: Path
    camera: object


def play_items(data_root, scene: str | None = None, max_frames: int | None = None, loops: int = 1) -> list[PlayItem]:
    """Camera images of the dataset's key frames (one scene or all) sorted by recorded stamp; `loops`
    times over, each pass shifted by the span plus one frame period so stamps keep rising (a soak)."""
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset

    dataset = NuScenesDataset(data_root)
    samples = dataset.samples(scene)
    if max_frames:
        samples = samples[:max_frames]
    if not samples:
        raise EasyOccError(f"dataset {data_root}: no key frames to play")
    items = []
    for sample in samples:
        rig = dataset.rig(sample)
        for channel, frame in sample.cameras.items():
            items.append(PlayItem(frame.timestamp_us, channel, frame.path, rig[channel]))
    items.sort(key=lambda item: (item.stamp_us, item.channel))
    if loops < 1:
        raise EasyOccError(f"loops must be 1 or more, got {loops}")
    first, last = samples[0].timestamp_us, samples[-1].timestamp_us
    period = (last - first) // max(len(samples) - 1, 1) if len(samples) > 1 else 100_000
    span = last - first + period
    return [
        PlayItem(item.stamp_us + loop * span, item.channel, item.path, item.camera)
        for loop in range(loops)
        for item in items
    ]


def camera_info_msg(camera, stamp_us: int, frame_id: str):
    """sensor_msgs/CameraInfo of a calibration.Camera (plumb_bob, zero distortion when it has none)."""
    from easyocc.ros_node.images import us_to_stamp
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    us_to_stamp(stamp_us, msg.header.stamp)
    msg.header.frame_id = frame_id
    msg.width, msg.height = camera.width, camera.height
    dist = [float(v) for v in camera.dist]
    msg.distortion_model = "rational_polynomial" if len(dist) == 8 else "plumb_bob"
    msg.d = dist + [0.0] * max(0, 5 - len(dist))
    msg.k = [float(v) for v in camera.K.reshape(-1)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [
        float(camera.K[0, 0]),
        0.0,
        float(camera.K[0, 2]),
        0.0,
        0.0,
        float(camera.K[1, 1]),
        float(camera.K[1, 2]),
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
    ]
    return msg


def _image_msg(item: PlayItem, compressed: bool):
    from easyocc.ros_node.images import encoded_to_compressed_msg, rgb_to_raw_msg
    from easyocc.runtime.contract.preprocess import read_image

    frame_id = item.channel.lower()
    if compressed:
        fmt = "png" if item.path.suffix.lower() == ".png" else "jpeg"
        return encoded_to_compressed_msg(item.path.read_bytes(), item.stamp_us, frame_id, fmt)
    return rgb_to_raw_msg(read_image(item.path), item.stamp_us, frame_id)


class DatasetPlayer:
    """Publishes PlayItems on a node's camera topics at recorded timing."""

    def __init__(
        self,
        node,
        items,
        namespace: str = "/cameras",
        compressed: bool = False,
        rate: float = 1.0,
        camera_info: bool = True,
        preload: bool = False,
    ):
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        if not rate > 0:
            raise EasyOccError(f"play rate must be positive, got {rate}")
        self.node, self.items, self.rate, self.compressed = node, list(items), float(rate), compressed
        # Reliable writers match both reliable and best-effort (sensor-data) readers.
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=2,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
        channels = sorted({item.channel for item in self.items})
        base = namespace.rstrip("/")
        kind, suffix = (CompressedImage, "/image_raw/compressed") if compressed else (Image, "/image_raw")
        self.image_pubs = {c: node.create_publisher(kind, f"{base}/{c}{suffix}", qos) for c in channels}
        self.info_pubs = (
            {c: node.create_publisher(CameraInfo, f"{base}/{c}/camera_info", qos) for c in channels}
            if camera_info
            else {}
        )
        self.published = 0
        # preload: every distinct image decoded into its message before the clock starts (a raw
        # 1600x900 frame is 4.3 MB: 1.1 GB for scene-0916's 246), so that playback costs the CPU no
        # decoding: a camera driver hands over raw frames, and on a 2-core machine the player's
        # decoding otherwise competes with the node it measures. Loops reuse the same messages.
        self.preload = preload
        self._cache: dict = {}
        # One row per image published: (stamp_us, channel, due_s, ready_s, published_s), CLOCK_MONOTONIC
        # seconds (time.monotonic and time.perf_counter on Linux, comparable across processes): when it
        # was due, when the read-ahead had it ready, when publish() returned. The node benchmark joins
        # them with the node's per-frame times to tell a late player from a slow node.
        self.timing: list[tuple[int, str, float, float, float]] = []

    def wait_for_subscribers(self, timeout_s: float) -> bool:
        """Wait until every image topic has a subscriber (or timeout); True when all have one.

        Meanwhile CameraInfo goes out at 5 Hz, so a node that builds its rig from CameraInfo can
        configure (and subscribe to the images) before the first image is played.
        """
        first = {}
        for item in self.items:
            first.setdefault(item.channel, item)
        deadline = time.monotonic() + timeout_s
        next_info = 0.0
        while time.monotonic() < deadline:
            if all(pub.get_subscription_count() > 0 for pub in self.image_pubs.values()):
                time.sleep(0.5)  # let the readers match this writer too (discovery runs both ways)
                return True
            if self.info_pubs and time.monotonic() >= next_info:
                for channel, item in first.items():
                    self.info_pubs[channel].publish(camera_info_msg(item.camera, item.stamp_us, channel.lower()))
                next_info = time.monotonic() + 0.2
            time.sleep(0.05)
        return False

    def run(self, stop: threading.Event | None = None) -> int:
        """Publish everything at recorded timing; returns the number of images published."""
        stop = stop or threading.Event()
        pending: queue.Queue = queue.Queue(maxsize=PREFETCH_MESSAGES)
        from easyocc.ros_node.images import us_to_stamp

        if self.preload:
            for item in self.items:
                if stop.is_set():
                    break
                if item.path not in self._cache:
                    self._cache[item.path] = _image_msg(item, self.compressed)
        reader = threading.Thread(target=self._read_ahead, args=(pending, stop), daemon=True, name="easyocc-play")
        reader.start()
        # Fill the read-ahead before the clock starts: decoding three frames at once would otherwise
        # compete for the CPU with the receiver of the first frames (the node on the same machine).
        while not (stop.is_set() or pending.full()) and reader.is_alive():
            time.sleep(0.01)
        first_us = self.items[0].stamp_us
        start = None
        while not stop.is_set():
            entry = pending.get()
            if entry is None:
                break
            if isinstance(entry, BaseException):
                raise entry
            item, msg = entry
            ready = time.monotonic()
            if start is None:
                start = ready
            due = start + (item.stamp_us - first_us) / 1e6 / self.rate
            delay = due - ready
            if delay > 0 and stop.wait(delay):
                break
            if item.channel in self.info_pubs:
                self.info_pubs[item.channel].publish(camera_info_msg(item.camera, item.stamp_us, item.channel.lower()))
            if self.preload:  # a cached message serves every loop: its stamp is this item's, set now
                us_to_stamp(item.stamp_us, msg.header.stamp)
            self.image_pubs[item.channel].publish(msg)
            self.published += 1
            self.timing.append((item.stamp_us, item.channel, due, ready, time.monotonic()))
        stop.set()
        reader.join(timeout=5.0)
        return self.published

    def timing_dict(self) -> dict:
        """The publication times (see `timing`) as JSON: {'clock', 'columns', 'rows'}."""
        return {
            "clock": "CLOCK_MONOTONIC seconds",
            "columns": ["stamp_us", "channel", "due_s", "ready_s", "published_s"],
            "rows": [list(row) for row in self.timing],
        }

    def _message(self, item: PlayItem):
        """The image message of `item`: decoded now, or the preloaded one (run() stamps it when publishing)."""
        msg = self._cache.get(item.path)
        return _image_msg(item, self.compressed) if msg is None else msg

    def _read_ahead(self, pending: queue.Queue, stop: threading.Event) -> None:
        try:
            for item in self.items:
                message = (item, self._message(item))
                while not stop.is_set():
                    try:
                        pending.put(message, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            pending.put(None)
        except Exception as exc:  # surfaced by run() in the publishing thread
            pending.put(exc)
