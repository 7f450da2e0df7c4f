"""`easyocc eval`: score a checkpoint, or any model's saved predictions (--predictions), with the Occ3D
metric (camera mask and full scene, mIoU and mIoU*) and RayIoU, all in percent; write JSON, and
optionally top-down images: prediction | labels | ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.runtime.dataset.nuscenes import NuScenesDataset
from easyocc.runtime.dataset.splits import EVAL_CHOICES, scenes_for_eval


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="easyocc eval", description=__doc__)
    parser.add_argument("--checkpoint", default="", help="checkpoint (.pt) from `easyocc train`")
    parser.add_argument(
        "--predictions", default="", help="score saved predictions DIR/<scene>/<sample_token>/labels.npz instead"
    )
    parser.add_argument("--json", default="", help="JSON results (same as --out)")
    parser.add_argument("--data", required=True, help="nuScenes-layout dataset folder")
    parser.add_argument("--labels", default="", help="labels folder to score against (default: the dataset's gts)")
    parser.add_argument("--gt", default="", help="ground truth, also scored when it differs from --labels")
    parser.add_argument("--scenes", default="", help="comma-separated scene names (default: see --split)")
    parser.add_argument(
        "--split",
        choices=EVAL_CHOICES,
        default="val",
        help="val (default): the checkpoint's held-out scenes, on nuScenes the official val (mini_val) list; "
        "train: its training scenes; all; or an official list",
    )
    parser.add_argument("--max-frames", type=int, default=0, help="score at most this many frames (0 = all)")
    parser.add_argument("--out", default="", help="JSON results (default: beside the checkpoint)")
    parser.add_argument("--vis", default="", help="folder for top-down PNGs: prediction | labels | gt")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if bool(args.checkpoint) == bool(args.predictions):
        parser.error("give either --checkpoint or --predictions")
    if args.predictions:
        return _score_predictions(args)
    import torch

    from easyocc.runtime.dataset.scoring import headline
    from easyocc.training.data import OccDataset
    from easyocc.training.evaluate import evaluate
    from easyocc.training.model import load_checkpoint, read_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    model, config = load_checkpoint(args.checkpoint)
    device = torch.device(args.device)
    model.to(device)
    if args.scenes:
        scenes = [s for s in args.scenes.split(",") if s]
    else:
        data_config = read_checkpoint(args.checkpoint).get("train_config", {}).get("data", {})
        scenes = scenes_for_eval(NuScenesDataset(args.data).scene_names, args.split, data_config)
    labels = args.labels or args.data
    dataset = OccDataset(args.data, labels, config, scenes, max_frames=args.max_frames)
    extra = {"gt": args.gt} if args.gt and Path(args.gt).resolve() != Path(labels).resolve() else None
    results = evaluate(model, dataset, device, extra, args.vis or None, progress=True)
    for table in results.pop("tables").values():
        print(table, end="\n\n")
    results = {**headline(results["camera"], results["rays"]), "units": "percent", **results}
    results.update(checkpoint=str(args.checkpoint), data=str(args.data), labels=str(labels), scenes=list(scenes))
    out = Path(args.json or args.out) if (args.json or args.out) else Path(args.checkpoint).with_suffix(".eval.json")
    write_json_atomic(out, results)
    print(f"results: {out}" + (f"; images: {args.vis}" if args.vis else ""))
    return 0


def _score_predictions(args) -> int:
    """Torch-free: saved predictions against the dataset's (or --labels') ground truth."""
    from easyocc.runtime.dataset.scoring import score_predictions

    scenes = [s for s in args.scenes.split(",") if s] or None
    results = score_predictions(args.predictions, args.data, args.labels or None, scenes)
    for table in results.pop("tables").values():
        print(table, end="\n\n")
    print(", ".join(f"{key} {results[key]:.2f}" for key in ("miou", "miou_star", "geometry_iou", "rayiou")))
    results.update(predictions=str(args.predictions), data=str(args.data), labels=str(args.labels or args.data))
    out = args.json or args.out
    if out:
        write_json_atomic(Path(out), results)
        print(f"results: {out}")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
