"""Occ3D labels on disk: `gts/<scene>/<sample_token>/labels.npz` with semantics and two masks (uint8)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from easyocc.runtime.contract.classes import FREE, NUM_CLASSES
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import atomic_path
from easyocc.runtime.contract.grid import GridSpec

LABEL_KEYS = ("semantics", "mask_lidar", "mask_camera")


@dataclass(frozen=True, eq=False)
class OccLabels:
    """semantics: uint8 [X, Y, Z], classes 0-16 and 17 = free; masks: uint8 [X, Y, Z] 0/1."""

    semantics: np.ndarray
    mask_lidar: np.ndarray
    mask_camera: np.ndarray

    def validate(self, grid: GridSpec, where: str = "labels") -> OccLabels:
        for key in LABEL_KEYS:
            array = getattr(self, key)
            if array.shape != grid.shape:
                raise EasyOccError(f"{where}: {key} has shape {array.shape}, grid expects {grid.shape}")
        if self.semantics.size and int(self.semantics.max()) >= NUM_CLASSES:
            raise EasyOccError(f"{where}: semantics has class id {int(self.semantics.max())} >= {NUM_CLASSES}")
        return self

    def mask(self, which: str) -> np.ndarray | None:
        """Boolean mask for 'camera', 'lidar', or None for 'none' (the full scene)."""
        if which == "camera":
            return self.mask_camera.astype(bool)
        if which == "lidar":
            return self.mask_lidar.astype(bool)
        if which in ("none", "full", None):
            return None
        raise EasyOccError(f"unknown mask '{which}' (camera, lidar or none)")

    @classmethod
    def empty(cls, grid: GridSpec) -> OccLabels:
        return cls(np.full(grid.shape, FREE, np.uint8), np.zeros(grid.shape, np.uint8), np.zeros(grid.shape, np.uint8))


def labels_path(root, scene_name: str, sample_token: str) -> Path:
    return Path(root) / "gts" / scene_name / sample_token / "labels.npz"


def read_labels(path, grid: GridSpec | None = None) -> OccLabels:
    """Read an Occ3D labels.npz; validates keys, dtypes and (if given) the grid shape."""
    path = Path(path)
    if not path.is_file():
        raise EasyOccError(f"labels file not found: {path}")
    try:
        with np.load(path) as data:
            missing = [key for key in LABEL_KEYS if key not in data]
            if missing:
                raise EasyOccError(f"labels file {path}: missing key(s) {', '.join(missing)}")
            arrays = {key: np.asarray(data[key]) for key in LABEL_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EasyOccError(f"labels file {path}: unreadable ({exc})") from None
    for key, array in arrays.items():
        if array.dtype != np.uint8:
            arrays[key] = array.astype(np.uint8)
    labels = OccLabels(**arrays)
    shape = arrays["semantics"].shape
    return labels.validate(grid or _grid_like(shape, path), where=f"labels file {path}")


def _grid_like(shape, path) -> GridSpec:
    if len(shape) != 3:
        raise EasyOccError(f"labels file {path}: semantics must be 3-D, got shape {shape}")
    return _ShapeOnly(shape)


class _ShapeOnly:
    def __init__(self, shape):
        self.shape = tuple(shape)


# Where a labels folder records the grid its labels were made for (first found wins); without either,
# labels under gts/ are Occ3D-nuScenes labels, on its grid.
GRID_RECORDS = (("synth_config.json", ("grid",)), ("pseudo_labels.json", ("config", "grid")))


def labels_grid(root) -> tuple[GridSpec, str]:
    """(grid of the labels under <root>/gts, where that comes from): the synthetic world's
    synth_config.json, the pseudo-labeller's pseudo_labels.json, else the Occ3D-nuScenes grid."""
    import json

    from easyocc.runtime.contract.grid import OCC3D_NUSCENES

    for name, keys in GRID_RECORDS:
        path = Path(root) / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
            for key in keys:
                data = data[key]
            return GridSpec.from_dict(data), str(path)
        except (ValueError, KeyError, TypeError, EasyOccError) as exc:
            raise EasyOccError(f"{path}: no readable labels grid ({exc})") from None
    return OCC3D_NUSCENES, "Occ3D-nuScenes (no synth_config.json or pseudo_labels.json)"


def check_labels_grid(grid: GridSpec, root, who: str, same_shape_only: bool = False) -> None:
    """Refuse to score or train `who` (on `grid`) against labels made for another grid, even one of the
    same shape: every voxel would be compared with the one at another place. same_shape_only: leave a
    different shape to the reader of each labels file (read_labels(path, grid) refuses it)."""
    theirs, source = labels_grid(root)
    if theirs != grid and (theirs.shape == grid.shape or not same_shape_only):
        where = Path(source).name  # the record's file name (it lies in root), or the Occ3D default
        raise EasyOccError(
            f"{who} has grid {grid.describe()}; the labels in {root} are on {theirs.describe()} ({where})"
        )


def write_labels(path, labels: OccLabels) -> None:
    """Write labels.npz atomically (compressed)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                semantics=labels.semantics.astype(np.uint8),
                mask_lidar=labels.mask_lidar.astype(np.uint8),
                mask_camera=labels.mask_camera.astype(np.uint8),
            )
