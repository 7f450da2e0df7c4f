"""Benchmark the synthetic world: seconds per key frame and per stage (median over key frames).

    .venv/bin/python benchmarks/bench_synth.py --frames 5 --out runs/bench_synth.json

Stages: cameras (6 images with depth/semantic/instance; the slowest camera when they run on
threads), lidar, semantics (voxelized grid), mask_camera, mask_lidar; with more than one thread the
stages overlap. total = the wall time of one key frame, without file writing. Also reports the class
histogram of the ground truth over the frames rendered.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from easyocc.runtime.contract.classes import CLASS_NAMES
from easyocc.training.synth import SynthConfig, SyntheticWorld, parse_size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=5, help="key frames to time per scene (default 5)")
    parser.add_argument("--scenes", type=int, default=1, help="scenes (default 1)")
    parser.add_argument("--size", default="704x256")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="rendering threads (default: one per core)")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    parser.add_argument("--check", default=None, help="a generated dataset: report consistency, lidar error, histogram")
    parser.add_argument(
        "--histogram",
        action="store_true",
        help="only voxelize every 10th key frame of each scene (fast class histogram)",
    )
    args = parser.parse_args(argv)
    if args.check:
        return check(args.check, args.out)
    if args.histogram:
        return histogram_only(SynthConfig(scenes=args.scenes, frames=args.frames, seed=args.seed), args.out)
    config = SynthConfig(scenes=args.scenes, frames=args.frames, image_size=parse_size(args.size), seed=args.seed)
    stages: dict[str, list[float]] = {}
    histogram = np.zeros(len(CLASS_NAMES), np.int64)
    for scene in range(args.scenes):
        world = SyntheticWorld(config, scene, threads=args.threads)
        for k in range(args.frames):
            timings = {}
            start = time.perf_counter()
            key = world.key_frame(k, timings=timings)
            timings["total"] = time.perf_counter() - start
            for name, value in timings.items():
                stages.setdefault(name, []).append(value)
            histogram += np.bincount(key.labels.semantics.ravel(), minlength=len(CLASS_NAMES))
    result = {
        "config": config.to_dict(),
        "threads": world.threads,
        "median_s": {name: statistics.median(values) for name, values in stages.items()},
        "all_s": stages,
        "class_voxels": {name: int(count) for name, count in zip(CLASS_NAMES, histogram)},
    }
    print(f"{'stage':<14}{'median s':>10}   ({len(stages['total'])} key frames, {args.size}, {world.threads} threads)")
    for name, value in result["median_s"].items():
        print(f"{name:<14}{value:>10.3f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def histogram_only(config: SynthConfig, out=None) -> int:
    """Class histogram of the semantics grid at key frames 0, 10, 20, ... of every scene (no rendering)."""
    from easyocc.calibration import invert_transform
    from easyocc.training.synth import voxelize

    histogram = np.zeros(len(CLASS_NAMES), np.int64)
    frames = 0
    for scene in range(config.scenes):
        world = SyntheticWorld(config, scene)
        for k in range(0, config.frames, 10):
            global_T_ego = world.ego_pose(k / 2)
            prims = world.scene.primitives_at(k / 2).transformed(invert_transform(global_T_ego))

            def ground(xy, pose=global_T_ego, world=world):
                return world.scene.ground_class(xy @ pose[:2, :2].T + pose[:2, 3])[0]

            sem = voxelize.semantics(prims, ground, config.grid, config.subsamples)
            histogram += np.bincount(sem.ravel(), minlength=len(CLASS_NAMES))
            frames += 1
    _print_histogram(histogram, f"{config.scenes} scenes, {frames} key frames")
    if out:
        Path(out).write_text(json.dumps({name: int(c) for name, c in zip(CLASS_NAMES, histogram)}, indent=2) + "\n")
    return 0 if histogram[: len(CLASS_NAMES) - 1].min() > 0 else 1


def _print_histogram(histogram, what: str) -> None:
    occupied = histogram[: len(CLASS_NAMES) - 1].sum()
    print(f"| class ({what}) | voxels | share of occupied |")
    print("| --- | ---: | ---: |")
    for name, count in zip(CLASS_NAMES[:-1], histogram):
        print(f"| {name} | {count} | {100 * count / occupied:.2f} % |")


def check(root, out=None) -> int:
    """Pixel/grid agreement, lidar-vs-depth error and the class histogram of a generated dataset."""
    from easyocc.training.synth.checks import class_histogram, lidar_depth_error, pixel_grid_agreement

    agreement = pixel_grid_agreement(root)
    errors = lidar_depth_error(root)
    histogram = class_histogram(root)
    result = {
        "pixel_grid_agreement": agreement["fraction"],
        "pixels": agreement["pixels"],
        "lidar_depth_error_median_m": float(np.median(errors)),
        "lidar_points_compared": int(len(errors)),
        "class_voxels": {name: int(count) for name, count in zip(CLASS_NAMES, histogram)},
    }
    print(f"pixels agreeing with the grid: {100 * agreement['fraction']:.2f} % of {agreement['pixels']}")
    print(f"median |lidar - rendered depth|: {result['lidar_depth_error_median_m']:.4f} m over {len(errors)} points")
    _print_histogram(histogram, str(root))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if histogram[: len(CLASS_NAMES) - 1].min() > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
