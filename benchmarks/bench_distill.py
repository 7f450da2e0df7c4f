"""RadOcc distillation on held-out synthetic scenes: student alone, +depth, +depth+semantic, logit KL.

    nice -n 10 python benchmarks/bench_distill.py --work /tmp/distill --json docs/results/distill.json

1. A small synthetic world (6 scenes x 4 key frames, 128x64 images, 1.6 m grid), generated once.
2. Default pseudo-labels (`easyocc labels`: box segmenter + lidar depth) on the same grid.
3. A teacher: a wider compact model trained longer on the world's ground-truth labels (privileged
   3-D supervision, as RadOcc's teacher sees lidar), same inputs as the student.
4. The tiny student on the pseudo-labels of the 4 training scenes, 4 variants x N seeds, scored on the
   2 held-out scenes against ground truth (camera-mask mIoU and RayIoU, percent).
5. With --demo-data: training step time at the demo config with and without distillation (the bundled
   model as teacher).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "a": ("student alone", []),
    "b": ("+ depth consistency", ["distill.depth_weight=10.0"]),
    "c": ("+ depth + semantic consistency", ["distill.depth_weight=10.0", "distill.semantic_weight=10.0"]),
    "d": ("logit-KL baseline", ["distill.kl_weight=1.0"]),
}
TINY = Path(__file__).resolve().parents[1] / "training" / "configs" / "tiny.yaml"
DEMO = Path(__file__).resolve().parents[1] / "training" / "configs" / "demo.yaml"
COMMON = [
    "threads=1",
    "optim.lr=0.003",
    "optim.warmup_iters=20",
    "tensorboard=false",
    "ckpt_every=100000",
    "log_every=10",
    "data.val_scenes=2",
    "resume=false",
]
TEACHER = ["model.backbone_width=16", "model.neck_channels=32", "model.voxel_channels=16", "model.bev_channels=32"]


def make_world(root: Path) -> Path:
    from easyocc.runtime.contract.grid import GridSpec
    from easyocc.training.synth import SynthConfig, generate_dataset

    if (root / "v1.0-mini" / "sample.json").is_file() or any(root.glob("*/sample.json")):
        return root
    config = SynthConfig(
        scenes=6, frames=4, image_size=(128, 64), grid=GridSpec(voxel_size=1.6), lidar_beams=16,
        lidar_azimuth_steps=360, subsamples=1, seed=11,
    )  # fmt: skip
    return Path(generate_dataset(root, config, progress=False))


def make_pseudo_labels(world: Path, out: Path) -> Path:
    if not (out / "gts").is_dir():
        command = [sys.executable, "-m", "easyocc", "labels", "--data", str(world), "--out", str(out), "-q"]
        grid = "pseudo.grid={lower: [-40.0, -40.0, -1.0], upper: [40.0, 40.0, 5.4], voxel_size: 1.6}"
        subprocess.run(command + [grid], check=True)
    return out


def run(overrides: list[str], config_path: Path = TINY) -> dict:
    from easyocc.training.config import load_config
    from easyocc.training.trainer import train

    start = time.process_time()
    result = train(load_config(config_path, overrides), progress=False)
    metrics = result["metrics"]
    keys = ("miou", "miou_star", "geometry_iou", "rayiou", "rayiou@1", "rayiou@2", "rayiou@4")
    return {**{k: metrics[k] for k in keys}, "cpu_s": round(time.process_time() - start, 1)}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for key in ("miou", "rayiou", "geometry_iou"):
        values = np.array([r[key] for r in rows])
        out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return out


def step_time(demo_data: Path, work: Path, teacher: Path, steps: int, stride: int, sample_m: float) -> dict:
    """Seconds per training step at the demo config, without and with distillation (steps 2..N)."""
    times = {}
    base = [f"data.root={demo_data}", "data.val_scenes=0", f"optim.iters={steps}", "log_every=1", "threads=1"]
    base += ["tensorboard=false", "ckpt_every=100000", "resume=false", "optim.warmup_iters=1"]
    extra = [f"distill.teacher={teacher}", "distill.depth_weight=1", "distill.semantic_weight=1"]
    extra += [f"distill.ray_stride={stride}", f"distill.sample_step_m={sample_m}"]
    for name, more in (("without", []), ("with", extra)):
        out = work / f"steptime_{name}"
        from easyocc.training.config import load_config
        from easyocc.training.trainer import train

        train(load_config(DEMO, base + more + [f"out_dir={out}"]), progress=False)
        rows = list(csv.DictReader(open(out / "log.csv")))
        elapsed = [float(r["elapsed_s"]) for r in rows]
        times[name] = (elapsed[-1] - elapsed[0]) / (len(elapsed) - 1)
    times["slowdown"] = times["with"] / times["without"] - 1
    times.update(steps=steps, ray_stride=stride, sample_step_m=sample_m, config="training/configs/demo.yaml")
    times.update(teacher=str(teacher), terms="depth + semantic consistency")
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="scratch folder: world, labels, runs")
    parser.add_argument("--json", required=True, help="results JSON")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=800, help="student steps")
    parser.add_argument("--teacher-iters", type=int, default=1500)
    parser.add_argument("--demo-data", default="", help="demo scene for the step-time comparison ('' = skip)")
    parser.add_argument("--demo-teacher", default="", help="teacher checkpoint at the demo config")
    parser.add_argument("--step-stride", type=int, default=32, help="ray stride (pixels) of the step-time run")
    parser.add_argument("--step-sample-m", type=float, default=0.8, help="sample step (m) of the step-time run")
    parser.add_argument("--step-only", action="store_true", help="only the step-time run, into an existing --json")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    work = Path(args.work)
    if args.step_only:
        results = json.loads(Path(args.json).read_text())
        results["step_time"] = step_time(
            Path(args.demo_data), work, Path(args.demo_teacher), 10, args.step_stride, args.step_sample_m
        )
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(results["step_time"])
        return 0
    world = make_world(work / "world")
    labels = make_pseudo_labels(world, work / "pseudo")
    results = {"settings": vars(args), "variants": {}, "runs": {}}
    teacher_dir = work / "teacher"
    teacher = run(
        [f"data.root={world}", f"out_dir={teacher_dir}", f"optim.iters={args.teacher_iters}", *COMMON, *TEACHER]
    )
    results["teacher"] = teacher
    print("teacher", teacher, flush=True)
    for key, (name, extra) in VARIANTS.items():
        rows = []
        for seed in range(args.seeds):
            overrides = [f"data.root={world}", f"data.labels={labels}", f"data.gt={world}", f"seed={seed}"]
            overrides += [f"out_dir={work / f'{key}_{seed}'}", f"optim.iters={args.iters}", *COMMON]
            if extra:
                overrides += [f"distill.teacher={teacher_dir / 'model.pt'}", *extra]
            rows.append(run(overrides))
            print(key, seed, rows[-1], flush=True)
        results["runs"][key] = rows
        results["variants"][key] = {"name": name, **summarise(rows)}
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.demo_data:
        results["step_time"] = step_time(
            Path(args.demo_data), work, Path(args.demo_teacher), 10, args.step_stride, args.step_sample_m
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    lines = ["| run | mIoU (cam) | RayIoU | geometry IoU |", "| --- | ---: | ---: | ---: |"]
    for key, row in results["variants"].items():
        cells = " | ".join(f"{row[m]['mean']:.2f} ± {row[m]['std']:.2f}" for m in ("miou", "rayiou", "geometry_iou"))
        lines.append(f"| ({key}) {row['name']} | {cells} |")
    t = results["teacher"]
    lines.append(f"| teacher (1 run) | {t['miou']:.2f} | {t['rayiou']:.2f} | {t['geometry_iou']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
