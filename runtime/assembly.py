"""Frame assembly: which of the model's cameras a frame set provides, in sync, and in temporal order.

Policies for a camera that is absent or out of sync (its stamp older than the frame's by more than
the tolerance): 'drop' the frame, or 'zero' run it with that camera's image black and its
view-transform weights zeroed (the other cameras' weights renormalised).
"""

from __future__ import annotations

from dataclasses import dataclass

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import (
    MISSING_CAMERA,
    OUT_OF_SYNC,
    STAMP_BACKWARDS,
    CameraImage,
    FrameError,
    FrameSet,
)

MISSING_POLICIES = ("drop", "zero")


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
            problems.append((MISSING_CAMERA, f"camera {name} is missing from frame {frame.seq}"))
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

    A jump back by more than `rewind_s` (a bag or replay restarting) is accepted as a new stream.
    """

    def __init__(self, rewind_s: float = 5.0):
        self.rewind_us = int(rewind_s * 1e6)
        self.last_us: int | None = None

    def check(self, stamp_us: int, seq: int = 0) -> None:
        last = self.last_us
        if last is not None and stamp_us <= last and last - stamp_us <= self.rewind_us:
            raise FrameError(
                STAMP_BACKWARDS,
                f"frame {seq} stamp {stamp_us} us is {(last - stamp_us) / 1e3:.1f} ms older than or equal to "
                f"the previous frame's {last} us",
            )
        self.last_us = stamp_us

    def reset(self) -> None:
        self.last_us = None


class FrameAssembler:
    """Builds frame sets from images that arrive one camera at a time (e.g. ROS callbacks).

    Keeps the newest image per camera; `add` returns a FrameSet once every expected camera has an
    image within `sync_tolerance_ms` of the newest one, and then starts over. Bounded: one image per
    camera.
    """

    def __init__(self, camera_names, sync_tolerance_ms: float = 50.0):
        self.camera_names = tuple(camera_names)
        self.tolerance_us = int(sync_tolerance_ms * 1e3)
        self._latest: dict[str, CameraImage] = {}
        self._seq = 0

    def add(self, image: CameraImage) -> FrameSet | None:
        if image.camera not in self.camera_names:
            raise EasyOccError(f"camera {image.camera} is not one of the model's cameras {list(self.camera_names)}")
        self._latest[image.camera] = image
        if len(self._latest) < len(self.camera_names):
            return None
        newest = max(i.stamp_us for i in self._latest.values())
        if any(newest - i.stamp_us > self.tolerance_us for i in self._latest.values()):
            return None
        frame = FrameSet(newest, dict(self._latest), self._seq)
        self._seq += 1
        self._latest = {}
        return frame
