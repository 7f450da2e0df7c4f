"""`easyocc eval`: score a checkpoint with the Occ3D metric (camera mask and full scene, mIoU and
mIoU*), write JSON, and optionally top-down images: prediction | labels | ground truth."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from runtime.classes import FREE, PALETTE
from runtime.errors import EasyOccError
from runtime.fileio import write_bytes_atomic, write_json_atomic
from runtime.labels import read_labels
from runtime.metric import OccMetric
from runtime.nuscenes import NuScenesDataset
from training.data import OccDataset, split_scenes
from training.model import load_checkpoint, read_checkpoint

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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="easyocc eval", description=__doc__)
    parser.add_argument("--checkpoint", required=True, help="checkpoint (.pt) from `easyocc train`")
    parser.add_argument("--data", required=True, help="nuScenes-layout dataset folder")
    parser.add_argument("--labels", default="", help="labels folder to score against (default: the dataset's gts)")
    parser.add_argument("--gt", default="", help="ground truth, also scored when it differs from --labels")
    parser.add_argument("--scenes", default="", help="comma-separated scene names (default: see --split)")
    parser.add_argument(
        "--split",
        choices=("val", "train", "all"),
        default="val",
        help="with the checkpoint's held-out count: val = held-out scenes (default)",
    )
    parser.add_argument("--max-frames", type=int, default=0, help="score at most this many frames (0 = all)")
    parser.add_argument("--out", default="", help="JSON results (default: beside the checkpoint)")
    parser.add_argument("--vis", default="", help="folder for top-down PNGs: prediction | labels | gt")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, config = load_checkpoint(args.checkpoint)
    device = torch.device(args.device)
    model.to(device)
    if args.scenes:
        scenes = [s for s in args.scenes.split(",") if s]
    else:
        held_out = int(read_checkpoint(args.checkpoint).get("train_config", {}).get("data", {}).get("val_scenes", 0))
        names = NuScenesDataset(args.data).scene_names
        train, val = split_scenes(names, held_out) if held_out < len(names) else (names, [])
        scenes = {"val": val or names, "train": train, "all": names}[args.split]
    labels = args.labels or args.data
    dataset = OccDataset(args.data, labels, config, scenes, max_frames=args.max_frames)
    extra = {"gt": args.gt} if args.gt and Path(args.gt).resolve() != Path(labels).resolve() else None
    results = evaluate(model, dataset, device, extra, args.vis or None, progress=True)
    for table in results.pop("tables").values():
        print(table, end="\n\n")
    results.update(checkpoint=str(args.checkpoint), data=str(args.data), labels=str(labels), scenes=list(scenes))
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".eval.json")
    write_json_atomic(out, results)
    print(f"results: {out}" + (f"; images: {args.vis}" if args.vis else ""))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
