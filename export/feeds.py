"""Model inputs ("feeds") for parity checks and INT8 calibration: synthetic frames and real dataset frames.

A feed is {images: uint8 [N_cam, H, W, 3], vt_uv: float32 [N_cam, N_cell, 2], vt_weights: float32
[N_cam, N_cell]}, built with the runtime's own preprocessing (`resize_to_network`) and view-transform
tables (`view_transform_feed`), so what is checked and calibrated is what the runtime will feed.
Needs numpy and OpenCV only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from easyocc.calibration import CameraRig
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import INPUT_IMAGES, Manifest
from easyocc.runtime.contract.preprocess import read_image, resize_to_network
from easyocc.runtime.contract.view_feed import manifest_cache, view_transform_feed


def synthetic_images(manifest: Manifest, seed: int) -> np.ndarray:
    """uint8 [N_cam, H, W, 3]: smooth colour gradients plus blocks and noise, reproducible from `seed`.

    Structured rather than pure noise, so that features and classes vary across the image the way
    they do on camera frames, while covering the full 0-255 range.
    """
    rng = np.random.default_rng(seed)
    width, height = manifest.input_size
    count = len(manifest.camera_names)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    images = np.empty((count, height, width, 3), dtype=np.uint8)
    for cam in range(count):
        phase = rng.uniform(0, 2 * np.pi, size=3)
        freq = rng.uniform(0.005, 0.05, size=(3, 2))
        base = np.stack([127.5 + 120 * np.sin(freq[c, 0] * xx + freq[c, 1] * yy + phase[c]) for c in range(3)], axis=-1)
        for _ in range(4):
            x0, y0 = rng.integers(0, width // 2), rng.integers(0, height // 2)
            base[y0 : y0 + height // 4, x0 : x0 + width // 4] = rng.uniform(0, 255, size=3)
        base += rng.normal(0, 12, size=base.shape)
        images[cam] = np.clip(base, 0, 255).astype(np.uint8)
    return images


def synthetic_feeds(manifest: Manifest, rig: CameraRig, count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`count` feeds with synthetic images and the rig's real view-transform tables."""
    tables = view_transform_feed(manifest, rig)
    return [{INPUT_IMAGES: synthetic_images(manifest, seed + i), **tables} for i in range(count)]


def dataset_feeds(
    manifest: Manifest, root, count: int | None = None, stride: int = 1, start: int = 0
) -> Iterator[dict]:
    """Feeds from a nuScenes-layout dataset (real or synthetic world), every `stride`-th key frame from
    key frame `start` on (so calibration and evaluation frames can be kept apart).

    Images are read, resized to the network size as the runtime does and stacked in the model's
    camera order; tables come from each sample's own rig (computed once per distinct rig).
    A sample lacking one of the model's cameras is skipped.
    """
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset

    dataset = NuScenesDataset(root)
    samples = dataset.samples()[max(0, int(start)) :: max(1, int(stride))]
    if not samples:
        raise EasyOccError(f"dataset {root}: no samples")
    produced, tables = 0, manifest_cache(manifest)
    for sample in samples:
        if count is not None and produced >= count:
            return
        if any(name not in sample.cameras for name in manifest.camera_names):
            continue
        feed = view_transform_feed(manifest, _rig_in_order(dataset.rig(sample), manifest.camera_names), cache=tables)
        images = np.stack(
            [
                resize_to_network(read_image(sample.cameras[name].path), tuple(manifest.input_size))
                for name in manifest.camera_names
            ]
        )
        produced += 1
        yield {INPUT_IMAGES: images, **feed}
    if produced == 0:
        raise EasyOccError(f"dataset {root}: no sample has all of the model's cameras {list(manifest.camera_names)}")


def _rig_in_order(rig: CameraRig, names) -> CameraRig:
    return CameraRig([rig[name] for name in names])
