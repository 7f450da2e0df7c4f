"""Frame sources: iterables of FrameSet (nuScenes-layout replay, image folders, any iterable).

Sources read encoded bytes only; decoding belongs to the preprocess stage, where it is timed and
runs in parallel across cameras.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from easyocc.calibration import CameraRig
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import CameraImage, FrameSet
from easyocc.runtime.dataset.nuscenes import NuScenesDataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
log = logging.getLogger("easyocc.runtime")


def _read(path: Path) -> bytes | None:
    """The file's bytes, or None when it cannot be read: the frame then lacks that camera, and the
    runtime drops it (counted as 'missing_camera') or runs it zero-filled (--missing-camera zero)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        log.debug("image %s: %s; the frame goes on without this camera", path, exc.strerror)
        return None


def _frame(images, seq: int, meta: dict) -> FrameSet:
    """A frame set from (camera, stamp_us, bytes | None): unreadable cameras are left out and named in
    meta['unreadable']; a frame none of whose images could be read keeps its stamp and no images."""
    present = [CameraImage(camera, stamp, data=data) for camera, stamp, data in images if data is not None]
    unreadable = [camera for camera, _, data in images if data is None]
    if unreadable:
        meta = {**meta, "unreadable": unreadable}
    if present:
        return FrameSet.from_images(present, seq, meta)
    return FrameSet(max(stamp for _, stamp, _ in images), {}, seq, meta)


class Pacer:
    """Sleeps so that frames leave at their recorded stamps (times `speed`); no-op when not paced."""

    def __init__(self, paced: bool, speed: float = 1.0):
        if speed <= 0:
            raise EasyOccError(f"replay speed must be positive, got {speed}")
        self.paced, self.speed = paced, speed
        self._origin: tuple[float, int] | None = None

    def wait(self, stamp_us: int) -> None:
        if not self.paced:
            return
        if self._origin is None:
            self._origin = (time.perf_counter(), stamp_us)
            return
        start, stamp0 = self._origin
        delay = start + (stamp_us - stamp0) / 1e6 / self.speed - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


class NuScenesSource:
    """Replay of a nuScenes-layout dataset's key frames, one FrameSet per sample.

    scene: a scene name, a list of them (played in that order), or None for all scenes in order;
    paced: leave at the recorded timestamps (times `speed`), else as fast as possible; loop: repeat
    `loops` times (0 = forever) with stamps shifted so they keep increasing; preload: read every image
    file once into memory (benchmarks without disk I/O). meta of each frame: sample_token, scene, index,
    global_T_ego (4x4 at the first camera's timestamp).
    """

    def __init__(
        self,
        root,
        scene: str | list[str] | None = None,
        paced: bool = False,
        speed: float = 1.0,
        loops: int = 1,
        preload: bool = False,
    ):
        self.dataset = NuScenesDataset(root)
        scenes = [scene] if scene is None or isinstance(scene, str) else list(scene)
        self.samples = [sample for name in scenes for sample in self.dataset.samples(name)]
        if not self.samples:
            raise EasyOccError(f"dataset {root}: no samples{f' in scene {scene}' if scene else ''}")
        self.paced, self.speed, self.loops = paced, speed, loops
        self._cache: dict[Path, bytes] | None = {} if preload else None
        if preload:
            for sample in self.samples:
                for frame in sample.cameras.values():
                    data = _read(frame.path)
                    if data is not None:
                        self._cache[frame.path] = data

    @property
    def rig(self) -> CameraRig:
        """The rig of the first sample (calibration is constant within a scene)."""
        return self.dataset.rig(self.samples[0])

    def __len__(self) -> int:
        return len(self.samples) * max(self.loops, 1)

    def _bytes(self, path: Path) -> bytes | None:
        if self._cache is not None:
            return self._cache.get(path)
        return _read(path)

    def __iter__(self) -> Iterator[FrameSet]:
        pacer = Pacer(self.paced, self.speed)
        first, last = self.samples[0].timestamp_us, self.samples[-1].timestamp_us
        period = (last - first) // max(len(self.samples) - 1, 1) if len(self.samples) > 1 else 100_000
        seq, loop = 0, 0
        while self.loops == 0 or loop < self.loops:
            shift = loop * (last - first + period)
            for sample in self.samples:
                images = [(c, f.timestamp_us + shift, self._bytes(f.path)) for c, f in sample.cameras.items()]
                meta = {"sample_token": sample.token, "scene": sample.scene_name, "index": sample.index}
                first_camera = next(iter(sample.cameras.values()), None)
                if first_camera is not None:  # where the vehicle was (the recording sinks place it in the world)
                    meta["global_T_ego"] = first_camera.global_T_ego
                frame = _frame(images, seq, meta)
                pacer.wait(frame.stamp_us)
                yield frame
                seq += 1
            loop += 1


class ImageFolderSource:
    """Frames from <folder>/<CAMERA>/<name>.jpg|png: the i-th file (sorted) of every camera folder is frame i.

    Stamps: the file stem when it is an integer (microseconds, as nuScenes names end), else i / fps.
    """

    def __init__(self, folder, camera_names, fps: float = 10.0, paced: bool = False):
        self.folder = Path(folder)
        self.camera_names = tuple(camera_names)
        self.fps, self.paced = fps, paced
        self.files: dict[str, list[Path]] = {}
        for name in self.camera_names:
            directory = self.folder / name
            if not directory.is_dir():
                raise EasyOccError(f"image folder {self.folder} has no sub-folder {name}")
            self.files[name] = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        counts = {name: len(files) for name, files in self.files.items()}
        if len(set(counts.values())) != 1 or not min(counts.values()):
            raise EasyOccError(f"image folder {self.folder}: cameras hold different or zero image counts {counts}")

    def __len__(self) -> int:
        return len(next(iter(self.files.values())))

    def _stamp(self, path: Path, index: int) -> int:
        stem = path.stem.split("__")[-1]
        return int(stem) if stem.isdigit() else int(round(index / self.fps * 1e6))

    def __iter__(self) -> Iterator[FrameSet]:
        pacer = Pacer(self.paced)
        for index in range(len(self)):
            images = [
                (name, self._stamp(self.files[name][index], index), _read(self.files[name][index]))
                for name in self.camera_names
            ]
            frame = _frame(images, index, {"index": index})
            pacer.wait(frame.stamp_us)
            yield frame


class IterableSource:
    """Any iterable of FrameSet (e.g. a synthetic world generating frames on the fly), optionally paced."""

    def __init__(self, frames: Iterable[FrameSet], paced: bool = False, rig: CameraRig | None = None):
        self.frames, self.paced, self.rig = frames, paced, rig

    def __iter__(self) -> Iterator[FrameSet]:
        pacer = Pacer(self.paced)
        for frame in self.frames:
            if not isinstance(frame, FrameSet):
                raise EasyOccError(f"source yielded {type(frame).__name__}, expected FrameSet")
            pacer.wait(frame.stamp_us)
            yield frame
