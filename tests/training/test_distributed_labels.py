"""Labelling over several processes: two gloo processes (torchrun's environment) label a tiny synthetic
scene in disjoint shards through one shared provider cache and leave one merged summary; Slurm-array
style tasks (RANK / WORLD_SIZE, no process group) merge too."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from easyocc.training.pseudo.run import LabelsConfig, run_labels  # noqa: E402
from easyocc.training.pseudo.shards import (  # noqa: E402
    bind_local_gpu,
    merge_summaries,
    merge_summary_files,
    shard_bounds,
)

FRAMES = 5
CAMERAS = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> str:
    """One scene of 5 key frames at 128x64 with per-image ground truth (the ground-truth providers)."""
    from easyocc.runtime.contract.grid import GridSpec
    from easyocc.training.synth import SynthConfig, generate_dataset

    config = SynthConfig(
        scenes=1, frames=FRAMES, image_size=(128, 64), grid=GridSpec(voxel_size=1.6), lidar_beams=8,
        lidar_azimuth_steps=180, subsamples=1,
    )  # fmt: skip
    return str(generate_dataset(tmp_path_factory.mktemp("synth"), config, progress=False))


def job(world, out, **extra) -> LabelsConfig:
    return LabelsConfig(data=world, out=str(out), segmenter="ground-truth", depth="ground-truth", **extra)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank(rank: int, world_size: int, port: int, data: str, out: str, overwrite: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    summary = run_labels(job(data, out, overwrite=overwrite), progress=False)
    Path(out, f"returned_rank{rank}.json").write_text(json.dumps(summary))


def two_processes(world, out, overwrite=False) -> list[dict]:
    torch.multiprocessing.spawn(_rank, args=(2, free_port(), world, str(out), overwrite), nprocs=2)
    return [json.loads((out / f"summary_rank{rank}.json").read_text()) for rank in range(2)]


def test_two_gloo_processes_label_disjoint_shards_with_one_cache_and_one_summary(world, tmp_path):
    out = tmp_path / "labels"
    ranks = two_processes(world, out)
    # disjoint, contiguous shards covering all five key frames: [0, 2) and [2, 5)
    assert [(r["shard"]["start"], r["shard"]["stop"]) for r in ranks] == [(0, 2), (2, 5)]
    assert [r["labelled"] for r in ranks] == [2, 3] and all(r["failed"] == 0 for r in ranks)
    assert len(list(out.glob("gts/*/*/labels.npz"))) == FRAMES
    # one shared provider cache: every image once per kind, whichever rank ran it first
    for kind in ("semantics", "depth"):
        assert len(list((out / "cache" / kind).rglob("*.npz"))) == FRAMES * CAMERAS
    # rank 1 needs rank 0's frames as past frames: it runs or reads them, so the ranks did >= 60 misses
    assert sum(r["cache_misses"] for r in ranks) >= FRAMES * CAMERAS * 2
    merged = json.loads((out / "summary.json").read_text())
    assert merged["world_size"] == 2 and merged["ranks_reported"] == [0, 1] and merged["ranks_missing"] == []
    assert merged["labelled"] == FRAMES and merged["failed"] == 0 and merged["failures"] == []
    assert merged["cache_misses"] == sum(r["cache_misses"] for r in ranks)
    assert merged["shards"] == [r["shard"] for r in ranks]
    assert merged["providers"] == [{"depth": "ground-truth", "segmenter": "ground-truth"}]
    stages = merged["stage_seconds_per_key_frame"]
    assert stages["segmenter"] > 0 and stages["depth"] > 0 and stages["cache_io"] > 0 and stages["3d_stage"] > 0
    assert merged["seconds_per_key_frame"] == pytest.approx(sum(stages.values()), abs=1e-3)
    assert merged["key_frames_per_hour_per_process"] == pytest.approx(3600 / merged["seconds_per_key_frame"], rel=1e-2)
    # the all-reduced totals each rank returned agree with the merged file
    returned = json.loads((out / "returned_rank1.json").read_text())
    assert returned["total"] == {"labelled": FRAMES, "skipped_finished": 0, "failed": 0}

    # overwrite: the labels are redone, the providers are never run again (the shared cache serves both ranks)
    redo = two_processes(world, out, overwrite=True)
    assert sum(r["labelled"] for r in redo) == FRAMES and sum(r["cache_misses"] for r in redo) == 0
    assert json.loads((out / "summary.json").read_text())["cache_hits"] == sum(r["cache_hits"] for r in redo)


def test_array_tasks_without_a_process_group_merge_as_they_finish(world, tmp_path, monkeypatch):
    """Slurm array style: RANK and WORLD_SIZE set, no MASTER_ADDR; each task rewrites summary.json."""
    out = tmp_path / "labels"
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    run_labels(job(world, out), progress=False)
    partial = json.loads((out / "summary.json").read_text())
    assert partial["ranks_reported"] == [2] and partial["ranks_missing"] == [0, 1] and partial["labelled"] == 2
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        run_labels(job(world, out), progress=False)
    merged = json.loads((out / "summary.json").read_text())
    assert merged["ranks_missing"] == [] and merged["labelled"] == FRAMES
    assert [(s["start"], s["stop"]) for s in merged["shards"]] == [(0, 1), (1, 3), (3, 5)]


def test_merge_sums_counts_and_derives_throughput():
    summaries = [
        {"rank": 1, "labelled": 3, "skipped_finished": 1, "failed": 1, "failures": [{"sample": "b"}], "cache_hits": 4,
         "cache_misses": 8, "label_seconds": 9.0, "provider_seconds": {"segment": 3.0, "depth": 1.5, "cache_io": 0.5},
         "wall_seconds": 10.0, "shard": {"rank": 1, "start": 5, "stop": 10}},
        {"rank": 0, "labelled": 2, "skipped_finished": 0, "failed": 0, "failures": [], "cache_hits": 0,
         "cache_misses": 12, "label_seconds": 6.0, "provider_seconds": {"segment": 2.0, "depth": 1.0},
         "wall_seconds": 7.0, "shard": {"rank": 0, "start": 0, "stop": 5}},
    ]  # fmt: skip
    merged = merge_summaries(summaries, world=3)
    assert merged["ranks_reported"] == [0, 1] and merged["ranks_missing"] == [2]
    assert (merged["labelled"], merged["skipped_finished"], merged["failed"]) == (5, 1, 1)
    assert (merged["cache_hits"], merged["cache_misses"]) == (4, 20)
    assert merged["failures"] == [{"sample": "b"}] and [s["rank"] for s in merged["shards"]] == [0, 1]
    assert merged["seconds_per_key_frame"] == 3.0
    # rank 0 reported no cache_io (an older summary): counted as 0
    assert merged["stage_seconds_per_key_frame"] == {"segmenter": 1.0, "depth": 0.5, "cache_io": 0.1, "3d_stage": 1.4}
    assert merged["key_frames_per_hour_per_process"] == 1200.0
    assert merged["wall_seconds"] == 10.0 and merged["key_frames_per_hour"] == 1800.0


def test_shard_bounds_and_bad_summaries(tmp_path):
    bounds = [shard_bounds(10, rank, 4) for rank in range(4)]
    assert bounds == [(0, 2), (2, 5), (5, 7), (7, 10)]
    with pytest.raises(EasyOccError, match=r"^RANK=4 is not in \[0, WORLD_SIZE=4\)$"):
        shard_bounds(10, 4, 4)
    (tmp_path / "summary_rank0.json").write_text("{")
    with pytest.raises(EasyOccError, match=r"summary_rank0.json: invalid JSON \(Expecting property name"):
        merge_summary_files(tmp_path, 1)


def test_local_gpu_binding_is_a_no_op_without_cuda():
    # under torchrun each labelling process takes cuda:<LOCAL_RANK>; on a CPU-only machine nothing changes
    assert bind_local_gpu(0) is torch.cuda.is_available()
    assert bind_local_gpu(10_000) is torch.cuda.is_available()  # more processes than GPUs: round-robin


def test_labelling_an_official_split(nuscenes_root, tmp_path):
    # scene-0916 is a mini_val scene: split=mini_val selects it, split=train selects nothing and is refused
    config = LabelsConfig(data=str(nuscenes_root), out=str(tmp_path / "out"), split="train", frames=1)
    with pytest.raises(EasyOccError, match=r"^labels: split 'train' selects no scene of .*nuscenes-scene-0916$"):
        run_labels(config, progress=False)
    summary = run_labels(
        LabelsConfig(data=str(nuscenes_root), out=str(tmp_path / "out"), split="mini_val", frames=1), progress=False
    )
    assert summary["labelled"] == 1 and summary["shard"] == {"rank": 0, "start": 0, "stop": 1}
