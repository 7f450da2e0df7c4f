"""Frame assembly: which of the model's cameras a frame set provides, in sync, and in temporal order.

Policies for a camera that is absent or out of sync (its stamp older than the frame's by more than
the tolerance): 'drop' the frame, or 'zero' run it with that camera's image black and its
view-transform weights zeroed (the other cameras' weights renormalised).

Images that arrive one camera at a time (the ROS node's callbacks) are grouped by `ApproximateSync`:
a short queue per camera; each arriving message is a pivot: for every other camera the queued
message nearest in stamp is taken, and the group is emitted when all cameras have one and the
group's stamps span at most the tolerance, the moment its last image arrives.

Stamps must increase (per camera in the sync, per frame in `StampGuard`); one restart rule serves
both: a jump back by more than `REWIND_S` (a bag or a replay starting over) is a new stream, which
resets synchronisation and is counted, while a smaller step back is refused as 'stamp_backwards'.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import (
    MISSING_CAMERA,
    OUT_OF_SYNC,
    STAMP_BACKWARDS,
    SUPERSEDED,
    CameraImage,
    FrameError,
    FrameSet,
)

MISSING_POLICIES = ("drop", "zero")
REWIND_S = 5.0  # a stamp this far (or further) behind the previous one starts a new stream


def is_restart(last_us: int | None, stamp_us: int, rewind_us: int) -> bool:
    """True when `stamp_us` lies more than `rewind_us` before `last_us`: the stream started over."""
    return last_us is not None and last_us - stamp_us > rewind_us


@dataclass(frozen=True)
class Assembled:
    """present: {camera index in model order: CameraImage}; missing: sorted indices run with zero weights."""

    present: dict[int, CameraImage]
    missing: tuple[int, ...]


def check_policy(policy: str) -> str:
    if policy not in MISSING_POLICIES:
        raise EasyOccError(f"missing-camera policy must be one of {', '.join(MISSING_POLICIES)}, got '{policy}'")
    return policy


def assemble(frame: FrameSet, camera_names, sync_tolerance_us: int, policy: str = "drop") -> Assembled:
    """Match a frame set to the model's cameras; raise FrameError for a camera absent or out of sync
    under 'drop', or when no camera at all is usable. Cameras the model does not know are ignored."""
    check_policy(policy)
    present, missing, problems = {}, [], []
    for index, name in enumerate(camera_names):
        image = frame.images.get(name)
        if image is None:
            missing.append(index)
            unreadable = name in frame.meta.get("unreadable", ())
            what = "image could not be read in" if unreadable else "is missing from"
            problems.append((MISSING_CAMERA, f"camera {name} {what} frame {frame.seq}"))
            continue
        lag_us = frame.stamp_us - image.stamp_us
        if abs(lag_us) > sync_tolerance_us:
            missing.append(index)
            problems.append(
                (
                    OUT_OF_SYNC,
                    f"camera {name} is {lag_us / 1e3:.1f} ms off the frame stamp "
                    f"(tolerance {sync_tolerance_us / 1e3:.0f} ms) in frame {frame.seq}",
                )
            )
            continue
        present[index] = image
    if problems and (policy == "drop" or not present):
        reason, message = problems[0]
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more cameras)"
        raise FrameError(reason, message)
    return Assembled(present, tuple(missing))


class StampGuard:
    """Rejects frames whose stamp is not newer than the previous frame's (FrameError 'stamp_backwards').

    A jump back by more than `rewind_s` (a bag or replay restarting) is accepted as a new stream and
    counted in `restarts`.
    """

    def __init__(self, rewind_s: float = REWIND_S):
        self.rewind_us = int(rewind_s * 1e6)
        self.last_us: int | None = None
        self.restarts = 0

    def check(self, stamp_us: int, seq: int = 0) -> None:
        last = self.last_us
        if is_restart(last, stamp_us, self.rewind_us):
            self.restarts += 1
        elif last is not None and stamp_us <= last:
            raise FrameError(
                STAMP_BACKWARDS,
                f"frame {seq} stamp {stamp_us} us is {(last - stamp_us) / 1e3:.1f} ms older than or equal to "
                f"the previous frame's {last} us",
            )
        self.last_us = stamp_us

    def reset(self) -> None:
        self.last_us = None


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
    being grouped (one lost frame: MISSING_CAMERA when some camera had nothing near it, SUPERSEDED
    when those cameras are only behind, else OUT_OF_SYNC; see `_evict`).
    on_restart(message) is called when a camera's stamp jumps back by more than `rewind_s`: the
    queues are emptied and the stream starts over (counted in `restarts`).
    """

    def __init__(
        self, cameras, tolerance_us: int, queue_size: int = 4, on_drop=None, on_restart=None, rewind_s: float = REWIND_S
    ):
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
        self.on_drop, self.on_restart = on_drop, on_restart
        self.rewind_us = int(rewind_s * 1e6)
        self.restarts = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        for queue in self._queues.values():
            queue.clear()
        self._last_stamp.clear()

    def add(self, camera: str, stamp_us: int, item, receipt_s: float) -> SyncedGroup | None:
        """Queue one message; return the group it completes, or None. Raises FrameError(STAMP_BACKWARDS)."""
        with self._lock:
            if camera not in self._queues:
                raise EasyOccError(f"sync: unknown camera '{camera}' (expected one of {', '.join(self.cameras)})")
            last = self._last_stamp.get(camera)
            if is_restart(last, stamp_us, self.rewind_us):
                self._clear()  # a replay or bag restarting: old unmatched messages are not counted as drops
                self.restarts += 1
                if self.on_restart is not None:
                    self.on_restart(
                        f"camera {camera}: stamp {stamp_us} us is {(last - stamp_us) / 1e6:.1f} s before the "
                        f"previous one; synchronisation restarted"
                    )
                last = None
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
        """Count a lost frame once, by the reference (first) camera's messages only: MISSING_CAMERA
        when a camera skipped it (its image never came) or never delivered anything; SUPERSEDED when
        the cameras without an image for it are only behind (each one's newest image belongs to one of
        the frames just before it, as many as the reference camera has newer ones: their messages
        are still on the way, queued behind others), and newer frames took its place:
        the bounded queues' newest-frame policy, not a fault (no warning, as for the node's buffer);
        OUT_OF_SYNC when every camera has an image near it but the set spreads beyond the tolerance.
        A camera that stops delivering is behind for at most `queue_size` frames, then missing."""
        if camera != self.cameras[0] or self.on_drop is None:
            return
        near = [
            name
            for name, queue in self._queues.items()
            if name == camera or any(abs(e.stamp_us - entry.stamp_us) <= self.tolerance_us for e in queue)
        ]
        if len(near) == len(self.cameras):
            self.on_drop(OUT_OF_SYNC, f"frame at {entry.stamp_us} us: stamps spread beyond {self.tolerance_us} us")
            return
        missing = [name for name in self.cameras if name not in near]
        newer = self._queues[camera]  # the reference camera's frames after this one
        period_us = (newer[-1].stamp_us - entry.stamp_us) / len(newer) if newer else 0.0

        def behind(name: str) -> bool:
            # Its newest image belongs to one of the last len(newer) frames before this one.
            last = self._last_stamp.get(name)
            if last is None or period_us <= 0:
                return False
            frames = round((entry.stamp_us - last) / period_us)
            return 1 <= frames <= len(newer) and abs(entry.stamp_us - last - frames * period_us) <= self.tolerance_us

        if all(behind(name) for name in missing):
            self.on_drop(
                SUPERSEDED,
                f"frame at {entry.stamp_us} us: {', '.join(missing)} had not delivered it when newer frames "
                f"filled the sync queue (input backlog)",
            )
        else:
            self.on_drop(MISSING_CAMERA, f"frame at {entry.stamp_us} us: no image from {', '.join(missing)}")
