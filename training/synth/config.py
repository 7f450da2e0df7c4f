"""Settings of the synthetic world: one frozen dataclass, stored beside every generated dataset."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import OCC3D_NUSCENES, GridSpec

KEY_FRAME_HZ = 2.0


@dataclass(frozen=True)
class SynthConfig:
    """What `generate_dataset` writes and how `SyntheticWorld` renders."""

    scenes: int = 10
    """Number of scenes (each an independent procedural world, named synth-0000, synth-0001, ...)."""
    frames: int = 40
    """Key frames per scene, at 2 Hz (40 = 20 s, like a nuScenes scene)."""
    image_size: tuple[int, int] = (704, 256)
    """Camera image (width, height) in pixels; the nuScenes rig is resized (no crop) to it."""
    seed: int = 0
    """Master seed; scene i draws from numpy's default_rng([seed, i]); equal seeds give identical files."""
    camera_hz: float = 0.0
    """0: cameras only at key frames; 12: also non-key-frame camera images at 12 Hz (is_key_frame false)."""
    stagger_cameras: bool = True
    """Cameras fire up to +-25 ms around the key frame as the lidar sweeps past them, as in nuScenes."""
    lidar_beams: int = 32
    """Beams of the spinning lidar (HDL-32E elevations -30.67 to +10.67 deg)."""
    lidar_azimuth_steps: int = 1080
    """Lidar returns per beam and revolution (1/3 deg)."""
    lidar_max_range_m: float = 70.0
    """Lidar returns beyond this range are dropped."""
    max_render_distance_m: float = 150.0
    """Ground and objects beyond this distance from the camera are drawn as sky (depth 0)."""
    jpeg_quality: int = 92
    """JPEG quality of the camera images (fixed, so encoding is deterministic)."""
    subsamples: int = 3
    """Sub-samples per voxel edge when voxelizing (3 -> 27 per voxel) for the majority class."""
    density: float = 1.0
    """Multiplier on the number of objects per metre of road."""
    write_aux: bool = True
    """Write per-image depth, semantic and instance ground truth beside samples/."""
    grid: GridSpec = field(default=OCC3D_NUSCENES)
    """Ground-truth voxel grid in the ego frame."""

    def __post_init__(self):
        for name in ("scenes", "frames", "lidar_beams", "lidar_azimuth_steps", "subsamples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise EasyOccError(f"synth: {name} must be a positive integer, got {value!r}")
        size = tuple(self.image_size)
        if len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in size):
            raise EasyOccError(f"synth: image_size must be (width, height) integers, got {self.image_size!r}")
        if not (32 <= size[0] <= 4096 and 32 <= size[1] <= 4096):
            raise EasyOccError(f"synth: image_size {size[0]}x{size[1]} is outside 32..4096 pixels per side")
        object.__setattr__(self, "image_size", size)
        if self.camera_hz not in (0, 0.0, 12, 12.0):
            raise EasyOccError(f"synth: camera_hz must be 0 (key frames only) or 12, got {self.camera_hz!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise EasyOccError(f"synth: jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if not 0 < self.density <= 4:
            raise EasyOccError(f"synth: density must be in (0, 4], got {self.density}")
        if self.lidar_max_range_m <= 0 or self.max_render_distance_m <= 0:
            raise EasyOccError("synth: ranges must be positive")
        if not isinstance(self.grid, GridSpec):
            raise EasyOccError(f"synth: grid must be a GridSpec, got {type(self.grid).__name__}")

    @property
    def camera_frames_per_key(self) -> int:
        """Camera images per key-frame interval (1, or 6 at 12 Hz)."""
        return int(round(self.camera_hz / KEY_FRAME_HZ)) if self.camera_hz else 1

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["image_size"] = list(self.image_size)
        data["grid"] = self.grid.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SynthConfig:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EasyOccError(f"synth config: unknown field(s) {', '.join(unknown)}")
        if "grid" in data:
            data["grid"] = GridSpec.from_dict(data["grid"])
        if "image_size" in data:
            data["image_size"] = tuple(data["image_size"])
        return cls(**data)


def parse_size(text: str) -> tuple[int, int]:
    """'704x256' -> (704, 256); raises EasyOccError naming the bad text."""
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise EasyOccError(f"bad image size '{text}': expected WIDTHxHEIGHT, e.g. 704x256")
    width, height = (int(p) for p in parts)
    if not (32 <= width <= 4096 and 32 <= height <= 4096):
        raise EasyOccError(f"bad image size '{text}': each side must be 32..4096 pixels")
    return width, height
