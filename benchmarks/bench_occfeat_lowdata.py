"""OccFeat's low-data claim on the synthetic world: fine-tune on 10 % and 100 % of the training scenes'
labels from (a) scratch, (b) occupancy-only pretraining, (c) occupancy + feature distillation.

    nice -n 10 .venv/bin/python benchmarks/bench_occfeat_lowdata.py --out runs/occfeat_lowdata \
        --json docs/results/occfeat_lowdata.json

A CPU-sized experiment: the tiny config (training/configs/tiny.yaml: 6 x 64 x 128 images, 1.6 m
voxels), a world of 12 scenes x 5 key frames (the last 2 scenes held out), few steps. Pretraining
uses the lidar of all 10 training scenes and no labels (one pretraining run per variant, seed 0);
fine-tuning runs use the labels of the first 1 (10 %) or all 10 (100 %) training scenes, 3 seeds.
The feature teacher is the STAND-IN (no DINOv2 weights exist here): a small CNN trained on the 2-D
semantics of a SEPARATE synthetic world (other seed, no scene shared with this experiment), frozen.
Scores on the held-out scenes: camera-mask mIoU and geometry IoU, RayIoU where the evaluation gives it.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.runtime.contract.grid import GridSpec
from easyocc.training.config import load_config
from easyocc.training.pretrain.teachers import train_standin
from easyocc.training.synth import SynthConfig, generate_dataset
from easyocc.training.trainer import train

PROJECT = Path(__file__).resolve().parents[1]
TINY = PROJECT / "training" / "configs" / "tiny.yaml"
GRID = GridSpec((-40.0, -40.0, -1.0), (40.0, 40.0, 5.4), 1.6)  # tiny.yaml's grid
VARIANTS = ("scratch", "occupancy", "occupancy+features(stand-in)")


def world(out: Path, scenes: int, frames: int, seed: int) -> str:
    config = SynthConfig(
        scenes=scenes, frames=frames, image_size=(128, 64), grid=GRID, seed=seed,
        lidar_beams=16, lidar_azimuth_steps=360, subsamples=1,
    )  # fmt: skip
    return str(generate_dataset(out, config, progress=False, threads=1))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/occfeat_lowdata", help="work folder (worlds, runs)")
    parser.add_argument("--json", default="", help="results JSON")
    parser.add_argument("--pretrain-steps", type=int, default=150)
    parser.add_argument("--finetune-steps", type=int, default=80)
    parser.add_argument("--teacher-steps", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    out = Path(args.out)
    started, wall = cpu_seconds(), time.time()
    data = world(out / "world", 12, 5, seed=0)
    teacher_world = world(out / "teacher_world", 4, 3, seed=1)
    standin = out / "standin.pt"
    teacher = train_standin(teacher_world, [f"synth-{i:04d}" for i in range(4)], standin, (128, 64), args.teacher_steps)
    base = [f"data.root={data}", "data.val_scenes=2", "log_every=10", "ckpt_every=1000"]
    pre_runs = {
        "occupancy": ["pretrain.feature_weight=0.0"],
        "occupancy+features(stand-in)": ["pretrain.feature_weight=1.0", f"pretrain.teacher=standin:{standin}"],
    }
    pretrained = {}
    for name, extra in pre_runs.items():
        folder = out / "pre" / name.split("(")[0].replace("+", "_")
        overrides = base + extra + [f"out_dir={folder}", "pretrain.enabled=true", f"optim.iters={args.pretrain_steps}",
                                    f"pretrain.targets_dir={out / 'targets'}", "optim.warmup_iters=10"]  # fmt: skip
        result = train(load_config(TINY, overrides), progress=False)
        pretrained[name] = {"checkpoint": str(folder / "model.pt"), "final_loss": result["loss"]}
    runs = []
    for fraction in (0.1, 1.0):
        for variant in VARIANTS:
            for seed in range(args.seeds):
                folder = out / "ft" / f"f{fraction}-{variant.split('(')[0].replace('+', '_')}-s{seed}"
                overrides = base + [f"out_dir={folder}", f"seed={seed}", f"pretrain.label_fraction={fraction}",
                                    f"optim.iters={args.finetune_steps}", "optim.warmup_iters=10"]  # fmt: skip
                if variant != "scratch":
                    overrides.append(f"init.from={pretrained[variant]['checkpoint']}")
                metrics = train(load_config(TINY, overrides), progress=False)["metrics"]
                row = {
                    "fraction": fraction, "variant": variant, "seed": seed,
                    "miou": metrics["camera"]["miou"], "geometry_iou": metrics["camera"]["geometry_iou"],
                    "rayiou": metrics.get("rayiou"),
                }  # fmt: skip
                runs.append(row)
                print(row, flush=True)
                if args.json:  # after every run, so an interrupted experiment keeps what it measured
                    write_json_atomic(args.json, {"complete": False, "pretraining": pretrained, "runs": runs})
    summary = []
    for fraction in (0.1, 1.0):
        for variant in VARIANTS:
            rows = [r for r in runs if r["fraction"] == fraction and r["variant"] == variant]
            entry = {"fraction": fraction, "variant": variant, "seeds": len(rows)}
            for key in ("miou", "geometry_iou", "rayiou"):
                values = [r[key] for r in rows if r[key] is not None]
                if values:
                    entry[key] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                                  "min": min(values), "max": max(values)}  # fmt: skip
            summary.append(entry)
    report = {
        "complete": True,
        "units": "percent",
        "setup": {
            "config": "training/configs/tiny.yaml", "world": "12 scenes x 5 key frames, 128x64, seed 0; last 2 held out",
            "pretrain_steps": args.pretrain_steps, "finetune_steps": args.finetune_steps, "seeds": args.seeds,
            "pretraining": "lidar occupancy of all 10 training scenes, no labels; one run per variant (seed 0)",
            "teacher": "STAND-IN, not DINOv2: a small CNN trained on the 2-D semantics of a separate synthetic world "
                       "(4 scenes x 3 key frames, seed 1), frozen",
            "teacher_training": teacher,
        },
        "pretraining": pretrained, "summary": summary, "runs": runs,
        "cpu_seconds": round(cpu_seconds() - started, 1), "wall_seconds": round(time.time() - wall, 1),
    }  # fmt: skip
    if args.json:
        write_json_atomic(args.json, report)
    for entry in summary:
        parts = [
            f"{k} {entry[k]['mean']:.2f} +- {entry[k]['std']:.2f}"
            for k in ("miou", "geometry_iou", "rayiou")
            if k in entry
        ]
        print(f"{entry['fraction']:>4} {entry['variant']:<30} " + ", ".join(parts))
    print(f"cpu {report['cpu_seconds']} s, wall {report['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
