"""Pseudo-label ablation: label quality against the synthetic world's ground truth, the 3-D stage's
time per key frame, and (optionally) the real nuScenes scene's next-frame lidar consistency.

    python benchmarks/bench_pseudo_labels.py --data DIR [--generate] [--real ../shared/data/nuscenes-scene-0916] --out runs/bench_pseudo

Writes <out>/pseudo_labels_ablation.json and .md. Metrics inside the ground-truth camera mask (the
Occ3D convention): mIoU, mIoU*, geometry IoU, occupied precision and recall, and the fraction of
voxels labelled free (and observed) that are free in the ground truth.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
from easyocc.runtime.contract.fileio import write_bytes_atomic, write_json_atomic
from easyocc.runtime.dataset.labels import read_labels
from easyocc.runtime.dataset.nuscenes import NuScenesDataset
from easyocc.training.pseudo.cache import ProviderCache
from easyocc.training.pseudo.evaluate import LabelQuality, next_frame_lidar_fraction
from easyocc.training.pseudo.pipeline import PseudoLabelConfig, PseudoLabeler
from easyocc.training.pseudo.registry import build_depth, build_segmenter

# name, segmenter, depth, config overrides
ABLATIONS = (
    ("default: simulated-low, 13 frames", "simulated-low", "simulated-low", {}),
    ("frames 0 (single frame)", "simulated-low", "simulated-low", {"past_frames": 0}),
    ("frames 1", "simulated-low", "simulated-low", {"past_frames": 1}),
    ("frames 4", "simulated-low", "simulated-low", {"past_frames": 4}),
    ("dynamic filter off", "simulated-low", "simulated-low", {"dynamic_filter": False}),
    ("outlier removal off", "simulated-low", "simulated-low", {"outlier_removal": False}),
    ("simulated-high, 13 frames", "simulated-high", "simulated-high", {}),
    ("simulated-high, outlier removal off", "simulated-high", "simulated-high", {"outlier_removal": False}),
    ("lidar depth + simulated-low semantics", "simulated-low", "lidar", {}),
    ("ground-truth providers (upper bound)", "ground-truth", "ground-truth", {}),
)
COLUMNS = ("miou", "miou_star", "geometry_iou", "occupied_precision", "occupied_recall", "free_precision")


def evaluate(dataset, segmenter, depth, overrides, cache, key_frames_per_scene):
    config = PseudoLabelConfig.from_dict(overrides)
    labeler = PseudoLabeler(dataset, build_segmenter(segmenter), build_depth(depth), config, cache)
    quality = LabelQuality()
    for scene in dataset.scene_names:
        samples = dataset.samples(scene)
        for index in range(max(len(samples) - key_frames_per_scene, 0), len(samples)):
            labels, _ = labeler.label(samples, index)
            quality.update(labels, read_labels(dataset.labels_path(samples[index]), config.grid))
    return quality.results()


def time_stage(dataset, cache, repeats: int = 3) -> dict:
    """Seconds of the 3-D stage (providers cached, so excluded) for one key frame with 13 past frames:
    cold = all 14 frame clouds built from cached provider outputs; warm = the next key frame of a
    sequential run (its own cloud built, the 13 past ones reused)."""
    scene = dataset.scene_names[0]
    samples = dataset.samples(scene)
    labeler = PseudoLabeler(
        dataset, build_segmenter("simulated-low"), build_depth("simulated-low"), PseudoLabelConfig(), cache
    )
    labeler.label(samples, len(samples) - 1)  # fills the provider cache
    cold, warm = [], []
    for _ in range(repeats):
        labeler._clouds.clear()
        start = time.perf_counter()
        labeler.label(samples, len(samples) - 2)
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        labeler.label(samples, len(samples) - 1)
        warm.append(time.perf_counter() - start)
    return {
        "cold_s": float(np.median(cold)),
        "warm_s": float(np.median(warm)),
        "past_frames": min(13, len(samples) - 2),
    }


def real_run(root, cache_dir) -> dict:
    dataset = NuScenesDataset(root)
    samples = dataset.samples(dataset.scene_names[0])
    labeler = PseudoLabeler(
        dataset, build_segmenter("boxes"), build_depth("lidar"), PseudoLabelConfig(), ProviderCache(cache_dir)
    )
    fractions, near, seconds = [], [], []
    for index in range(len(samples) - 1):
        start = time.perf_counter()
        labels, _ = labeler.label(samples, index)
        seconds.append(time.perf_counter() - start)
        result = next_frame_lidar_fraction(dataset, labels, samples[index], samples[index + 1], labeler.config.grid)
        fractions.append(result["fraction"])
        near.append(result["fraction_within_1_voxel"])
    return {
        "scene": dataset.scene_names[0],
        "key_frames": len(fractions),
        "next_frame_static_lidar_in_occupied": float(np.mean(fractions)),
        "within_1_voxel": float(np.mean(near)),
        "seconds_per_key_frame_including_providers": float(np.mean(seconds)),
    }


def markdown(results: dict) -> str:
    lines = [
        f"Synthetic dataset: {results['scenes']} scenes, last {results['key_frames_per_scene']} key frames of each scored, "
        "metrics in % inside the ground-truth camera mask.",
        "",
        "| configuration | mIoU | mIoU* | geometry IoU | occ. precision | occ. recall | free precision |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["ablation"]:
        lines.append(f"| {row['name']} | " + " | ".join(f"{row[c]:.1f}" for c in COLUMNS) + " |")
    timing = results["timing"]
    lines += ["", f"3-D stage per key frame with {timing['past_frames']} past frames ({results['machine']}): "
              f"{timing['cold_s']:.2f} s cold (all frame clouds rebuilt), {timing['warm_s']:.2f} s in a sequential run."]  # fmt: skip
    if "real" in results:
        real = results["real"]
        lines += ["", f"Real {real['scene']} (lidar depth + box semantics, 13 frames): "
                  f"{100 * real['next_frame_static_lidar_in_occupied']:.1f} % of the next key frame's static lidar returns fall in "
                  f"occupied voxels ({100 * real['within_1_voxel']:.1f} % within one voxel), {real['key_frames']} key frames."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="synthetic dataset (made with --generate if absent)")
    parser.add_argument(
        "--generate", action="store_true", help="generate the dataset first: 8 scenes x 15 key frames, 352x128"
    )
    parser.add_argument("--key-frames", type=int, default=2, help="scored key frames at the end of each scene")
    parser.add_argument("--real", help="real nuScenes-layout scene for the next-frame lidar check")
    parser.add_argument("--only", action="append", help="run only ablations whose name contains this (repeatable)")
    parser.add_argument("--out", default="runs/bench_pseudo")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.generate and not Path(args.data, "synth_config.json").is_file():
        from easyocc.training.synth import SynthConfig, generate_dataset

        generate_dataset(args.data, SynthConfig(scenes=8, frames=15, image_size=(352, 128), seed=7))
    dataset = NuScenesDataset(args.data)
    cache = ProviderCache(out / "cache")
    results = {"scenes": len(dataset.scene_names), "key_frames_per_scene": args.key_frames, "ablation": []}
    results["machine"] = f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores"
    for name, segmenter, depth, overrides in ABLATIONS:
        if args.only and not any(part in name for part in args.only):
            continue
        start = time.perf_counter()
        row = evaluate(dataset, segmenter, depth, overrides, cache, args.key_frames)
        results["ablation"].append(
            {
                "name": name,
                "segmenter": segmenter,
                "depth": depth,
                "overrides": overrides,
                **{c: row[c] for c in COLUMNS},
            }
        )
        print(
            f"{name:<42}"
            + " ".join(f"{row[c]:6.1f}" for c in COLUMNS)
            + f"  ({time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
        )
    results["timing"] = time_stage(dataset, cache)
    if args.real:
        results["real"] = real_run(args.real, out / "cache-real")
    write_json_atomic(out / "pseudo_labels_ablation.json", results)
    write_bytes_atomic(out / "pseudo_labels_ablation.md", markdown(results).encode())
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
