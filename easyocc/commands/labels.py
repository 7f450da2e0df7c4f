"""`easyocc labels`: build Occ3D pseudo-labels for a nuScenes-layout dataset.

Provider outputs are cached per image (<out>/cache unless --cache), finished samples are skipped
(resume), every file is written atomically, and under torchrun each rank (RANK / WORLD_SIZE) takes a
disjoint, contiguous shard of the samples (gloo process group on CPU, for the final barrier and the
summed counts). A sample whose inputs or providers fail is skipped with its reason logged, and
retried on the next run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import yaml

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.runtime.dataset.labels import labels_path, read_labels

log = logging.getLogger("easyocc.labels")
RUN_FILE = "pseudo_labels.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc labels", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="nuScenes-layout dataset folder (real or synthetic)")
    parser.add_argument("--out", required=True, help="output folder: gts/<scene>/<token>/labels.npz")
    parser.add_argument(
        "--segmenter", default="boxes", help="ground-truth, simulated-low, simulated-high, boxes, grounded-sam"
    )
    parser.add_argument(
        "--depth",
        default="lidar",
        help="ground-truth, simulated-low, simulated-high, lidar, metric3d, depth-anything, aligned-<name>",
    )
    parser.add_argument(
        "--frames", type=int, default=None, help="previous key frames merged per key frame (default 13)"
    )
    parser.add_argument("--scene", action="append", help="only these scenes (repeatable)")
    parser.add_argument(
        "--limit", type=int, default=None, help="at most this many key frames per scene (from the start)"
    )
    parser.add_argument(
        "--models", help="folder of local model folders: grounding-dino/, sam/, metric3d/, depth-anything/"
    )
    parser.add_argument("--vocabulary", help="Grounded-SAM vocabulary YAML (default: training/data/vocabulary.yaml)")
    parser.add_argument("--config", help="YAML file of PseudoLabelConfig fields")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field (repeatable)"
    )
    parser.add_argument("--no-dynamic-filter", action="store_true", help="also take dynamic classes from past frames")
    parser.add_argument("--no-outlier-removal", action="store_true", help="skip statistical outlier removal")
    parser.add_argument("--cache", help="provider output cache folder (default <out>/cache)")
    parser.add_argument("--no-cache", action="store_true", help="do not cache provider outputs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated providers")
    parser.add_argument("--overwrite", action="store_true", help="redo finished samples; allow changed settings")
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="score against ground-truth labels in --data, and the next key frame's lidar",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def make_config(args):
    from easyocc.training.pseudo.pipeline import PseudoLabelConfig

    fields = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise EasyOccError(f"config file not found: {path}")
        fields.update(yaml.safe_load(path.read_text()) or {})
    for item in args.set:
        if "=" not in item:
            raise EasyOccError(f"--set expects FIELD=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        fields[key.strip()] = yaml.safe_load(value)
    if args.frames is not None:
        fields["frames"] = args.frames
    if args.no_dynamic_filter:
        fields["dynamic_filter"] = False
    if args.no_outlier_removal:
        fields["outlier_removal"] = False
    return PseudoLabelConfig.from_dict(fields)


def shard(items: list, rank: int, world: int) -> list:
    """Contiguous, disjoint shard `rank` of `world` (contiguous keeps past frames on the same rank)."""
    start, stop = len(items) * rank // world, len(items) * (rank + 1) // world
    return items[start:stop]


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
    return rank, world, group


def run(args) -> dict:
    from tqdm import tqdm

    from easyocc.runtime.dataset.labels import write_labels
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset
    from easyocc.training.pseudo.cache import ProviderCache
    from easyocc.training.pseudo.evaluate import LabelQuality, next_frame_lidar_fraction
    from easyocc.training.pseudo.pipeline import PseudoLabeler
    from easyocc.training.pseudo.providers import build_depth, build_segmenter

    config = make_config(args)
    dataset = NuScenesDataset(args.data)
    out = Path(args.out)
    rank, world, group = _distributed()
    settings = {
        "data": str(Path(args.data).resolve()),
        "segmenter": args.segmenter,
        "depth": args.depth,
        "seed": args.seed,
        "config": config.to_dict(),
    }
    run_file = out / RUN_FILE
    if run_file.is_file() and not args.overwrite:
        previous = json.loads(run_file.read_text())
        if previous != settings:
            changed = sorted(k for k in settings if previous.get(k) != settings[k])
            raise EasyOccError(
                f"{run_file} was made with other settings ({', '.join(changed)}); use another --out or --overwrite"
            )
    if rank == 0:
        write_json_atomic(run_file, settings)
    segmenter = build_segmenter(args.segmenter, args.models, args.vocabulary, seed=args.seed)
    depth = build_depth(args.depth, args.models, seed=args.seed)
    cache = ProviderCache(None if args.no_cache else (args.cache or out / "cache"))
    labeler = PseudoLabeler(dataset, segmenter, depth, config, cache)

    scenes = args.scene or dataset.scene_names
    work = []
    for scene in scenes:
        samples = dataset.samples(scene)[: args.limit]
        work += [(samples, i) for i in range(len(samples))]
    mine = shard(work, rank, world)
    counts = {"labelled": 0, "skipped_finished": 0, "failed": 0}
    failures, timings = [], []
    quality, lidar_fractions = LabelQuality(), []
    progress = tqdm(mine, desc=f"labels[{rank}/{world}]", disable=args.quiet, position=rank, file=sys.stderr)
    for samples, index in progress:
        sample = samples[index]
        path = labels_path(out, sample.scene_name, sample.token)
        _remove_stale_temporaries(path.parent)
        if not args.overwrite and is_finished(path, config.grid):
            counts["skipped_finished"] += 1
            continue
        try:
            start = time.perf_counter()
            labels, info = labeler.label(samples, index)
            timings.append(time.perf_counter() - start)
        except EasyOccError as exc:
            log.warning("skipped sample %s (%s #%d): %s", sample.token, sample.scene_name, index, exc)
            failures.append({"sample": sample.token, "reason": str(exc)})
            counts["failed"] += 1
            continue
        write_labels(path, labels)
        counts["labelled"] += 1
        if args.evaluate:
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
    }
    if timings:
        summary["seconds_per_sample"] = sum(timings) / len(timings)
    if args.evaluate:
        if quality.metric.frames:
            summary["quality"] = quality.results()
        if lidar_fractions:
            summary["next_frame_lidar_in_occupied"] = sum(f["fraction"] for f in lidar_fractions) / len(lidar_fractions)
            summary["next_frame_lidar_within_1_voxel"] = sum(
                f["fraction_within_1_voxel"] for f in lidar_fractions
            ) / len(lidar_fractions)
    write_json_atomic(out / f"summary_rank{rank}.json", summary)
    if group is not None:
        import torch

        totals = torch.tensor([counts["labelled"], counts["skipped_finished"], counts["failed"]], dtype=torch.int64)
        group.all_reduce(totals)
        summary["total"] = dict(zip(("labelled", "skipped_finished", "failed"), totals.tolist()))
        group.barrier()
        group.destroy_process_group()
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = run(args)
    except EasyOccError as exc:
        print(f"easyocc labels: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=2))
    if summary["failed"]:
        print(
            f"easyocc labels: {summary['failed']} sample(s) skipped; reasons in the log and summary_rank{summary['rank']}.json",
            file=sys.stderr,
        )
        return 1
    return 0
