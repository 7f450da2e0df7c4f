"""Cost of one training step (forward, loss, backward, AdamW) of a training config at its own input
size, on the real scene-0916 rig, with random images and labels: the per-sample figure of the
planning table in docs/readme/scale.md. Data loading is measured apart (JPEG decode + resize of the
six 1600x900 images of a real key frame to the input size, as OccDataset does it).

    python benchmarks/bench_train_step.py --config training/configs/compact.yaml --steps 3 \
        --json docs/results/train_step_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

PROJECT = Path(__file__).resolve().parents[1]
SCENE = PROJECT.parent / "shared" / "data" / "nuscenes-scene-0916"


def main(argv=None) -> int:
    from easyocc.calibration import CameraRig, build_view_transform
    from easyocc.runtime.contract.preprocess import read_image, resize_to_network
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset
    from easyocc.training.config import load_config
    from easyocc.training.losses import occupancy_loss
    from easyocc.training.model import build_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(PROJECT / "training" / "configs" / "compact.yaml"))
    parser.add_argument("--data", default=str(SCENE), help="a nuScenes-layout folder (its first key frame's rig)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config, [])
    model_config = config.model
    dataset = NuScenesDataset(args.data)
    sample = dataset.samples()[0]
    width, height = model_config.input_size

    start = time.process_time()
    images = np.empty((len(model_config.camera_names), height, width, 3), np.uint8)
    for i, name in enumerate(model_config.camera_names):
        resize_to_network(read_image(sample.cameras[name].path), (width, height), out=images[i])
    load_cpu_ms = 1e3 * (time.process_time() - start)

    rig = dataset.rig(sample)
    rig = CameraRig(
        rig[name].resized(width / rig[name].width, height / rig[name].height) for name in model_config.camera_names
    )
    start = time.process_time()
    tables = build_view_transform(
        rig, model_config.grid_spec.centres(model_config.stride_xy, model_config.stride_z), model_config.min_depth_m
    )
    tables_cpu_ms = 1e3 * (time.process_time() - start)  # paid per sample when augmentation rescales
    vt_uv = torch.from_numpy(tables.uv_norm)[None]
    vt_weights = torch.from_numpy(tables.weights)[None]
    images_t = torch.from_numpy(images)[None]
    grid = model_config.grid_spec
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.integers(0, model_config.num_classes, (1, *grid.shape)).astype(np.int64))
    mask = torch.from_numpy(rng.random((1, *grid.shape)) < 0.3)

    torch.manual_seed(0)
    model = build_model(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times, cpu_times = [], []
    for step in range(args.steps + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        logits = model(images_t, vt_uv, vt_weights)
        loss, _ = occupancy_loss(logits.float(), target, mask, None, config.loss.lovasz_weight,
                                 config.loss.lovasz_max_voxels, [step])  # fmt: skip
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:  # the first step allocates and warms up
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    result = {
        "benchmark": "benchmarks/bench_train_step.py",
        "config": str(Path(args.config).relative_to(PROJECT)) if Path(args.config).is_absolute() else args.config,
        "input": f"{len(model_config.camera_names)} x {height} x {width}",
        "grid": list(grid.shape),
        "batch": 1,
        "steps": args.steps,
        "step_s": {"mean": round(float(np.mean(times)), 3), "min": round(float(np.min(times)), 3)},
        "step_cpu_s": round(float(np.mean(cpu_times)), 3),
        "load_cpu_ms_per_sample": round(load_cpu_ms, 1),
        "view_tables_cpu_ms": round(tables_cpu_ms, 1),
        "torch_threads": torch.get_num_threads(),
        "load_average_after": round(os.getloadavg()[0], 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs shared with other jobs, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
