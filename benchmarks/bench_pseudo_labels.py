"""Pseudo-label ablation: label quality against the synthetic world's ground truth, the 3-D stage's
time per key frame, and (optionally) the real nuScenes scene's next-frame lidar consistency.

    python benchmarks/bench_pseudo_labels.py --data DIR [--generate] [--real ../shared/data/nuscenes-scene-0916] --out runs/bench_pseudo

    python benchmarks/bench_pseudo_labels.py --ablation --data SYNTH --real ../shared/data/nuscenes-scene-0916 --out runs/ablation

Writes <out>/pseudo_labels_ablation.json and .md. `--ablation` instead runs the camera-only study
(`run_ablation`): relative depth aligned without lidar vs lidar-anchored, 13 past frames
vs 1, dynamic filter on vs off, over seeds, on the synthetic world and the real scene; JSON and a
markdown table in <out>. Metrics inside the ground-truth camera mask (the
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


# ----- the camera-only study: name, anchor, past frames, dynamic filter
STUDY = (
    ("camera-only, 13 past frames", "none", 13, True),
    ("lidar-anchored, 13 past frames", "lidar", 13, True),
    ("camera-only, 1 past frame", "none", 1, True),
    ("camera-only, dynamic filter off", "none", 13, False),
)


def study_run(dataset, segmenter, depth_name, anchor, past, dynamic, seed, cache, scored, with_truth):
    """Label the `scored` key frames of the first scene; label quality (synthetic), depth per camera
    against lidar, next-key-frame lidar consistency, seconds of the 3-D stage and of the alignment."""
    from easyocc.training.pseudo.evaluate import DepthQuality
    from easyocc.training.pseudo.run import depth_reads_lidar

    samples = dataset.samples(dataset.scene_names[0])
    depth = build_depth(depth_name, seed=seed, anchor=anchor)
    quality_depth = DepthQuality()
    config = PseudoLabelConfig(past_frames=past, dynamic_filter=dynamic)
    labeler = PseudoLabeler(
        dataset, build_segmenter(segmenter, seed=seed), depth, config, cache, depth_observer=quality_depth.update,
        read_lidar=depth_reads_lidar(depth_name, anchor),
    )  # fmt: skip
    quality, lidar, stage, stage_cpu = LabelQuality(), [], [], []
    for index in scored:
        start, cpu = time.perf_counter(), time.process_time()
        providers, providers_cpu = labeler.provider_seconds, labeler.provider_cpu_seconds
        labels, _ = labeler.label(samples, index)
        stage.append(time.perf_counter() - start - (labeler.provider_seconds - providers))
        stage_cpu.append(time.process_time() - cpu - (labeler.provider_cpu_seconds - providers_cpu))
        if with_truth:
            quality.update(labels, read_labels(dataset.labels_path(samples[index]), config.grid))
        if index + 1 < len(samples):
            lidar.append(next_frame_lidar_fraction(dataset, labels, samples[index], samples[index + 1], config.grid))
    row = {"depth": {k: v["abs_rel"] for k, v in quality_depth.results().items()}}
    if with_truth:
        row.update({c: quality.results()[c] for c in ("miou", "geometry_iou", "free_precision")})
    if lidar:
        row["next_frame_lidar_in_occupied"] = 100 * float(np.mean([f["fraction"] for f in lidar]))
    row["stage3_s"] = float(np.mean(stage))
    row["stage3_cpu_s"] = float(np.mean(stage_cpu))
    if getattr(depth, "images", 0):
        row["align_s_per_key_frame"] = 6 * depth.seconds / depth.images
        row["align_cpu_s_per_key_frame"] = 6 * depth.cpu_seconds / depth.images
        row["cues"] = sorted({cue for _, cue in depth.cues})
    return row


def _summarise(rows: list[dict]) -> dict:
    """mean and std over seeds of every number (depth per camera too)."""
    out = {}
    for key in rows[0]:
        if key == "cues":
            out[key] = sorted({c for r in rows for c in r[key]})
        elif key == "depth":
            out[key] = {
                cam: {"mean": float(np.mean([r[key][cam] for r in rows])), "std": float(np.std([r[key][cam] for r in rows]))}
                for cam in rows[0][key]
            }  # fmt: skip
        else:
            values = [r[key] for r in rows]
            out[key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    return out


def time_stage_camera_only(dataset, segmenter, depth_name, cache, index: int, repeats: int = 3) -> dict:
    """Wall and CPU seconds of the 3-D stage with 13 past frames (providers cached, so excluded):
    cold = all 14 frame clouds rebuilt from cached provider outputs, warm = the next key frame of a
    sequential run (its own cloud built, the past ones reused)."""
    samples = dataset.samples(dataset.scene_names[0])
    labeler = PseudoLabeler(
        dataset, build_segmenter(segmenter), build_depth(depth_name), PseudoLabelConfig(), cache, read_lidar=False
    )
    labeler.label(samples, index + 1)  # fills the provider cache where it was not
    times = {"cold_s": [], "cold_cpu_s": [], "warm_s": [], "warm_cpu_s": []}
    for _ in range(repeats):
        labeler._clouds.clear()
        for kind, key in (("cold", index), ("warm", index + 1)):
            start, cpu = time.perf_counter(), time.process_time()
            labeler.label(samples, key)
            times[f"{kind}_s"].append(time.perf_counter() - start)
            times[f"{kind}_cpu_s"].append(time.process_time() - cpu)
    load = __import__("os").getloadavg()[0]
    return {k: float(np.median(v)) for k, v in times.items()} | {"past_frames": 13, "load_average_1min": load}


def run_ablation(synth, real, out: Path, seeds: int, key_frames: int, real_frames: str, timing_only=False) -> int:
    results = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores", "seeds": seeds}
    worlds = []
    if synth:
        dataset = NuScenesDataset(synth)
        n = len(dataset.samples(dataset.scene_names[0]))
        worlds.append(
            ("synthetic", dataset, "simulated-low", "aligned-simulated-relative-low", range(n - key_frames, n), True)
        )
    if real:
        first, stop = (int(v) for v in real_frames.split(":"))
        worlds.append(
            ("scene-0916", NuScenesDataset(real), "boxes", "aligned-lidar-relative", range(first, stop), False)
        )
    for world, dataset, segmenter, depth_name, scored, truth in worlds:
        if timing_only:
            cache = ProviderCache(out / "cache" / world)
            results[world] = time_stage_camera_only(dataset, segmenter, depth_name, cache, scored[-1] - 1)
            print(world, results[world], file=sys.stderr)
            write_json_atomic(out / "pseudo_timing.json", results)
            continue
        results[world] = {"segmenter": segmenter, "depth": depth_name, "scored_key_frames": list(scored), "rows": []}
        for name, anchor, past, dynamic in STUDY:
            rows = []
            for seed in range(seeds):
                cache = ProviderCache(out / "cache" / world)  # keyed by provider options: seeds never mix
                start = time.perf_counter()
                rows.append(
                    study_run(dataset, segmenter, depth_name, anchor, past, dynamic, seed, cache, scored, truth)
                )
                print(f"{world} {name} seed {seed}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
            summary = _summarise(rows)
            results[world]["rows"].append({"name": name, "anchor": anchor, "past_frames": past, "dynamic_filter": dynamic, **summary, "per_seed": rows})  # fmt: skip
        write_json_atomic(out / "pseudo_ablation.json", results)
    if timing_only:
        return 0
    write_bytes_atomic(out / "pseudo_ablation.md", ablation_markdown(results).encode())
    print(ablation_markdown(results))
    return 0


def ablation_markdown(results: dict) -> str:
    """The study as markdown tables (timing is reported apart: wall seconds on a shared machine mislead)."""
    lines = []
    for world in ("synthetic", "scene-0916"):
        if world not in results:
            continue
        data = results[world]
        cams = list(data["rows"][0]["depth"])
        quality = ["miou", "geometry_iou", "free_precision"] if "miou" in data["rows"][0] else []
        head = ["configuration", *[q.replace("_", " ") for q in quality], "next-frame lidar in occupied"]
        head += [f"AbsRel {c.replace('CAM_', '')}" for c in cams]
        lines += [f"**{world}** ({data['segmenter']} + {data['depth']}; key frames {data['scored_key_frames']}; "
                  f"mean ± std over {results['seeds']} seeds; label quality and lidar consistency in %, depth AbsRel "
                  "against each camera's lidar)", "", "| " + " | ".join(head) + " |",
                  "|" + " --- |" + " ---: |" * (len(head) - 1)]  # fmt: skip
        for row in data["rows"]:
            cells = [f"{row[q]['mean']:.1f} ± {row[q]['std']:.1f}" for q in quality]
            lidar = row.get("next_frame_lidar_in_occupied")
            cells.append(f"{lidar['mean']:.1f} ± {lidar['std']:.1f}" if lidar else "-")
            cells += [f"{row['depth'][c]['mean']:.3f} ± {row['depth'][c]['std']:.3f}" for c in cams]
            lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


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
    parser.add_argument("--ablation", action="store_true", help="the camera-only alignment study instead")
    parser.add_argument("--seeds", type=int, default=3, help="--ablation: seeds (provider noise and scramble)")
    parser.add_argument("--real-frames", default="14:17", help="--ablation: scored key frames of --real, a:b")
    parser.add_argument("--real-only", action="store_true", help="--ablation: skip the synthetic world")
    parser.add_argument("--timing", action="store_true", help="--ablation: only time the 3-D stage (13 past frames)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.ablation:
        synth = None if args.real_only else args.data
        return run_ablation(synth, args.real, out, args.seeds, args.key_frames, args.real_frames, args.timing)
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
            f"{name:<42}" + " ".join(f"{row[c]:6.1f}" for c in COLUMNS) + f"  ({time.perf_counter() - start:.0f} s)",
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
