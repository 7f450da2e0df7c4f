"""The voxel grid: one frozen definition, Occ3D-nuScenes by default, stored in every artifact."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError


@dataclass(frozen=True)
class GridSpec:
    """An axis-aligned voxel grid in the ego frame (x forward, y left, z up), index order [x, y, z].

    lower, upper: grid bounds in metres; voxel_size: edge length in metres. Voxel (i, j, k) has
    its centre at lower + voxel_size * (index + 0.5).
    """

    lower: tuple[float, float, float] = (-40.0, -40.0, -1.0)
    upper: tuple[float, float, float] = (40.0, 40.0, 5.4)
    voxel_size: float = 0.4

    def __post_init__(self):
        lower = tuple(float(v) for v in self.lower)
        upper = tuple(float(v) for v in self.upper)
        if len(lower) != 3 or len(upper) != 3:
            raise EasyOccError("grid: lower and upper must have 3 values each")
        if not self.voxel_size > 0:
            raise EasyOccError(f"grid: voxel_size must be positive, got {self.voxel_size}")
        extent = np.subtract(upper, lower) / self.voxel_size
        if np.any(extent < 1) or not np.allclose(extent, np.round(extent), atol=1e-6):
            raise EasyOccError(
                f"grid: extent {np.subtract(upper, lower)} m is not a positive multiple of {self.voxel_size} m"
            )
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "voxel_size", float(self.voxel_size))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(X, Y, Z) voxel counts."""
        return tuple(int(round((u - lo) / self.voxel_size)) for lo, u in zip(self.lower, self.upper))

    @property
    def num_voxels(self) -> int:
        x, y, z = self.shape
        return x * y * z

    def centres(self, stride_xy: int = 1, stride_z: int = 1) -> np.ndarray:
        """Cell centres [X/sxy, Y/sxy, Z/sz, 3] (metres, float64) of cells of stride x stride voxels."""
        x, y, z = self.shape
        if x % stride_xy or y % stride_xy or z % stride_z:
            raise EasyOccError(f"grid {self.shape} is not divisible by strides ({stride_xy}, {stride_xy}, {stride_z})")
        axes = []
        for lo, count, stride in zip(self.lower, (x, y, z), (stride_xy, stride_xy, stride_z)):
            size = self.voxel_size * stride
            axes.append(lo + size * (np.arange(count // stride) + 0.5))
        gx, gy, gz = np.meshgrid(*axes, indexing="ij")
        return np.stack([gx, gy, gz], axis=-1)

    def index_of(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Voxel indices [N, 3] (int64) of points [N, 3] metres and an inside-the-grid flag [N]."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        index = np.floor((points - np.asarray(self.lower)) / self.voxel_size).astype(np.int64)
        inside = np.all((index >= 0) & (index < np.asarray(self.shape)), axis=1)
        return index, inside

    def flat_index(self, index: np.ndarray) -> np.ndarray:
        """[N, 3] voxel indices -> [N] C-order flat indices."""
        return np.ravel_multi_index(tuple(np.asarray(index).T), self.shape)

    def to_dict(self) -> dict:
        return {
            "lower": list(self.lower),
            "upper": list(self.upper),
            "voxel_size": self.voxel_size,
            "shape": list(self.shape),
        }

    @classmethod
    def from_dict(cls, data: dict) -> GridSpec:
        try:
            grid = cls(tuple(data["lower"]), tuple(data["upper"]), float(data["voxel_size"]))
        except (KeyError, TypeError) as exc:
            raise EasyOccError(f"grid: missing or malformed field {exc}") from None
        if "shape" in data and tuple(data["shape"]) != grid.shape:
            raise EasyOccError(f"grid: stated shape {tuple(data['shape'])} does not match bounds ({grid.shape})")
        return grid

    def describe(self) -> str:
        x, y, z = self.shape
        return f"{x}x{y}x{z} @ {self.voxel_size} m, [{', '.join(f'{v:g}' for v in self.lower + self.upper)}]"


OCC3D_NUSCENES = GridSpec()
