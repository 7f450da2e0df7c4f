"""Labelling over many processes and nodes: one shard of the key frames per process, and one merged
summary with the throughput a user plans with.

Process `rank` of `world` (RANK / WORLD_SIZE: set by torchrun, or by hand from a Slurm array's
SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT) labels a contiguous shard of the key frames, in scene
order, so a key frame's past frames are mostly on the same process. Every process writes
<out>/summary_rank<r>.json; then <out>/summary.json merges them: with a process group (torchrun), rank
0 writes it after a barrier; without one (array tasks), every process rewrites it when it finishes, so
the last one to finish leaves the merge of all shards.
"""

from __future__ import annotations

import json
from pathlib import Path

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic

MERGED_FILE = "summary.json"
COUNTS = ("labelled", "skipped_finished", "failed", "cache_hits", "cache_misses")


def shard_bounds(count: int, rank: int, world: int) -> tuple[int, int]:
    """[start, stop) of shard `rank` of `world` over `count` items: contiguous, disjoint, complete."""
    if world < 1 or not 0 <= rank < world:
        raise EasyOccError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    return count * rank // world, count * (rank + 1) // world


def shard(items: list, rank: int, world: int) -> list:
    """Contiguous, disjoint shard `rank` of `world` (contiguous keeps past frames on the same rank)."""
    start, stop = shard_bounds(len(items), rank, world)
    return items[start:stop]


def summary_path(out, rank: int) -> Path:
    return Path(out) / f"summary_rank{rank}.json"


def merge_summaries(summaries: list[dict], world: int) -> dict:
    """One summary over the ranks' summaries: summed counts, all failures, the shards, and per key frame
    the seconds of each stage (segmenter, depth, provider-cache reads and writes, 3-D stage = the rest)
    and the key frames per hour."""
    ranks = sorted(s["rank"] for s in summaries)
    merged = {
        "world_size": world,
        "ranks_reported": ranks,
        "ranks_missing": [r for r in range(world) if r not in ranks],
        **{key: sum(int(s.get(key, 0)) for s in summaries) for key in COUNTS},
        "failures": [f for s in sorted(summaries, key=lambda s: s["rank"]) for f in s.get("failures", [])],
        "shards": [s["shard"] for s in sorted(summaries, key=lambda s: s["rank"]) if "shard" in s],
    }
    providers = {json.dumps(s["providers"], sort_keys=True) for s in summaries if "providers" in s}
    if providers:  # the stage costs below are per provider: say which (several: shards labelled differently)
        merged["providers"] = [json.loads(p) for p in sorted(providers)]
    labelled = merged["labelled"]
    label_s = sum(float(s.get("label_seconds", 0.0)) for s in summaries)
    if labelled and label_s > 0:
        kinds = ("segment", "depth", "cache_io")
        provider = {k: sum(float(s.get("provider_seconds", {}).get(k, 0.0)) for s in summaries) for k in kinds}
        merged["seconds_per_key_frame"] = round(label_s / labelled, 4)
        merged["stage_seconds_per_key_frame"] = {
            "segmenter": round(provider["segment"] / labelled, 4),
            "depth": round(provider["depth"] / labelled, 4),
            "cache_io": round(provider["cache_io"] / labelled, 4),
            "3d_stage": round((label_s - sum(provider.values())) / labelled, 4),
        }
        merged["key_frames_per_hour_per_process"] = round(3600 * labelled / label_s, 1)
    walls = [float(s["wall_seconds"]) for s in summaries if s.get("wall_seconds")]
    if labelled and walls:
        merged["wall_seconds"] = round(max(walls), 2)  # the slowest process ends the run
        merged["key_frames_per_hour"] = round(3600 * labelled / max(walls), 1)
    return merged


def merge_summary_files(out, world: int) -> dict:
    """Merge <out>/summary_rank<r>.json of ranks 0..world-1 (absent ones are listed as missing) into
    <out>/summary.json (written atomically); returns the merged summary."""
    summaries = []
    for rank in range(world):
        path = summary_path(out, rank)
        if path.is_file():
            try:
                summaries.append(json.loads(path.read_text()))
            except json.JSONDecodeError as exc:
                raise EasyOccError(f"labelling summary {path}: invalid JSON ({exc.msg})") from None
    merged = merge_summaries(summaries, world)
    write_json_atomic(Path(out) / MERGED_FILE, merged)
    return merged


def bind_local_gpu(local_rank: int) -> bool:
    """Under torchrun, make cuda:<LOCAL_RANK mod GPUs> the current device, so providers that ask for
    "cuda" do not all land on cuda:0; more processes than GPUs share them round-robin (a process
    spends much of a key frame on the CPU: see the planning table in docs/readme/scale.md).
    No-op without torch or CUDA; True when bound."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    if not torch.cuda.is_available():
        return False
    torch.cuda.set_device(local_rank % torch.cuda.device_count())
    return True
