"""Training data: a nuScenes-layout dataset plus an Occ3D labels folder (ground truth or pseudo).

Images are decoded and resized with the runtime's own preprocessing, so the network sees at
training time exactly what it sees in the car. Augmentations keep geometry consistent:
- resize (scale >= 1) and crop of every image, with each camera's K updated by `calibration`, and
  the view-transform tables rebuilt from the augmented rig;
- random flips of the BEV (mirror of x and/or y in the ego frame): labels and rig are flipped
  together. Mirroring the ego frame maps cell i onto cell n-1-i, so the mirrored rig's tables are
  the unflipped tables with their cell order reversed on that axis: no rebuild, the cache serves it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from easyocc.calibration import CameraRig, build_view_transform, resize_and_crop
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.runtime.contract.manifest import ViewTransformSpec
from easyocc.runtime.contract.preprocess import read_image, resize_to_network
from easyocc.runtime.contract.view_feed import ViewTableCache
from easyocc.runtime.dataset.labels import check_labels_grid, read_labels
from easyocc.runtime.dataset.nuscenes import Sample, load_dataset
from easyocc.runtime.dataset.splits import SceneSplit, resolve_split, split_scenes
from easyocc.training.model.config import ModelConfig

log = logging.getLogger(__name__)
STATS_FOLDER = "stats"
"""Beside the labels: <labels root>/stats/class_counts_<mask>_<fingerprint>.json."""
__all__ = ["Augment", "OccDataset", "class_counts", "select_scenes", "shared_class_counts", "split_scenes"]


@dataclass(frozen=True)
class Augment:
    """Per-sample augmentation drawn from a seeded generator (identical on every process)."""

    scale: float = 1.0  # image resize factor before the crop back to input_size
    crop_xy: tuple[int, int] = (0, 0)  # top-left corner of the crop in the resized image
    flip_x: bool = False  # mirror the ego x axis (forward/backward)
    flip_y: bool = False  # mirror the ego y axis (left/right)


def select_scenes(data_root, split: str = "auto", eval_split: str = "auto", val_scenes: int = 1) -> SceneSplit:
    """Training and held-out scenes of a dataset (`easyocc.runtime.dataset.splits.resolve_split`):
    nuScenes' official lists where the scenes are nuScenes scenes, else the last `val_scenes` held out."""
    return resolve_split(load_dataset(data_root).scene_names, split, eval_split, val_scenes)


