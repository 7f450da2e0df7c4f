"""Evaluation of a model on a dataset split with the Occ3D metric (camera mask and full scene) and
RayIoU (against the dataset's labels, no mask), all in percent, and top-down panels: prediction |
labels | ground truth. Used by `easyocc eval` and the trainer."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from easyocc.runtime.contract.fileio import write_bytes_atomic
from easyocc.runtime.dataset.labels import read_labels
from easyocc.runtime.dataset.metric import OccMetric
from easyocc.runtime.dataset.rayiou import RayMetric, sample_lidar_origins
from easyocc.runtime.sinks import encode_png
from easyocc.runtime.topdown import render_topdown, side_by_side
from easyocc.training.data import OccDataset

MASKS = {"camera": "camera", "full": "none"}


@torch.no_grad()
def predict(model: torch.nn.Module, item: dict, device: torch.device) -> np.ndarray:
    """uint8 [X, Y, Z] argmax classes for one dataset item."""
    logits = model(item["images"][None].to(device), item["vt_uv"][None].to(device), item["vt_weights"][None].to(device))
    return logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()


def evaluate(
    model, dataset: OccDataset, device, extra_targets: dict | None = None, vis_dir=None, progress=False, rays=True
):
    """{"camera": metric results, "full": ..., "rays": RayIoU results} against the dataset's labels
    (percent); with `extra_targets` {name: labels_root}, also "<name>_camera"/"<name>_full" against
    those label sets. `rays=False` skips the ray casting (its scores are then NaN)."""
    was_training = model.training
    model.eval()
    targets = {"": None, **{f"{k}_": Path(v) for k, v in (extra_targets or {}).items()}}
    metrics = {prefix + name: OccMetric() for prefix in targets for name in MASKS}
    ray_metric = RayMetric(dataset.grid)
    seconds = 0.0
    indices = range(len(dataset))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="eval", dynamic_ncols=True, mininterval=5)
    unreadable = []  # frames whose images or labels could not be read: not scored, counted
    for index in indices:
        item = dataset[index]
        if int(item.get("substituted_for", -1)) >= 0:  # the dataset replaced it by another sample
            unreadable.append(dataset.samples[index].token)
            continue
        start = time.perf_counter()
        prediction = predict(model, item, device)
        seconds += time.perf_counter() - start
        sample = dataset.samples[index]
        panels = [(prediction, None)] if vis_dir is not None else []  # (semantics, observed mask)
        for prefix, root in targets.items():
            path = dataset.data.labels_path(sample, root) if root is not None else None
            labels = dataset.labels_of(index) if path is None else read_labels(path, dataset.grid)
            for name, mask in MASKS.items():
                metrics[prefix + name].update(prediction, labels.semantics, labels.mask(mask))
            if rays and not prefix:
                ray_metric.update(prediction, labels.semantics, sample_lidar_origins(dataset.data, sample))
            if vis_dir is not None:
                panels.append((labels.semantics, labels.mask_camera))
        if vis_dir is not None:
            titles = ["prediction", "labels"] + [prefix.rstrip("_") for prefix in targets if prefix]
            path = Path(vis_dir) / sample.scene_name / f"{sample.index:03d}_{sample.token}.png"
            write_panels(path, panels, titles, dataset.grid)
    model.train(was_training)
    results = {name: metric.results() for name, metric in metrics.items()}
    results["rays"] = ray_metric.results()
    results["seconds_per_frame"] = seconds / max(len(dataset) - len(unreadable), 1)
    results["unreadable_frames"] = unreadable
    results["tables"] = {name: metric.table(f"{name} ({metric.frames} frames)") for name, metric in metrics.items()}
    if rays:
        results["tables"]["rayiou"] = ray_metric.table(f"RayIoU ({ray_metric.frames} frames, {ray_metric.rays} rays)")
    return results


def write_panels(path: Path, panels: list[tuple], titles: list[str], grid, scale: int = 2) -> None:
    """One PNG of titled top-down views (the runtime's `render_topdown`), one per (semantics, observed
    mask or None) panel, side by side."""
    images = [render_topdown(sem, grid, mask, scale, title) for (sem, mask), title in zip(panels, titles)]
    write_bytes_atomic(path, encode_png(side_by_side(images)))
