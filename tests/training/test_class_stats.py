"""Class statistics for the loss weights: counted once, cached beside the labels keyed by the label
files, reused on a resume, and counted on rank 0 only and broadcast under torch.distributed."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from easyocc.training.config import load_config  # noqa: E402
from easyocc.training.data import OccDataset, class_counts, labels_fingerprint, shared_class_counts  # noqa: E402
from easyocc.training.losses import count_classes  # noqa: E402
from easyocc.training.trainer import train  # noqa: E402

from easyocc.testing import TINY_TRAIN_CONFIG as TINY_YAML  # noqa: E402  (training/configs/tiny.yaml)
from easyocc.testing import make_tiny_world  # noqa: E402
from easyocc.testing import tiny_model_config as tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp("synth"))


@pytest.fixture()
def labels(world, tmp_path) -> Path:
    """A private copy of the world's labels (the tests rewrite one)."""
    shutil.copytree(Path(world) / "gts", tmp_path / "labels" / "gts")
    return tmp_path / "labels"


def test_counted_once_then_read_from_the_cache(world, labels, caplog):
    dataset = OccDataset(world, labels, tiny_config())
    expected = np.zeros(18, np.int64)
    for index in range(len(dataset)):
        item = dataset.labels_of(index)
        expected += count_classes(item.semantics, item.mask("camera"))
    with caplog.at_level(logging.INFO, logger="easyocc.training.data"):
        first, source_first = class_counts(dataset)
        second, source_second = class_counts(OccDataset(world, labels, tiny_config()))
    assert (source_first, source_second) == ("computed", "cache")
    assert first.tolist() == second.tolist() == expected.tolist()
    assert [r.getMessage().split(" ")[2] for r in caplog.records] == ["counted", "cache"]
    stored = sorted((labels / "stats").glob("class_counts_camera_*.json"))
    assert len(stored) == 1
    record = json.loads(stored[0].read_text())
    assert record["frames"] == 4 and record["labelled_voxels"] == int(expected.sum())
    assert record["fingerprint"] == labels_fingerprint(dataset)
    # another mask is another statistic
    assert class_counts(OccDataset(world, labels, tiny_config(), mask="none"))[1] == "computed"


def test_a_rewritten_label_file_invalidates_the_cache(world, labels):
    dataset = OccDataset(world, labels, tiny_config())
    before, _ = class_counts(dataset)
    path = dataset.data.labels_path(dataset.samples[0], labels)
    with np.load(path) as data:
        arrays = {key: np.array(data[key]) for key in data.files}
    arrays["semantics"][arrays["mask_camera"].astype(bool)] = 0  # every observed voxel becomes class 0
    np.savez_compressed(path, **arrays)
    after, source = class_counts(OccDataset(world, labels, tiny_config()))
    assert source == "computed"
    assert after[0] > before[0] and after.sum() == before.sum()


def test_a_corrupt_cache_file_is_recounted(world, labels, caplog):
    dataset = OccDataset(world, labels, tiny_config())
    counts, _ = class_counts(dataset)
    (cached,) = (labels / "stats").glob("*.json")
    cached.write_text("{ not json")
    with caplog.at_level(logging.WARNING, logger="easyocc.training.data"):
        again, source = class_counts(dataset)
    assert source == "computed" and again.tolist() == counts.tolist()
    assert f"class statistics: unreadable cache {cached}; recounting" in caplog.text


def test_a_labels_folder_that_cannot_hold_the_cache_only_logs(world, labels, caplog):
    (labels / "stats").write_text("a file where the stats folder would go")
    with caplog.at_level(logging.WARNING, logger="easyocc.training.data"):
        counts, source = class_counts(OccDataset(world, labels, tiny_config()))
    assert source == "computed" and counts.sum() > 0
    assert f"class statistics: cannot cache in {labels / 'stats'} (" in caplog.text


def test_resume_reads_the_cache(world, tmp_path, caplog):
    overrides = [f"data.root={world}", f"out_dir={tmp_path / 'run'}", "data.val_scenes=0"]
    with caplog.at_level(logging.INFO, logger="easyocc.training.data"):
        train(load_config(TINY_YAML, [*overrides, "optim.iters=1"]), progress=False)
        assert "class statistics: counted 4 label files" in caplog.text or "class statistics: cache hit" in caplog.text
        caplog.clear()
        resumed = train(load_config(TINY_YAML, [*overrides, "optim.iters=2"]), progress=False)
    assert resumed["step"] == 2 and len(resumed["losses"]) == 1  # it resumed
    assert "class statistics: cache hit" in caplog.text and "counted" not in caplog.text


def _rank(rank: int, world_size: int, port: int, data: str, labels: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        counts, source = shared_class_counts(OccDataset(data, labels, tiny_config()))
        Path(out, f"rank{rank}.json").write_text(json.dumps({"counts": counts.tolist(), "source": source}))
    finally:
        torch.distributed.destroy_process_group()


def test_rank_zero_counts_and_broadcasts(world, labels, tmp_path):
    torch.multiprocessing.spawn(_rank, args=(2, free_port(), world, str(labels), str(tmp_path)), nprocs=2)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["source"] for r in results] == ["computed", "broadcast"]
    assert results[0]["counts"] == results[1]["counts"]
    assert results[0]["counts"] == class_counts(OccDataset(world, labels, tiny_config()))[0].tolist()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