class OccDataset(torch.utils.data.Dataset):
    """Items for keys `index + epoch * len(self)` (the epoch seeds the augmentation, so workers and
    DDP ranks agree without shared state):

    images uint8 [N_cam, H, W, 3], vt_uv float32 [N_cam, N_cell, 2], vt_weights float32 [N_cam, N_cell],
    semantics int64 [X, Y, Z], mask bool [X, Y, Z], index int, seed int.
    """

    def __init__(
        self,
        data_root,
        labels_root,
        config: ModelConfig,
        scenes=None,
        mask: str = "camera",
        augment: bool = False,
        scale_range: tuple[float, float] = (1.0, 1.12),
        flip: bool = True,
        seed: int = 0,
        max_frames: int = 0,
    ):
        self.data = load_dataset(data_root)
        self.labels_root = Path(labels_root) if labels_root else self.data.root
        self.config = config
        self.grid = config.grid_spec
        self.mask_kind = mask
        self.augment = augment
        self.scale_range = tuple(float(v) for v in scale_range)
        self.flip = flip
        self.seed = seed
        if self.scale_range[0] < 1.0 or self.scale_range[1] < self.scale_range[0]:
            raise EasyOccError(f"data: scale_range {self.scale_range} must satisfy 1 <= low <= high")
        scenes = list(scenes) if scenes else self.data.scene_names
        self.samples: list[Sample] = []
        self.missing_labels: list[str] = []
        self.unreadable: dict[int, str] = {}  # sample index -> why it was skipped (this process)
        for sample in (s for scene in scenes for s in self.data.samples(scene)):
            if self.data.labels_path(sample, self.labels_root).is_file():
                self.samples.append(sample)
            else:
                self.missing_labels.append(sample.token)
        if max_frames:
            # evenly spread over the scenes rather than the first frames of the first scene
            pick = np.linspace(0, len(self.samples) - 1, min(max_frames, len(self.samples))).round().astype(int)
            self.samples = [self.samples[i] for i in sorted(set(pick.tolist()))]
        if not self.samples:
            raise EasyOccError(
                f"data: no sample of scenes {scenes[:3]}{'...' if len(scenes) > 3 else ''} in {self.data.root} "
                f"has labels under {self.labels_root}/gts"
            )
        # labels of the same shape on another grid (0.5 m over +-50 m vs 0.4 m over +-40 m): refused here
        check_labels_grid(self.grid, self.labels_root, "the model", same_shape_only=True)
        spec = ViewTransformSpec(self.config.stride_xy, self.config.stride_z, self.config.min_depth_m)
        self._tables = ViewTableCache(self.grid, spec, size=8)

    def __len__(self) -> int:
        return len(self.samples)

    def labels_of(self, index: int):
        return read_labels(self.data.labels_path(self.samples[index], self.labels_root), self.grid)

    def draw_augment(self, index: int, epoch: int) -> Augment:
        if not self.augment:
            return Augment()
        rng = np.random.default_rng([self.seed, epoch, index])
        width, height = self.config.input_size
        scale = float(rng.uniform(*self.scale_range))
        extra_w, extra_h = int(round(width * scale)) - width, int(round(height * scale)) - height
        # Horizontal crop anywhere; vertical crop keeps the bottom (the road) as BEVDet does.
        x0 = int(rng.integers(0, extra_w + 1))
        y0 = int(extra_h - rng.integers(0, extra_h // 4 + 1))
        flip_x, flip_y = (bool(v) for v in rng.random(2) < 0.5) if self.flip else (False, False)
        return Augment(scale, (x0, y0), flip_x, flip_y)

    def network_rig(self, sample: Sample) -> CameraRig:
        """The sample's rig in the model's camera order (raises naming a missing camera)."""
        rig = self.data.rig(sample)
        missing = [name for name in self.config.camera_names if name not in rig.names]
        if missing:
            raise EasyOccError(f"sample {sample.token} lacks camera(s) {', '.join(missing)}")
        return CameraRig(rig[name] for name in self.config.camera_names)

    def _load_images(self, sample: Sample, rig: CameraRig, augment: Augment):
        width, height = self.config.input_size
        images = np.empty((len(rig), height, width, 3), np.uint8)
        cameras = []
        for i, camera in enumerate(rig):
            image = read_image(sample.cameras[camera.name].path)
            if image.shape[:2] != (camera.height, camera.width):
                raise EasyOccError(f"{sample.cameras[camera.name].path}: size does not match its calibration")
            if augment.scale == 1.0:
                resize_to_network(image, (width, height), out=images[i])
                cameras.append(camera.resized(width / camera.width, height / camera.height))
            else:
                size = (int(round(width * augment.scale)), int(round(height * augment.scale)))
                images[i], cam = resize_and_crop(image, camera, size, (*augment.crop_xy, width, height))
                cameras.append(cam)
        return images, CameraRig(cameras)

    def tables(self, rig: CameraRig, cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """View-transform tables of a network-resolution rig, through the runtime's view-table cache
        (cache=False: built afresh, for rigs seen once such as scale-augmented ones)."""
        if cache:
            built = self._tables.tables(rig)
        else:
            built = build_view_transform(rig, self._tables.spec.centres(self.grid), self.config.min_depth_m)
        return built.uv_norm, built.weights

    def __getitem__(self, key: int) -> dict:
        index, epoch = key % len(self.samples), key // len(self.samples)
        item = self.item(index, self.draw_augment(index, epoch))
        item["seed"] = int(np.random.default_rng([self.seed, epoch, index, 1]).integers(2**31))
        return item

    def item(self, index: int, augment: Augment) -> dict:
        """Sample `index` under a given augmentation (see the class docstring for the keys). An
        unreadable sample (corrupt image, broken labels) is logged, remembered and replaced by the next
        readable one under the same augmentation, so training goes on (and a resume, whose sampler asks
        for the same keys, does not stop on it either); `substituted_for` is then the index asked for,
        else -1 (the trainer counts these)."""
        for attempt in range(len(self.samples)):
            chosen = (index + attempt) % len(self.samples)
            if chosen in self.unreadable:
                continue
            try:
                item = self._item(chosen, augment)
            except EasyOccError as exc:
                self.unreadable[chosen] = str(exc)
                log.warning("training sample %s skipped: %s", self.samples[chosen].token, exc)
                continue
            item["substituted_for"] = index if chosen != index else -1
            return item
        first = next(iter(self.unreadable.values()), "")
        raise EasyOccError(f"data: none of the {len(self.samples)} samples could be read (first: {first})")

    def _item(self, index: int, augment: Augment) -> dict:
        sample = self.samples[index]
        images, rig = self._load_images(sample, self.network_rig(sample), augment)
        vt_uv, vt_weights = self.tables(rig, cache=augment.scale == 1.0)
        labels = self.labels_of(index)
        semantics = labels.semantics
        mask = labels.mask(self.mask_kind)
        mask = np.ones(semantics.shape, bool) if mask is None else mask
        cells = self.config.cell_shape
        vt_uv = vt_uv.reshape(len(rig), *cells, 2)
        vt_weights = vt_weights.reshape(len(rig), *cells)
        for axis, flipped in ((0, augment.flip_x), (1, augment.flip_y)):
            if flipped:
                semantics, mask = np.flip(semantics, axis), np.flip(mask, axis)
                vt_uv, vt_weights = np.flip(vt_uv, axis + 1), np.flip(vt_weights, axis + 1)
        return {
            "images": torch.from_numpy(images),
            "vt_uv": torch.from_numpy(np.ascontiguousarray(vt_uv).reshape(len(rig), -1, 2)),
            "vt_weights": torch.from_numpy(np.ascontiguousarray(vt_weights).reshape(len(rig), -1)),
            "semantics": torch.from_numpy(semantics.astype(np.int64)),
            "mask": torch.from_numpy(np.ascontiguousarray(mask)),
            "index": index,
            "seed": index,
        }


def labels_fingerprint(dataset: OccDataset) -> str:
    """sha256 over the dataset's label files (relative path, size, modification time), the mask kind and
    the class count: it changes when any label file is rewritten, added or removed."""
    digest = hashlib.sha256(f"{dataset.mask_kind}|{dataset.config.num_classes}|{dataset.grid.shape}".encode())
    for sample in dataset.samples:
        path = dataset.data.labels_path(sample, dataset.labels_root)
        stat = path.stat()
        digest.update(f"\n{path.relative_to(dataset.labels_root)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def class_counts(dataset: OccDataset, cache: bool = True) -> tuple[np.ndarray, str]:
    """int64 [num_classes] labelled voxels per class over every sample of `dataset`, and where they came
    from: "cache" (<labels root>/stats/, keyed by `labels_fingerprint`) or "computed" (read every label
    file, then cached; a labels folder that cannot be written is only logged)."""
    from easyocc.training.losses import count_classes

    fingerprint = labels_fingerprint(dataset) if cache else ""
    path = dataset.labels_root / STATS_FOLDER / f"class_counts_{dataset.mask_kind}_{fingerprint[:20]}.json"
    if cache and path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored.get("fingerprint") == fingerprint and len(stored["class_counts"]) == dataset.config.num_classes:
                log.info("class statistics: cache hit %s", path)
                return np.asarray(stored["class_counts"], np.int64), "cache"
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("class statistics: unreadable cache %s; recounting", path)
    counts = np.zeros(dataset.config.num_classes, np.int64)
    for index in range(len(dataset)):
        labels = dataset.labels_of(index)
        counts += count_classes(labels.semantics, labels.mask(dataset.mask_kind))
    log.info("class statistics: counted %d label files", len(dataset))
    if cache:
        stats = {"fingerprint": fingerprint, "mask": dataset.mask_kind, "frames": len(dataset),
                 "labelled_voxels": int(counts.sum()), "class_counts": counts.tolist()}  # fmt: skip
        try:
            write_json_atomic(path, stats)
        except (OSError, EasyOccError) as exc:  # fileio reports an unwritable folder as EasyOccError
            log.warning("class statistics: cannot cache in %s (%s)", path.parent, getattr(exc, "strerror", None) or exc)
    return counts, "computed"


def shared_class_counts(dataset: OccDataset, device: torch.device | None = None) -> tuple[np.ndarray, str]:
    """`class_counts` on rank 0 only, broadcast to the other ranks when torch.distributed is initialised
    (their source is then "broadcast"); on one process, plain `class_counts`."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return class_counts(dataset)
    counts = torch.zeros(dataset.config.num_classes, dtype=torch.int64, device=device)
    source = "broadcast"
    if dist.get_rank() == 0:
        values, source = class_counts(dataset)
        counts.copy_(torch.from_numpy(values))
    dist.broadcast(counts, src=0)
    return counts.cpu().numpy(), source
