"""A labelling run over a dataset: `run_labels(LabelsConfig(...))`, what `easyocc labels` calls.

Provider outputs are cached per image (<out>/cache unless `cache`), finished samples are skipped
(resume), every file is written atomically, and under torchrun each rank (RANK / WORLD_SIZE) takes a
disjoint, contiguous shard of the samples (gloo process group on CPU, for the final barrier and the
summed counts). A sample whose inputs or providers fail is skipped with its reason logged, and
retried on the next run. Each rank writes summary_rank<r>.json; summary.json merges them (counts,
shards, per-stage seconds and key frames per hour: training/pseudo/shards.py).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from easyocc.runtime.contract.config import setting
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.runtime.dataset.labels import labels_path, read_labels
from easyocc.runtime.dataset.splits import OFFICIAL_SPLITS, scenes_in_split
from easyocc.training.pseudo.pipeline import PseudoLabelConfig
from easyocc.training.pseudo.shards import bind_local_gpu, merge_summary_files, shard, shard_bounds, summary_path

__all__ = ["LabelsConfig", "run_labels", "shard"]

log = logging.getLogger("easyocc.labels")
RUN_FILE = "pseudo_labels.json"


@dataclass(frozen=True)
class LabelsConfig:
    """One labelling run: dataset, providers, which key frames, and the 3-D stage."""

    data: str = ""
    """nuScenes-layout dataset folder (real or synthetic)."""
    out: str = ""
    """Output folder: gts/<scene>/<token>/labels.npz, pseudo_labels.json, summary_rank<r>.json."""
    segmenter: str = "boxes"
    """ground-truth, simulated-low, simulated-high, boxes or grounded-sam."""
    depth: str = "lidar"
    """ground-truth, simulated-low, simulated-high, lidar, metric3d, depth-anything or aligned-<name>."""
    anchor: str = "none"
    """Metric anchor of aligned-<name> depth: 'none' (camera-only: no lidar read; lidar serves only
    `evaluate`) or 'lidar' (fit to the key frame's projected lidar)."""
    scenes: tuple[str, ...] = ()
    """Only these scenes (empty = every scene of the dataset, or of `split`)."""
    split: str = setting("", choices=("", *OFFICIAL_SPLITS))
    """Only the scenes of this official nuScenes split (e.g. train: the 700 scenes a model trains on)."""
    frames: int = setting(0, min=0)
    """At most this many key frames per scene, from the start (0 = all)."""
    models: str = ""
    """Folder of local model folders: grounding-dino/, sam/, metric3d/, depth-anything/."""
    vocabulary: str = ""
    """Grounded-SAM vocabulary YAML ('' = training/data/vocabulary.yaml)."""
    cache: str = ""
    """Provider output cache folder ('' = <out>/cache)."""
    use_cache: bool = True
    """Cache provider outputs (semantics and depth per image)."""
    seed: int = setting(0, min=0)
    """Seed of the simulated providers."""
    overwrite: bool = False
    """Redo finished samples, and allow settings that differ from the folder's pseudo_labels.json."""
    evaluate: bool = False
    """Score against the ground-truth labels in `data`, and against the next key frame's lidar."""
    pseudo: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    """The 3-D stage: temporal merge, filters, voxelization."""


def is_finished(path: Path, grid) -> bool:
    if not path.is_file():
        return False
    try:
        read_labels(path, grid)
        return True
    except EasyOccError:
        log.warning("unreadable labels %s will be redone", path)
        return False


def _remove_stale_temporaries(folder: Path) -> None:
    # A run killed inside atomic_path leaves '.labels.npz.*.tmp' beside the label; never a partial label.
    for stale in folder.glob(".labels.npz.*.tmp") if folder.is_dir() else ():
        stale.unlink(missing_ok=True)


def _distributed():
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if not 0 <= rank < world:
        raise EasyOccError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    group = None
    if world > 1 and "MASTER_ADDR" in os.environ:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo", rank=rank, world_size=world)
        group = dist
    if "LOCAL_RANK" in os.environ:
        bind_local_gpu(int(os.environ["LOCAL_RANK"]))
    return rank, world, group


def _check_settings(job: LabelsConfig, out: Path, rank: int) -> None:
    """Refuse to resume into a folder labelled with other settings (unless overwrite); record them."""
    settings = {
        "data": str(Path(job.data).resolve()),
        "segmenter": job.segmenter,
        "depth": job.depth,
        "anchor": job.anchor,
        "seed": job.seed,
        "config": job.pseudo.to_dict(),
    }
    run_file = out / RUN_FILE
    if run_file.is_file() and not job.overwrite:
        previous = json.loads(run_file.read_text())
        if previous != settings:
            changed = sorted(k for k in settings if previous.get(k) != settings[k])
            raise EasyOccError(
                f"{run_file} was made with other settings ({', '.join(changed)}); use another --out or --overwrite"
            )
    if rank == 0:
        write_json_atomic(run_file, settings)


def depth_reads_lidar(depth: str, anchor: str) -> bool:
    """Whether this depth choice reads lidar while labelling: lidar depth, the lidar-relative
    stand-in (lidar stands in for a relative model's output), or an aligned depth anchored to lidar."""
    base = depth[len("aligned-") :] if depth.startswith("aligned-") else depth
    return base in ("lidar", "lidar-relative") or (depth.startswith("aligned-") and anchor == "lidar")


def run_labels(job: LabelsConfig, progress: bool = True) -> dict:
    """Label every (selected) key frame of `job.data` into `job.out`; the summary of this rank."""
    from easyocc.runtime.dataset.labels import write_labels
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset
    from easyocc.training.pseudo.align import ANCHORS
    from easyocc.training.pseudo.cache import ProviderCache
    from easyocc.training.pseudo.evaluate import DepthQuality, LabelQuality, next_frame_lidar_fraction
    from easyocc.training.pseudo.pipeline import PseudoLabeler
    from easyocc.training.pseudo.registry import build_depth, build_segmenter
    from tqdm import tqdm

    if not job.data or not job.out:
        raise EasyOccError("labels: give the dataset (--data) and the output folder (--out)")
    config = job.pseudo
    dataset = NuScenesDataset(job.data)
    out = Path(job.out)
    rank, world, group = _distributed()
    _check_settings(job, out, rank)
    segmenter = build_segmenter(job.segmenter, job.models or None, job.vocabulary or None, seed=job.seed)
    if job.anchor not in ANCHORS:
        raise EasyOccError(f"unknown anchor '{job.anchor}'; known: {', '.join(ANCHORS)}")
    if job.anchor == "lidar" and not job.depth.startswith("aligned-"):
        raise EasyOccError(f"--anchor lidar applies to aligned-<name> depth only, not '{job.depth}'")
    depth = build_depth(job.depth, job.models or None, seed=job.seed, anchor=job.anchor)
    cache = ProviderCache((job.cache or out / "cache") if job.use_cache else None)
    depth_quality = DepthQuality() if job.evaluate else None
    labeler = PseudoLabeler(
        dataset,
        segmenter,
        depth,
        config,
        cache,
        depth_observer=depth_quality.update if depth_quality else None,
        read_lidar=depth_reads_lidar(job.depth, job.anchor),
    )
    stage_seconds, stage_cpu = [], []

    work = []
    scenes = job.scenes or (scenes_in_split(dataset.scene_names, job.split) if job.split else dataset.scene_names)
    if not scenes:
        raise EasyOccError(f"labels: split '{job.split}' selects no scene of {job.data}")
    for scene in scenes:
        samples = dataset.samples(scene)[: job.frames or None]
        work += [(samples, i) for i in range(len(samples))]
    counts = {"labelled": 0, "skipped_finished": 0, "failed": 0}
    failures, timings = [], []
    quality, lidar_fractions = LabelQuality(), []
    first, stop = shard_bounds(len(work), rank, world)
    mine, started = work[first:stop], time.perf_counter()
    bar = tqdm(mine, desc=f"labels[{rank}/{world}]", disable=not progress, position=rank, file=sys.stderr)
    for samples, index in bar:
        sample = samples[index]
        path = labels_path(out, sample.scene_name, sample.token)
        _remove_stale_temporaries(path.parent)
        if not job.overwrite and is_finished(path, config.grid):
            counts["skipped_finished"] += 1
            continue
        try:
            start, providers = time.perf_counter(), labeler.provider_seconds
            cpu, providers_cpu = time.process_time(), labeler.provider_cpu_seconds
            labels, info = labeler.label(samples, index)
            timings.append(time.perf_counter() - start)
            stage_seconds.append(timings[-1] - (labeler.provider_seconds - providers))
            stage_cpu.append(time.process_time() - cpu - (labeler.provider_cpu_seconds - providers_cpu))
        except EasyOccError as exc:
            log.warning("skipped sample %s (%s #%d): %s", sample.token, sample.scene_name, index, exc)
            failures.append({"sample": sample.token, "reason": str(exc)})
            counts["failed"] += 1
            continue
        write_labels(path, labels)
        counts["labelled"] += 1
        if job.evaluate:
            truth_path = dataset.labels_path(sample)
            if truth_path.is_file():
                quality.update(labels, read_labels(truth_path, config.grid))
            if sample.lidar is not None and index + 1 < len(samples) and samples[index + 1].lidar is not None:
                lidar_fractions.append(
                    next_frame_lidar_fraction(dataset, labels, sample, samples[index + 1], config.grid)
                )
    summary = {
        "rank": rank,
        "world_size": world,
        **counts,
        "failures": failures,
        "cache_hits": cache.hits,
        "cache_misses": cache.misses,
        "shard": {"rank": rank, "start": first, "stop": stop},
        "providers": {"segmenter": job.segmenter, "depth": job.depth},
        "label_seconds": round(sum(timings), 3),
        "provider_seconds": {kind: round(seconds, 3) for kind, seconds in cache.seconds.items()},
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
    summary.update(anchor=job.anchor, depth_reads_lidar=depth_reads_lidar(job.depth, job.anchor))
    if timings:
        summary["seconds_per_sample"] = sum(timings) / len(timings)
        summary["stage3_seconds_per_sample"] = sum(stage_seconds) / len(stage_seconds)
        summary["stage3_cpu_seconds_per_sample"] = sum(stage_cpu) / len(stage_cpu)
    if getattr(depth, "images", 0):
        summary["alignment"] = {
            "seconds_per_image": depth.seconds / depth.images,
            "cpu_seconds_per_image": depth.cpu_seconds / depth.images,
            "images": depth.images,
            "cues": {f"{channel}:{cue}": n for (channel, cue), n in sorted(depth.cues.items())},
        }
    if job.evaluate:
        if depth_quality.results():
            summary["depth"] = depth_quality.results()
        if quality.metric.frames:
            summary["quality"] = quality.results()
        if lidar_fractions:
            summary["next_frame_lidar_in_occupied"] = sum(f["fraction"] for f in lidar_fractions) / len(lidar_fractions)
            summary["next_frame_lidar_within_1_voxel"] = sum(
                f["fraction_within_1_voxel"] for f in lidar_fractions
            ) / len(lidar_fractions)
    write_json_atomic(summary_path(out, rank), summary)
    if group is None:
        merge_summary_files(out, world)  # array tasks: the last one to finish leaves the full merge
    else:
        import torch

        totals = torch.tensor([counts["labelled"], counts["skipped_finished"], counts["failed"]], dtype=torch.int64)
        group.all_reduce(totals)
        summary["total"] = dict(zip(("labelled", "skipped_finished", "failed"), totals.tolist()))
        group.barrier()  # every rank's summary is written
        if rank == 0:
            merge_summary_files(out, world)
        group.destroy_process_group()
    return summary
