"""EasyOcc's central comparison on the synthetic world: the same model trained on
(a) ground-truth labels, (b) the default pseudo-labels, (c) single-frame pseudo-labels,
each evaluated against ground truth on held-out scenes never seen in training.

    .venv/bin/python benchmarks/bench_easyocc_comparison.py --data runs/synth_demo \\
        --out runs/comparison --config training/configs/demo.yaml optim.iters=300

Every step is one of the project's CLIs (`easyocc synth | labels | train | eval`), run as a
subprocess, so this measures exactly what a user runs. Pseudo-labels are built only for the
training scenes. Writes <out>/comparison.json and <out>/comparison.md (the README table).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from easyocc.runtime.dataset.nuscenes import NuScenesDataset
from easyocc.training.config import load_config
from easyocc.training.data import split_scenes

VARIANTS = {
    "a": "ground-truth labels",
    "b": "pseudo-labels, default (multi-frame)",
    "c": "pseudo-labels, single frame (--frames 0)",
}


def easyocc(*args: str) -> float:
    """Run `easyocc ARGS`, streaming its output; returns wall seconds; raises on failure."""
    command = [sys.executable, "-m", "easyocc", *args]
    print("$ easyocc " + " ".join(shlex.quote(a) for a in args), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="synthetic dataset (generated here when absent)")
    parser.add_argument("--out", default="runs/comparison")
    parser.add_argument("--config", default="training/configs/demo.yaml", help="training config for all three")
    parser.add_argument(
        "--synth-args",
        default="--scenes 12 --frames 20 --size 352x128 --seed 0",
        help="`easyocc synth` options when --data does not exist yet",
    )
    parser.add_argument(
        "--labels-args",
        default="--segmenter simulated-low --depth simulated-low",
        help="`easyocc labels` provider options for (b) and (c); the default is the synthetic world's stand-in "
        "for Grounded-SAM + Metric3Dv2 (docs/readme/pseudo.md)",
    )
    parser.add_argument("--variants", default="a,b,c")
    parser.add_argument(
        "--reuse-labels", action="store_true", help="use pseudo-label folders that exist as they are (no rebuild)"
    )
    parser.add_argument(
        "--reuse-runs", action="store_true", help="keep a variant whose run already has heldout_eval.json"
    )
    parser.add_argument("--eval-frames", type=int, default=0, help="held-out frames scored (0 = all)")
    parser.add_argument("overrides", nargs="*", help="training overrides for all three, e.g. optim.iters=300")
    args = parser.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    timings = {}
    if not (data / "synth_config.json").is_file() or not any(data.glob("v1.0-*/sample.json")):
        timings["synth_s"] = easyocc("synth", "--out", str(data), "--quiet", *shlex.split(args.synth_args))
    config = load_config(args.config, [f"data.root={data}", *args.overrides])
    train_scenes, val_scenes = split_scenes(NuScenesDataset(data).scene_names, config.data.val_scenes)
    if not val_scenes:
        raise SystemExit("the comparison needs held-out scenes: set data.val_scenes >= 1")
    scene_args = [a for s in train_scenes for a in ("--scene", s)]
    labels = {"a": data, "b": out / "pseudo_default", "c": out / "pseudo_single"}
    extra = shlex.split(args.labels_args)
    variants = [v for v in args.variants.split(",") if v]
    for name, frames in (("b", []), ("c", ["--frames", "0"])):
        if name in variants and not (args.reuse_labels and (labels[name] / "pseudo_labels.json").is_file()):
            timings[f"labels_{name}_s"] = easyocc(
                "labels", "--data", str(data), "--out", str(labels[name]), "--quiet", *scene_args, *frames, *extra
            )
    rows = {}
    for name in variants:
        run = out / f"train_{name}"
        result_path = run / "heldout_eval.json"
        if not (args.reuse_runs and result_path.is_file()):
            easyocc(
                "train", "--config", args.config, "-q", f"data.root={data}", f"data.labels={labels[name]}",
                f"data.gt={data}", f"out_dir={run}", "eval_every=0", *args.overrides,
            )  # fmt: skip
            easyocc(
                "eval", "--model", str(run / "model.pt"), "--data", str(data), "--labels", str(data),
                "--split", "val", "--frames", str(args.eval_frames), "--json", str(result_path),
            )  # fmt: skip
        # training-loop seconds from the run's own log (excludes start-up and evaluation)
        with open(run / "log.csv", newline="") as handle:
            train_s = float(list(csv.DictReader(handle))[-1]["elapsed_s"])
        result = json.loads(result_path.read_text())
        rows[name] = {
            "labels": VARIANTS[name],
            "camera": {k: result["camera"][k] for k in ("miou", "miou_star", "geometry_iou")},
            "full": {k: result["full"][k] for k in ("miou", "miou_star", "geometry_iou")},
            "train_s": train_s,
            "labels_s": timings.get(f"labels_{name}_s", 0.0),
        }
    settings = {
        "config": args.config, "overrides": args.overrides, "train_scenes": train_scenes, "heldout_scenes": val_scenes,
        "iters": config.optim.iters, "batch": config.optim.batch_size * config.optim.grad_accum,
        "input_size": list(config.model.input_size), "labels_args": args.labels_args, **timings,
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n")
    table = markdown(rows, settings)
    (out / "comparison.md").write_text(table + "\n")
    print(table)
    return 0


def markdown(rows: dict, settings: dict) -> str:
    lines = [
        "| run | training labels | mIoU (cam) | mIoU* (cam) | geom. IoU (cam) | mIoU (full) | train time |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in rows.items():
        cam, full = row["camera"], row["full"]
        lines.append(
            f"| ({name}) | {row['labels']} | {cam['miou']:.2f} | {cam['miou_star']:.2f} | "
            f"{cam['geometry_iou']:.2f} | {full['miou']:.2f} | {row['train_s'] / 60:.1f} min |"
        )
    if "a" in rows and "b" in rows and rows["a"]["camera"]["miou"] > 0:
        ratio = rows["b"]["camera"]["miou"] / rows["a"]["camera"]["miou"]
        lines.append(f"\n(b) reaches {100 * ratio:.0f} % of (a)'s camera-mask mIoU.")
    lines.append(
        f"\nHeld-out scenes {', '.join(settings['heldout_scenes'])}; {settings['iters']} steps of batch "
        f"{settings['batch']} at {settings['input_size'][0]}x{settings['input_size'][1]} per camera; "
        f"config {settings['config']} {' '.join(settings['overrides'])}; pseudo-labels by "
        f"`easyocc labels {settings['labels_args']}` on the training scenes only ((c) adds `--frames 0`)."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
