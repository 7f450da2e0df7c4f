"""Settings of the synthetic world: one frozen dataclass, stored beside every generated dataset."""

from __future__ import annotations

from dataclasses import dataclass, field

from easyocc.runtime.contract import config as config_system
from easyocc.runtime.contract.config import setting
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import OCC3D_NUSCENES, GridSpec

KEY_FRAME_HZ = 2.0


@dataclass(frozen=True)
class SynthConfig:
    """What `generate_dataset` writes and how `SyntheticWorld` renders."""

    scenes: int = setting(10, min=1)
    """Number of scenes (each an independent procedural world, named synth-0000, synth-0001, ...)."""
    frames: int = setting(40, min=1)
    """Key frames per scene, at 2 Hz (40 = 20 s, like a nuScenes scene)."""
    image_size: tuple[int, int] = setting((704, 256), min=32, max=4096)
    """Camera image (width, height) in pixels; the nuScenes rig is resized (no crop) to it."""
    seed: int = setting(0, min=0)
    """Master seed; scene i draws from numpy's default_rng([seed, i]); equal seeds give identical files."""
    camera_hz: float = setting(0.0, choices=(0.0, 12.0))
    """0: cameras only at key frames; 12: also non-key-frame camera images at 12 Hz (is_key_frame false)."""
    stagger_cameras: bool = True
    """Cameras fire up to +-25 ms around the key frame as the lidar sweeps past them, as in nuScenes."""
    lidar_beams: int = setting(32, min=1)
    """Beams of the spinning lidar (HDL-32E elevations -30.67 to +10.67 deg)."""
    lidar_azimuth_steps: int = setting(1080, min=1)
    """Lidar returns per beam and revolution (1/3 deg)."""
    lidar_max_range_m: float = setting(70.0, above=0.0)
    """Lidar returns beyond this range are dropped."""
    max_render_distance_m: float = setting(150.0, above=0.0)
    """Ground and objects beyond this distance from the camera are drawn as sky (depth 0)."""
    jpeg_quality: int = setting(92, min=1, max=100)
    """JPEG quality of the camera images (fixed, so encoding is deterministic)."""
    subsamples: int = setting(3, min=1)
    """Sub-samples per voxel edge when voxelizing (3 -> 27 per voxel) for the majority class."""
    density: float = setting(1.0, above=0.0, max=4.0)
    """Multiplier on the number of objects per metre of road."""
    write_aux: bool = True
    """Write per-image depth, semantic and instance ground truth beside samples/."""
    grid: GridSpec = field(default=OCC3D_NUSCENES)
    """Ground-truth voxel grid in the ego frame."""

    def __post_init__(self):
        object.__setattr__(self, "image_size", tuple(self.image_size))
        if len(self.image_size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in self.image_size):
            raise EasyOccError(f"synth: image_size must be (width, height) integers, got {self.image_size!r}")
        config_system.check(self)
        if not isinstance(self.grid, GridSpec):
            raise EasyOccError(f"synth: grid must be a GridSpec, got {type(self.grid).__name__}")

    @property
    def camera_frames_per_key(self) -> int:
        """Camera images per key-frame interval (1, or 6 at 12 Hz)."""
        return int(round(self.camera_hz / KEY_FRAME_HZ)) if self.camera_hz else 1

    def to_dict(self) -> dict:
        return config_system.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SynthConfig:
        return config_system.build(cls, data)


def parse_size(text: str) -> tuple[int, int]:
    """'704x256' -> (704, 256); raises EasyOccError naming the bad text."""
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise EasyOccError(f"bad image size '{text}': expected WIDTHxHEIGHT, e.g. 704x256")
    width, height = (int(p) for p in parts)
    if not (32 <= width <= 4096 and 32 <= height <= 4096):
        raise EasyOccError(f"bad image size '{text}': each side must be 32..4096 pixels")
    return width, height
