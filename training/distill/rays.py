"""Camera rays for rendering distillation, and the image segments they fall in.

`RayDataset` wraps the training `OccDataset`: every item gains the rays of its (augmented) rig, one
every `stride` pixels of each network-resolution image, mirrored with the labels when the BEV flip
draws so, and each ray's segment id. Segments stand in for a vision foundation model's masks: on the
synthetic world they are its instance images (objects) and semantic images (stuff, one segment per
class and camera); without those files (real data: Grounded-SAM masks are not wired in) they are -1
and the semantic consistency has nothing to compare.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from easyocc.calibration import CameraRig
from easyocc.runtime.contract.classes import FREE
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.dataset.nuscenes import aux_path

STUFF_OFFSET = 1 << 20  # segment ids of stuff: STUFF_OFFSET * (camera + 1) + class


def pixel_centres(width: int, height: int, stride: int) -> np.ndarray:
    """uv [P, 2] (pixels, float64) of one pixel every `stride` pixels, in row-major order."""
    us = np.arange(stride // 2, width, stride, dtype=np.float64)
    vs = np.arange(stride // 2, height, stride, dtype=np.float64)
    u, v = np.meshgrid(us, vs)
    return np.stack([u.ravel(), v.ravel()], axis=1)


def camera_rays(rig: CameraRig, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origins [N_cam * P, 3], directions [N_cam * P, 3] unit, uv [P, 2]) in the ego frame, metres;
    all cameras share the image size."""
    uv = pixel_centres(rig[0].width, rig[0].height, stride)
    origins = np.concatenate([np.repeat(camera.centre_ego[None], len(uv), axis=0) for camera in rig])
    directions = np.concatenate([camera.rays_ego(uv) for camera in rig])
    return origins, directions, uv


def mirror(origins: np.ndarray, directions: np.ndarray, grid: GridSpec, flip_x: bool, flip_y: bool):
    """Rays of the BEV-flipped sample: x -> lower + upper - x (and y), as the labels are flipped."""
    origins, directions = origins.copy(), directions.copy()
    for axis, flipped in ((0, flip_x), (1, flip_y)):
        if flipped:
            origins[:, axis] = grid.lower[axis] + grid.upper[axis] - origins[:, axis]
            directions[:, axis] = -directions[:, axis]
    return origins, directions


def ray_segments(dataset_root, sample, original: CameraRig, network: CameraRig, uv: np.ndarray) -> np.ndarray:
    """int64 [N_cam * P] segment of each ray: instance id, else a per-camera stuff id of its class;
    -1 for sky, pixels outside the original image, and cameras without instance/semantic images."""
    segments = []
    for index, (camera, net) in enumerate(zip(original, network)):
        image_path = sample.cameras[camera.name].path
        instance_path = aux_path(dataset_root, image_path, "instance")
        semantic_path = aux_path(dataset_root, image_path, "semantic")
        ids = np.full(len(uv), -1, np.int64)
        if instance_path.is_file() and semantic_path.is_file():
            instance = cv2.imread(str(instance_path), cv2.IMREAD_UNCHANGED).astype(np.int64)
            semantic = cv2.imread(str(semantic_path), cv2.IMREAD_UNCHANGED).astype(np.int64)
            uv0, _, inside = camera.project(net.unproject(uv, np.full(len(uv), 10.0)))
            col = np.clip(np.round(uv0[:, 0]).astype(np.int64), 0, camera.width - 1)
            row = np.clip(np.round(uv0[:, 1]).astype(np.int64), 0, camera.height - 1)
            inst, cls = instance[row, col], semantic[row, col]
            ids = np.where(inst > 0, inst, STUFF_OFFSET * (index + 1) + cls)
            ids[(cls == FREE) | ~inside] = -1
        segments.append(ids)
    return np.concatenate(segments)


def _part_of(train_set, key: int):
    """(OccDataset, index, augment) that item `key` of an OccDataset or a MixedDataset was drawn with."""
    if hasattr(train_set, "parts"):  # training.pretrain.data.MixedDataset: parts laid end to end
        slot, epoch = key % len(train_set), key // len(train_set)
        part, copy = train_set._slots[slot]
        dataset, _, repeats = train_set.parts[part]
        index = train_set._local[slot]
        return dataset, index, dataset.draw_augment(index, epoch * repeats + copy)
    index, epoch = key % len(train_set.samples), key // len(train_set.samples)
    return train_set, index, train_set.draw_augment(index, epoch)


class RayDataset(torch.utils.data.Dataset):
    """A training set (OccDataset or MixedDataset) whose items also hold ray_origins float32 [R, 3],
    ray_dirs float32 [R, 3] (ego frame of the possibly flipped sample) and ray_segments int64 [R]."""

    def __init__(self, base, stride: int):
        self.base, self.stride = base, int(stride)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int) -> dict:
        item = self.base[key]
        dataset, index, augment = _part_of(self.base, key)
        sample = dataset.samples[index]
        original = dataset.network_rig(sample)
        width, height = dataset.config.input_size
        if augment.scale == 1.0:
            network = CameraRig(c.resized(width / c.width, height / c.height) for c in original)
        else:
            size = (int(round(width * augment.scale)), int(round(height * augment.scale)))
            crop = (*augment.crop_xy, width, height)
            network = CameraRig(c.resized(size[0] / c.width, size[1] / c.height, crop=crop) for c in original)
        origins, directions, uv = camera_rays(network, self.stride)
        origins, directions = mirror(origins, directions, dataset.grid, augment.flip_x, augment.flip_y)
        segments = ray_segments(dataset.data.root, sample, original, network, uv)
        item["ray_origins"] = torch.from_numpy(origins.astype(np.float32))
        item["ray_dirs"] = torch.from_numpy(directions.astype(np.float32))
        item["ray_segments"] = torch.from_numpy(segments)
        return item
