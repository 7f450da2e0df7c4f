"""`easyocc eval`: score a checkpoint, or any model's saved predictions (--predictions), with the Occ3D
metric (camera mask and full scene, mIoU and mIoU*) and RayIoU, all in percent; write JSON, and
optionally top-down images: prediction | labels | ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from easyocc.commands import options
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.runtime.dataset.splits import EVAL_CHOICES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc eval", description=__doc__)
    options.add_model(parser, help="checkpoint (.pt) from `easyocc train`")
    options.add_deprecated(parser, "--checkpoint", "--model", "model")
    parser.add_argument(
        "--predictions", default="", help="score saved predictions DIR/<scene>/<sample_token>/labels.npz instead"
    )
    options.add_json(parser, help="JSON results (default: beside the checkpoint)")
    options.add_deprecated(parser, "--out", "--json", "json")
    options.add_data(parser, required=True)
    parser.add_argument("--labels", default="", help="labels folder to score against (default: the dataset's gts)")
    parser.add_argument("--gt", default="", help="ground truth, also scored when it differs from --labels")
    options.add_scene(parser, help="scene to score (repeatable; default: see --split)")
    options.add_deprecated(parser, "--scenes", "--scene (repeatable)", "scenes_csv")
    parser.add_argument(
        "--split",
        choices=EVAL_CHOICES,
        default="val",
        help="val (default): the checkpoint's held-out scenes, on nuScenes the official val (mini_val) list; "
        "train: its training scenes; all; or an official list",
    )
    options.add_frames(parser, help="score at most this many frames (default: all)", default=0)
    options.add_deprecated(parser, "--max-frames", "--frames", "frames", type=int)
    parser.add_argument("--vis", default="", help="folder for top-down PNGs: prediction | labels | gt")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    options.add_quiet(parser)
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    scenes = list(args.scene or []) + [s for s in (getattr(args, "scenes_csv", None) or "").split(",") if s]
    if bool(args.model) == bool(args.predictions):
        raise EasyOccError("eval: give either --model CHECKPOINT.pt or --predictions DIR")
    options.check_outputs(json=args.json)
    if args.predictions:
        return _score_predictions(args, scenes)
    from easyocc.training.eval_checkpoint import evaluate_checkpoint

    results, tables = evaluate_checkpoint(
        args.model, args.data, args.labels, args.gt, scenes, args.split, args.frames, args.vis, args.device,
        args.threads, args.json, progress=not args.quiet,
    )  # fmt: skip
    for table in tables:
        print(table, end="\n\n")
    print(f"results: {results['json']}" + (f"; images: {args.vis}" if args.vis else ""))
    return 0


def _score_predictions(args, scenes: list[str]) -> int:
    """Torch-free: saved predictions against the dataset's (or --labels') ground truth."""
    from easyocc.runtime.dataset.scoring import score_predictions

    results = score_predictions(args.predictions, args.data, args.labels or None, scenes or None)
    for table in results.pop("tables").values():
        print(table, end="\n\n")
    print(", ".join(f"{key} {results[key]:.2f}" for key in ("miou", "miou_star", "geometry_iou", "rayiou")))
    results.update(predictions=str(args.predictions), data=str(args.data), labels=str(args.labels or args.data))
    if args.json:
        write_json_atomic(Path(args.json), results)
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    import sys

    from easyocc.cli import run_command

    raise SystemExit(run_command("eval", main, sys.argv[1:]))
