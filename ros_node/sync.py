"""Approximate time synchronisation of the camera streams and the newest-frame buffer to the worker.

ROS-free (no message_filters, no rclpy), so both are unit-tested without a middleware.

`ApproximateSync` keeps a short queue per camera. Each arriving message is a pivot: for every other
camera the queued message nearest in stamp is taken, and the group is emitted when all cameras have
one and the group's stamps span at most the tolerance. A group is therefore emitted the moment its
last image arrives. Per-camera stamps must increase; an older or repeated stamp is rejected.

`NewestFrameBuffer` holds at most one item: a put replaces an item the worker has not taken yet (it
is returned so the caller can count it as superseded), so callbacks never block and nothing queues.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import MISSING_CAMERA, OUT_OF_SYNC, STAMP_BACKWARDS, FrameError


@dataclass
class Entry:
    """One queued message: its stamp (us), payload and receipt time (monotonic seconds)."""

    stamp_us: int
    item: object
    receipt_s: float


@dataclass
class SyncedGroup:
    """One message per camera (dict camera -> Entry) whose stamps agree within the tolerance."""

    entries: dict

    @property
    def stamp_us(self) -> int:
        """The newest camera stamp (the frame's capture time, as easyocc.runtime.contract.frames.FrameSet uses)."""
        return max(e.stamp_us for e in self.entries.values())

    @property
    def last_receipt_s(self) -> float:
        """When the last image of the group was received (start of the node's added latency)."""
        return max(e.receipt_s for e in self.entries.values())

    @property
    def spread_us(self) -> int:
        stamps = [e.stamp_us for e in self.entries.values()]
        return max(stamps) - min(stamps)


class ApproximateSync:
    """Group messages of `cameras` whose stamps lie within `tolerance_us`; bounded per-camera queues.

    on_drop(reason, message) is called for each reference-camera message that leaves its queue without
    being grouped (one lost frame: MISSING_CAMERA when some camera had nothing near it, else OUT_OF_SYNC).
    """

    def __init__(self, cameras, tolerance_us: int, queue_size: int = 4, on_drop=None):
        self.cameras = tuple(cameras)
        if not self.cameras:
            raise EasyOccError("sync: no cameras to synchronise")
        if tolerance_us < 0:
            raise EasyOccError(f"sync: tolerance must be >= 0, got {tolerance_us} us")
        if queue_size < 1:
            raise EasyOccError(f"sync: queue size must be >= 1, got {queue_size}")
        self.tolerance_us = int(tolerance_us)
        self.queue_size = int(queue_size)
        self._queues = {name: deque() for name in self.cameras}
        self._last_stamp: dict[str, int] = {}
        self._on_drop = on_drop
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            for queue in self._queues.values():
                queue.clear()
            self._last_stamp.clear()

    def add(self, camera: str, stamp_us: int, item, receipt_s: float) -> SyncedGroup | None:
        """Queue one message; return the group it completes, or None. Raises FrameError(STAMP_BACKWARDS)."""
        with self._lock:
            if camera not in self._queues:
                raise EasyOccError(f"sync: unknown camera '{camera}' (expected one of {', '.join(self.cameras)})")
            last = self._last_stamp.get(camera)
            if last is not None and stamp_us <= last:
                raise FrameError(
                    STAMP_BACKWARDS, f"camera {camera}: stamp {stamp_us} us is not after the previous {last} us"
                )
            self._last_stamp[camera] = stamp_us
            queue = self._queues[camera]
            queue.append(Entry(stamp_us, item, receipt_s))
            while len(queue) > self.queue_size:
                self._evict(camera, queue.popleft())
            return self._match(camera, queue[-1])

    def _match(self, pivot_camera: str, pivot: Entry) -> SyncedGroup | None:
        chosen = {pivot_camera: pivot}
        for name, queue in self._queues.items():
            if name == pivot_camera:
                continue
            if not queue:
                return None
            chosen[name] = min(queue, key=lambda e: abs(e.stamp_us - pivot.stamp_us))
        group = SyncedGroup({name: chosen[name] for name in self.cameras})
        if group.spread_us > self.tolerance_us:
            return None
        for name, entry in group.entries.items():
            queue = self._queues[name]
            while queue and queue[0].stamp_us <= entry.stamp_us:
                dropped = queue.popleft()
                if dropped is not entry:
                    self._evict(name, dropped)
        return group

    def _evict(self, camera: str, entry: Entry) -> None:
        # Count lost frames once, by the reference (first) camera's messages only.
        if camera != self.cameras[0] or self._on_drop is None:
            return
        near = [
            name
            for name, queue in self._queues.items()
            if name == camera or any(abs(e.stamp_us - entry.stamp_us) <= self.tolerance_us for e in queue)
        ]
        if len(near) < len(self.cameras):
            missing = [name for name in self.cameras if name not in near]
            self._on_drop(MISSING_CAMERA, f"frame at {entry.stamp_us} us: no image from {', '.join(missing)}")
        else:
            self._on_drop(OUT_OF_SYNC, f"frame at {entry.stamp_us} us: stamps spread beyond {self.tolerance_us} us")


class NewestFrameBuffer:
    """A one-slot buffer between callbacks and the worker: put never blocks, get waits with a timeout."""

    def __init__(self):
        self._item = None
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item):
        """Store `item`; return the item it replaced (not yet taken by the worker) or None."""
        with self._cond:
            replaced, self._item = self._item, item
            self._cond.notify()
            return replaced

    def get(self, timeout: float | None = None):
        """The newest item (removing it), or None after `timeout` seconds or when closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake a waiting worker; later gets return None at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._item = None
