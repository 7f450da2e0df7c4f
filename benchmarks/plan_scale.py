"""The planning table of docs/readme/scale.md: per-key-frame costs measured here (CPU), GPU costs
derived from published figures, multiplied out to full nuScenes on 1, 8 and 64 GPUs.

Measured inputs (JSON written by other benchmarks, plus two short measurements made here):
- docs/results/labels_scene0916_summary.json: `easyocc labels` on 12 key frames of the real
  scene-0916 (boxes + lidar providers): seconds per key frame of each stage;
- docs/results/train_step_cpu.json: benchmarks/bench_train_step.py (compact config);
- docs/results/nuscenes_tables.json: the reader at trainval size;
- here: compressing one dense 1600x900 float32 depth map into the provider cache, and counting the
  classes of the real Occ3D label files in ../shared/data (class statistics).

    python benchmarks/plan_scale.py --json docs/results/scale_planning.json
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "docs" / "results"
GPUS = (1, 8, 64)

# nuScenes v1.0-trainval key frames (samples): train 28,130, val 6,019.
KEY_FRAMES = {"train": 28_130, "trainval": 34_149}
CAMERAS = 6
PAST_FRAMES = 13  # PseudoLabelConfig.past_frames default

ASSUMPTIONS = {
    "gpu": "NVIDIA A100 (the published figures below are A100 figures; newer GPUs are not credited)",
    "grounding_dino_s_per_image": (
        1 / 8.37,
        "Grounding DINO Swin-T: 8.37 FPS on A100 (paper, appendix; cited in IDEA-Research/GroundingDINO#50)",
    ),
    "sam_encoder_s_per_image": (
        0.15,
        "SAM ViT-H image encoder ~0.15 s per image on A100 (Segment Anything project FAQ)",
    ),
    "sam_decoder_s_per_image": (
        0.01,
        "SAM mask decoder for the image's boxes: ~10 ms assumed (light transformer, batched prompts)",
    ),
    "metric3d_s_per_image": (
        1 / 9.5,
        "Metric3D v2 ViT-L: ~9.5 FPS on A100 (Metric3D v2 supplement; cited in hustvl/GaussTR#24)",
    ),
    "train_mfu": (
        0.15,
        "model FLOP utilisation of a small convnet step under bf16 autocast (grid sampling and Lovasz not counted)",
    ),
    "a100_bf16_peak_flops": (312e12, "A100 dense bf16 peak"),
    "loader_workers_per_gpu": (8, "DataLoader workers per GPU (CPU cores per GPU for decoding)"),
    "epochs": (24, "24 epochs of the train split, a common Occ3D schedule"),
    "ddp_efficiency": (
        {1: 1.0, 8: 0.9, 64: 0.8},
        "DDP scaling efficiency (6.19 M parameters: ~25 MB all-reduced per step)",
    ),
    "process_start_s": (
        120,
        "per labelling process: reader load (38.1 CPU s measured) + model loading (~60 s assumed) + margin",
    ),
}


def dense_depth_cache_cost() -> dict:
    """CPU seconds and MB to store one dense 1600x900 float32 depth map the way ProviderCache does."""
    rng = np.random.default_rng(0)
    v, _ = np.mgrid[0:900, 0:1600].astype(np.float32)
    depth = (1.5 * 1266 / np.maximum(v - 450, 1)).clip(0, 80).astype(np.float32)  # ground plane, sky clipped
    depth *= 1 + 0.01 * rng.standard_normal(depth.shape).astype(np.float32)  # a model's smooth noise
    result = {}
    for suffix, array in (("", depth), ("_float16", depth.astype(np.float16))):
        buffer, start = io.BytesIO(), time.process_time()
        np.savez_compressed(buffer, depth_m=array)
        result[f"cpu_s{suffix}"] = round(time.process_time() - start, 3)
        result[f"mb{suffix}"] = round(len(buffer.getvalue()) / 1e6, 2)
    return result


def class_count_cost() -> dict:
    """CPU ms per label file to count classes (read + count) and us per file for the cache key."""
    import hashlib
    import os

    from easyocc.runtime.contract.grid import OCC3D_NUSCENES
    from easyocc.runtime.dataset.labels import read_labels
    from easyocc.training.losses import count_classes

    files = sorted((PROJECT.parent / "shared" / "data" / "occ3d-samples").glob("*.npz"))
    if not files:
        return {}
    start = time.process_time()
    for _ in range(10):
        for path in files:
            labels = read_labels(path, OCC3D_NUSCENES)
            count_classes(labels.semantics, labels.mask("camera"))
    count_ms = 1e3 * (time.process_time() - start) / (10 * len(files))
    start = time.process_time()
    for _ in range(1000):
        for path in files:
            stat = os.stat(path)
            hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    key_us = 1e6 * (time.process_time() - start) / (1000 * len(files))
    return {"count_ms_per_file": round(count_ms, 2), "cache_key_us_per_file": round(key_us, 2)}


def hours(seconds: float) -> float:
    return round(seconds / 3600, 2)


def plan() -> dict:
    labels = json.loads((RESULTS / "labels_scene0916_summary.json").read_text())
    step = json.loads((RESULTS / "train_step_cpu.json").read_text())
    tables = json.loads((RESULTS / "nuscenes_tables.json").read_text())
    a = {k: v[0] if isinstance(v, tuple) else v for k, v in ASSUMPTIONS.items()}
    depth_cache = dense_depth_cache_cost()
    stats = class_count_cost()
    stages = labels["stage_seconds_per_key_frame"]

    # labelling, per key frame (6 images)
    gpu_s = CAMERAS * (a["grounding_dino_s_per_image"] + a["sam_encoder_s_per_image"] + a["sam_decoder_s_per_image"]
                       + a["metric3d_s_per_image"])  # fmt: skip
    cpu_s = stages["3d_stage"] + CAMERAS * depth_cache["cpu_s"]  # measured 3-D stage + dense depth cache writes
    per_gpu = {"1 process per GPU": gpu_s + cpu_s}
    k = math.ceil((gpu_s + cpu_s) / gpu_s)
    per_gpu[f"{k} processes per GPU"] = max(gpu_s, (gpu_s + cpu_s) / k)
    labelling = {}
    for layout, seconds in per_gpu.items():
        row = {}
        for gpus in GPUS:
            processes = gpus * (k if layout.startswith(str(k)) else 1)
            boundary = PAST_FRAMES * (processes - 1) * gpu_s / gpus  # worst case: past frames recomputed per shard
            total = KEY_FRAMES["train"] * seconds / gpus + boundary + a["process_start_s"]
            row[gpus] = hours(total)
        labelling[layout] = {"seconds_per_key_frame_per_gpu": round(seconds, 3), "hours": row}

    # training, per sample
    flops = 3 * 49.7e9  # forward 49.7 GFLOPs (easyocc report, compact); backward ~2x forward
    compute_s = flops / (a["a100_bf16_peak_flops"] * a["train_mfu"])
    data_s = (step["load_cpu_ms_per_sample"] + step.get("view_tables_cpu_ms", 0.0)) / 1e3 / a["loader_workers_per_gpu"]
    sample_s = max(compute_s, data_s)
    samples = a["epochs"] * KEY_FRAMES["train"]
    training = {gpus: hours(samples * sample_s / (gpus * a["ddp_efficiency"][gpus])) for gpus in GPUS}
    return {
        "measured_here": {
            "machine": step["machine"],
            "labelling_scene0916_boxes_lidar": {
                "seconds_per_key_frame": labels["seconds_per_key_frame"],
                "stages": stages,
            },
            "dense_depth_cache_write_per_image": depth_cache,
            "class_statistics": stats,
            "train_step_cpu": {k: step[k] for k in ("config", "input", "step_s", "load_cpu_ms_per_sample") if k in step}
            | {k: step[k] for k in ("step_cpu_s", "view_tables_cpu_ms") if k in step},
            "reader_trainval": {
                "load_cpu_s": tables["results"]["indexed"]["load_cpu_s"],
                "rss_mb": tables["results"]["indexed"]["rss_after_load_mb"],
            },
        },
        "assumptions": {k: (v[1] if isinstance(v, tuple) else v) for k, v in ASSUMPTIONS.items()}
        | {"values": {k: a[k] for k in a if k != "gpu"}},
        "derived": {
            "labelling_gpu_s_per_key_frame": round(gpu_s, 3),
            "labelling_cpu_s_per_key_frame": round(cpu_s, 3),
            "processes_per_gpu_to_hide_cpu": k,
            "train_compute_ms_per_sample": round(1e3 * compute_s, 2),
            "train_data_ms_per_sample": round(1e3 * data_s, 2),
            "train_samples": samples,
            "depth_cache_tb_train": round(KEY_FRAMES["train"] * CAMERAS * depth_cache["mb"] / 1e6, 2),
            "class_statistics_s_train_uncached": round(
                KEY_FRAMES["train"] * stats.get("count_ms_per_file", 0) / 1e3, 1
            ),
            "class_statistics_s_train_cached": round(
                KEY_FRAMES["train"] * stats.get("cache_key_us_per_file", 0) / 1e6, 2
            ),
        },
        "labelling_train_split_hours": labelling,
        "training_hours": training,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the plan here")
    args = parser.parse_args(argv)
    result = plan()
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
