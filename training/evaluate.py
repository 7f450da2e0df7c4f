"""Evaluation of a model on a dataset split with the Occ3D metric (camera mask and full scene),
and top-down panels: prediction | labels | ground truth. Used by `easyocc eval` and the trainer."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch
from easyocc.runtime.contract.classes import FREE, PALETTE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_bytes_atomic
from easyocc.runtime.dataset.labels import read_labels
from easyocc.runtime.dataset.metric import OccMetric
from easyocc.training.data import OccDataset

MASKS = {"camera": "camera", "full": "none"}


@torch.no_grad()
def predict(model: torch.nn.Module, item: dict, device: torch.device) -> np.ndarray:
    """uint8 [X, Y, Z] argmax classes for one dataset item."""
    logits = model(item["images"][None].to(device), item["vt_uv"][None].to(device), item["vt_weights"][None].to(device))
    return logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()


def evaluate(model, dataset: OccDataset, device, extra_targets: dict | None = None, vis_dir=None, progress=False):
    """{"camera": metric results, "full": ...} against the dataset's labels; with `extra_targets`
    {name: labels_root}, also "<name>_camera"/"<name>_full" against those label sets."""
    was_training = model.training
    model.eval()
    targets = {"": None, **{f"{k}_": Path(v) for k, v in (extra_targets or {}).items()}}
    metrics = {prefix + name: OccMetric() for prefix in targets for name in MASKS}
    seconds = 0.0
    indices = range(len(dataset))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="eval", dynamic_ncols=True, mininterval=5)
    for index in indices:
        item = dataset[index]
        start = time.perf_counter()
        prediction = predict(model, item, device)
        seconds += time.perf_counter() - start
        sample = dataset.samples[index]
        panels = [top_down(prediction)] if vis_dir is not None else []
        for prefix, root in targets.items():
            path = dataset.data.labels_path(sample, root) if root is not None else None
            labels = dataset.labels_of(index) if path is None else read_labels(path, dataset.grid)
            for name, mask in MASKS.items():
                metrics[prefix + name].update(prediction, labels.semantics, labels.mask(mask))
            if vis_dir is not None:
                panels.append(top_down(labels.semantics, labels.mask_camera))
        if vis_dir is not None:
            titles = ["prediction", "labels"] + [prefix.rstrip("_") for prefix in targets if prefix]
            write_panels(Path(vis_dir) / sample.scene_name / f"{sample.index:03d}_{sample.token}.png", panels, titles)
    model.train(was_training)
    results = {name: metric.results() for name, metric in metrics.items()}
    results["seconds_per_frame"] = seconds / max(len(dataset), 1)
    results["tables"] = {name: metric.table(f"{name} ({metric.frames} frames)") for name, metric in metrics.items()}
    return results


def top_down(semantics: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """RGB [X, Y] image of the highest non-free class per column, x forward up and y left on the
    left; black where a column is free, dark grey where the mask marks nothing observed."""
    occupied = semantics != FREE
    z = semantics.shape[2]
    top_index = z - 1 - np.argmax(occupied[:, :, ::-1], axis=2)
    top = np.take_along_axis(semantics, top_index[:, :, None], axis=2)[:, :, 0]
    image = np.where(occupied.any(axis=2)[:, :, None], PALETTE[top], 0).astype(np.uint8)
    if mask is not None:
        image[~mask.astype(bool).any(axis=2)] = (48, 48, 48)
    return np.ascontiguousarray(image[::-1, ::-1])  # row 0 = farthest forward, column 0 = farthest left


def write_panels(path: Path, panels: list[np.ndarray], titles: list[str], scale: int = 2) -> None:
    gap = np.full((panels[0].shape[0] * scale + 24, 4, 3), 255, np.uint8)
    tiles = []
    for panel, title in zip(panels, titles):
        tile = cv2.resize(panel, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        tile = np.concatenate([np.zeros((24, tile.shape[1], 3), np.uint8), tile], axis=0)
        cv2.putText(tile, title, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles += [tile, gap]
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.concatenate(tiles[:-1], axis=1), cv2.COLOR_RGB2BGR))
    if not ok:
        raise EasyOccError(f"cannot encode {path}")
    write_bytes_atomic(path, encoded.tobytes())
