"""Lidar occupancy targets for pretraining, cached on disk in the Occ3D labels layout.

`gts/<scene>/<token>/labels.npz` with semantics OCCUPIED (0) where a return falls and FREE (17)
elsewhere, and `mask_lidar` = `mask_camera` = known (occupied or free); unknown voxels are masked out.
Class 0 here means "occupied, class unknown": these files are read only by the class-agnostic
occupancy loss (`training.pretrain.objective`), never as semantic labels; `lidar_targets.json` beside
`gts/` says so and records how they were built (a folder built differently is refused).

The last `hold_out_last` key frames of every scene get no target, and since only PAST sweeps are
accumulated, no target uses a held-out frame's sweep either.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from easyocc.runtime.contract.classes import FREE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.dataset.labels import OccLabels, labels_path, write_labels
from easyocc.runtime.dataset.lidar_occupancy import accumulated_sweeps, ray_occupancy
from easyocc.runtime.dataset.nuscenes import NuScenesDataset

OCCUPIED = 0  # semantics value of an occupied voxel in a targets file (class unknown)
MANIFEST = "lidar_targets.json"


@dataclass(frozen=True)
class TargetSpec:
    """How a targets folder is built (stored in its lidar_targets.json)."""

    data_root: str
    grid: dict
    past_frames: int = 2
    hold_out_last: int = 0
    min_motion_m: float = 0.3
    kind: str = "lidar_occupancy"


def targets_path(cache_dir, data_root, grid: GridSpec, past_frames: int, hold_out_last: int) -> Path:
    """The cache folder of one dataset and build setting under `cache_dir`."""
    shape = "x".join(str(v) for v in grid.shape)
    return Path(cache_dir) / f"{Path(data_root).resolve().name}-{shape}-p{past_frames}-h{hold_out_last}"


def held_out_tokens(dataset: NuScenesDataset, hold_out_last: int) -> set[str]:
    """Sample tokens of the last `hold_out_last` key frames of every scene."""
    if hold_out_last <= 0:
        return set()
    return {s.token for scene in dataset.scene_names for s in dataset.samples(scene)[-hold_out_last:]}


def build_lidar_targets(spec: TargetSpec, out_dir, scenes=None, progress: bool = False) -> Path:
    """Write (or complete) the targets of `spec` under out_dir; returns out_dir. Existing files are kept."""
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST
    if manifest.is_file():
        stored = json.loads(manifest.read_text())
        if stored != asdict(spec):
            raise EasyOccError(f"lidar targets {out_dir} were built differently ({MANIFEST}); use another folder")
    dataset = NuScenesDataset(spec.data_root)
    grid = GridSpec.from_dict(spec.grid)
    jobs = []
    for scene in scenes or dataset.scene_names:
        samples = dataset.samples(scene)
        if any(s.lidar is None for s in samples):
            raise EasyOccError(f"lidar targets: scene {scene} of {spec.data_root} has key frames without lidar")
        keep = len(samples) - spec.hold_out_last
        jobs += [(samples, i) for i in range(max(keep, 0))]
    write_json_atomic(manifest, asdict(spec))
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="lidar targets", dynamic_ncols=True, mininterval=5)
    for samples, index in jobs:
        sample = samples[index]
        path = labels_path(out_dir, sample.scene_name, sample.token)
        if path.is_file():
            continue
        occupancy = ray_occupancy(
            grid, accumulated_sweeps(dataset, samples, index, spec.past_frames, spec.min_motion_m)
        )
        known = occupancy.known.astype(np.uint8)
        semantics = np.where(occupancy.occupied, OCCUPIED, FREE).astype(np.uint8)
        write_labels(path, OccLabels(semantics, known, known))
    return out_dir
