"""The nuScenes reader at full v1.0-trainval scale: load time, memory and per-sample lookups, before
(the reader of commit a378d8c, which scanned every annotation per `boxes()` call) and after (indexed).

The real trainval tables are not here, so the benchmark writes a table set of the same size and
schema (synthetic rows): 850 scenes, 34,149 key frames, 1,166,187 annotations, 64,386 instances,
2,631,083 sample_data rows (12 channels per key frame plus the sweeps between key frames) and as
many ego poses. Each reader runs in its own process, so peak memory is its own.

    python benchmarks/bench_nuscenes_tables.py --work /work/tmp/18/tables --json docs/results/nuscenes_tables.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TRAINVAL = {"scenes": 850, "samples": 34_149, "annotations": 1_166_187, "instances": 64_386, "sample_data": 2_631_083}
CHANNELS = (
    ("CAM_FRONT", "camera"), ("CAM_FRONT_RIGHT", "camera"), ("CAM_FRONT_LEFT", "camera"), ("CAM_BACK", "camera"),
    ("CAM_BACK_LEFT", "camera"), ("CAM_BACK_RIGHT", "camera"), ("LIDAR_TOP", "lidar"), ("RADAR_FRONT", "radar"),
    ("RADAR_FRONT_LEFT", "radar"), ("RADAR_FRONT_RIGHT", "radar"), ("RADAR_BACK_LEFT", "radar"),
    ("RADAR_BACK_RIGHT", "radar"),
)  # fmt: skip
CATEGORIES = ("vehicle.car", "human.pedestrian.adult", "vehicle.truck", "movable_object.barrier", "vehicle.bicycle")


def token(kind: int, index: int) -> str:
    return f"{kind:02x}{index:030x}"


def write_table(path: Path, rows) -> int:
    """Stream rows into a JSON list (never the whole table in memory); returns the row count."""
    count = 0
    with open(path, "w") as handle:
        handle.write("[\n")
        for row in rows:
            handle.write((",\n" if count else "") + json.dumps(row))
            count += 1
        handle.write("\n]\n")
    return count


def generate(root: Path, scale: float, seed: int = 0) -> dict:
    """Write <root>/v1.0-trainval/*.json at `scale` x trainval size; returns the row counts."""
    rng = np.random.default_rng(seed)
    tables = root / "v1.0-trainval"
    tables.mkdir(parents=True, exist_ok=True)
    n_scenes = max(1, round(TRAINVAL["scenes"] * scale))
    n_samples = max(n_scenes, round(TRAINVAL["samples"] * scale))
    per_scene = np.full(n_scenes, n_samples // n_scenes)
    per_scene[: n_samples % n_scenes] += 1
    sweeps_per_key = (TRAINVAL["sample_data"] - TRAINVAL["samples"] * len(CHANNELS)) / TRAINVAL["samples"]
    ann_per_sample = TRAINVAL["annotations"] / TRAINVAL["samples"]
    n_instances = max(1, round(TRAINVAL["instances"] * scale))
    counts = {}
    sensors = [{"token": token(1, i), "channel": c, "modality": m} for i, (c, m) in enumerate(CHANNELS)]
    counts["sensor"] = write_table(tables / "sensor.json", sensors)
    calibrated = [
        {"token": token(2, s * len(CHANNELS) + i), "sensor_token": token(1, i), "translation": [1.0, 0.0, 1.5],
         "rotation": [0.5, -0.5, 0.5, -0.5], "camera_intrinsic": [[1266.4, 0.0, 816.3], [0.0, 1266.4, 491.5], [0.0, 0.0, 1.0]]
         if m == "camera" else []}
        for s in range(n_scenes) for i, (_, m) in enumerate(CHANNELS)
    ]  # fmt: skip
    counts["calibrated_sensor"] = write_table(tables / "calibrated_sensor.json", calibrated)
    counts["category"] = write_table(
        tables / "category.json",
        [{"token": token(3, i), "name": n, "description": ""} for i, n in enumerate(CATEGORIES)],
    )
    counts["instance"] = write_table(
        tables / "instance.json",
        ({"token": token(4, i), "category_token": token(3, i % len(CATEGORIES)), "nbr_annotations": 18,
          "first_annotation_token": "", "last_annotation_token": ""} for i in range(n_instances)),
    )  # fmt: skip
    first = np.concatenate([[0], np.cumsum(per_scene)[:-1]])
    counts["scene"] = write_table(
        tables / "scene.json",
        ({"token": token(5, s), "log_token": token(6, s), "nbr_samples": int(per_scene[s]), "name": f"scene-{s + 1:04d}",
          "first_sample_token": token(7, int(first[s])), "last_sample_token": token(7, int(first[s] + per_scene[s] - 1)),
          "description": "synthetic rows, real schema"} for s in range(n_scenes)),
    )  # fmt: skip
    scene_of = np.repeat(np.arange(n_scenes), per_scene)

    def samples():
        for i in range(n_samples):
            s = int(scene_of[i])
            start, stop = int(first[s]), int(first[s] + per_scene[s])
            yield {"token": token(7, i), "timestamp": 1_530_000_000_000_000 + i * 500_000, "scene_token": token(5, s),
                   "prev": token(7, i - 1) if i > start else "", "next": token(7, i + 1) if i + 1 < stop else ""}  # fmt: skip

    counts["sample"] = write_table(tables / "sample.json", samples())
    sweeps = np.floor(sweeps_per_key * np.arange(n_samples + 1)).astype(int)  # cumulative, spreads the fraction

    def sample_data():
        row = 0
        for i in range(n_samples):
            s, stamp = int(scene_of[i]), 1_530_000_000_000_000 + i * 500_000
            n_rows = len(CHANNELS) + int(sweeps[i + 1] - sweeps[i])
            for j in range(n_rows):
                c = j % len(CHANNELS)
                channel, modality = CHANNELS[c]
                key = j < len(CHANNELS)
                folder = "samples" if key else "sweeps"
                yield {"token": token(8, row), "sample_token": token(7, i), "ego_pose_token": token(9, row),
                       "calibrated_sensor_token": token(2, s * len(CHANNELS) + c), "timestamp": stamp + j * 8_000,
                       "fileformat": "jpg" if modality == "camera" else "pcd", "is_key_frame": key,
                       "height": 900 if modality == "camera" else 0, "width": 1600 if modality == "camera" else 0,
                       "filename": f"{folder}/{channel}/n008-2018-08-01-15-16-36-0400__{channel}__{stamp + j * 8_000}.jpg",
                       "prev": token(8, row - 1) if row else "", "next": token(8, row + 1)}  # fmt: skip
                row += 1

    counts["sample_data"] = write_table(tables / "sample_data.json", sample_data())

    def ego_poses():
        for row in range(counts["sample_data"]):
            yield {"token": token(9, row), "timestamp": 1_530_000_000_000_000 + row * 40_000,
                   "rotation": [0.99, 0.0, 0.0, 0.14], "translation": [400.0 + row * 1e-3, 1100.0, 0.0]}  # fmt: skip

    counts["ego_pose"] = write_table(tables / "ego_pose.json", ego_poses())
    n_ann = round(ann_per_sample * n_samples)
    owner = np.sort(rng.integers(0, n_samples, n_ann))  # annotations of a sample are spread like the real table's

    def annotations():
        for a in range(n_ann):
            yield {"token": token(10, a), "sample_token": token(7, int(owner[a])), "instance_token": token(4, a % n_instances),
                   "visibility_token": "4", "attribute_tokens": [token(11, 0)], "translation": [410.2, 1120.5, 1.1],
                   "size": [1.9, 4.6, 1.7], "rotation": [0.7071068, 0.0, 0.0, 0.7071068], "prev": "", "next": "",
                   "num_lidar_pts": 12, "num_radar_pts": 1}  # fmt: skip

    counts["sample_annotation"] = write_table(tables / "sample_annotation.json", annotations())
    counts["bytes"] = sum(p.stat().st_size for p in tables.glob("*.json"))
    return counts


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(module_path: str, root: str, lookups: int, seed: int) -> dict:
    """In this process: load the reader from `module_path`, time boxes() and samples() per sample."""
    import gc
    import importlib.util

    spec = importlib.util.spec_from_file_location("reader_under_test", module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    gc.collect()
    before = rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    dataset = module.NuScenesDataset(root)
    load_s, load_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    gc.collect()
    after_load = rss_mb()
    names = dataset.scene_names
    rng = np.random.default_rng(seed)
    scenes = [names[i] for i in rng.choice(len(names), size=min(lookups, len(names)), replace=False)]
    start = time.perf_counter()
    first_samples = dataset.samples(scenes[0])
    first_scene_s = time.perf_counter() - start  # includes building the lazy sample_data index
    start = time.perf_counter()
    picked = [dataset.samples(scene) for scene in scenes[1:]]
    samples_per_scene_ms = 1e3 * (time.perf_counter() - start) / max(len(picked), 1)
    frames = [scene_samples[len(scene_samples) // 2] for scene_samples in [first_samples, *picked]]
    gc.collect()
    before_boxes = rss_mb()  # what a process that never asks for boxes holds (training)
    start = time.perf_counter()
    first_boxes = dataset.boxes(frames[0])
    first_boxes_s = time.perf_counter() - start  # includes building the lazy annotation index
    times, cpu_times, boxes = [], [], len(first_boxes)
    for frame in frames[1:]:
        start, cpu_start = time.perf_counter(), time.process_time()
        boxes += len(dataset.boxes(frame))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    gc.collect()
    return {
        "load_s": round(load_s, 2),
        "load_cpu_s": round(load_cpu_s, 2),
        "rss_before_mb": round(before),
        "rss_after_load_mb": round(after_load),
        "rss_before_boxes_mb": round(before_boxes),
        "rss_after_lookups_mb": round(rss_mb()),
        "reader_mb": round(rss_mb() - before),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "first_samples_call_s": round(first_scene_s, 3),
        "samples_per_scene_ms": round(samples_per_scene_ms, 3),
        "first_boxes_call_s": round(first_boxes_s, 3),
        "boxes_per_sample_ms": {
            "mean": round(1e3 * float(np.mean(times)), 4),
            "p50": round(1e3 * float(np.median(times)), 4),
            "max": round(1e3 * float(np.max(times)), 4),
            "calls": len(times),
        },
        "boxes_per_sample_cpu_ms": round(1e3 * float(np.mean(cpu_times)), 4),
        "load_average_after": round(os.getloadavg()[0], 2),
        "boxes_per_sample": round(boxes / len(frames), 1),
    }


def run_reader(module_path: Path, root: Path, lookups: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(module_path), "--work", str(root), "--lookups", str(lookups)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="scratch folder for the generated tables (several GB)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of trainval size (1 = full)")
    parser.add_argument("--old-ref", default="a378d8c", help="git commit of the reader before indexing")
    parser.add_argument("--lookups", type=int, default=20, help="scenes sampled; boxes() is timed on one frame each")
    parser.add_argument("--old-lookups", type=int, default=10, help="the same for the old reader (slow per call)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--reuse", action="store_true", help="keep tables generated earlier at the same scale")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.work, args.lookups, seed=0)))
        return 0
    work = Path(args.work)
    load_at_start = os.getloadavg()[0]
    root = work / "trainval"
    start = time.perf_counter()
    done = root / "generated.json"
    if args.reuse and done.is_file() and json.loads(done.read_text())["scale"] == args.scale:
        counts = json.loads(done.read_text())["rows"]
    else:
        counts = generate(root, args.scale)
        done.write_text(json.dumps({"scale": args.scale, "rows": counts}))
    generate_s = time.perf_counter() - start
    print(f"generated {counts} in {generate_s:.0f} s", flush=True)
    old_module = work / "nuscenes_old.py"
    project = Path(__file__).resolve().parents[1]
    old_module.write_text(
        subprocess.run(
            ["git", "show", f"{args.old_ref}:runtime/dataset/nuscenes.py"],
            cwd=project,
            check=True,
            capture_output=True,
            text=True,
        ).stdout  # fmt: skip
    )
    new_module = project / "runtime" / "dataset" / "nuscenes.py"
    results = {}
    for name, module, lookups in (("indexed", new_module, args.lookups), ("old", old_module, args.old_lookups)):
        results[name] = run_reader(module, root, lookups)
        print(name, json.dumps(results[name]), flush=True)
    speedup = results["old"]["boxes_per_sample_ms"]["mean"] / results["indexed"]["boxes_per_sample_ms"]["mean"]
    report = {
        "benchmark": "benchmarks/bench_nuscenes_tables.py",
        "command": " ".join(["python", "benchmarks/bench_nuscenes_tables.py", *(argv or sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs shared, Python {platform.python_version()}",
        "load_average_at_start": round(load_at_start, 2),
        "tables": {
            "scale": args.scale,
            "rows": counts,
            "generate_s": round(generate_s, 1),
            "rows_are": "synthetic, real schema",
        },
        "old_reader": f"git {args.old_ref}:runtime/dataset/nuscenes.py",
        "results": results,
        "boxes_speedup": round(speedup, 1),
        "boxes_speedup_cpu": round(
            results["old"]["boxes_per_sample_cpu_ms"] / results["indexed"]["boxes_per_sample_cpu_ms"], 1
        ),
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"boxes_speedup": report["boxes_speedup"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
