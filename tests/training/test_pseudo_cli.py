"""`easyocc labels`: resume after a killed run, provider cache, sharding over ranks, errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from easyocc.runtime.dataset.labels import read_labels
from easyocc.training.pseudo.run import shard

from easyocc.cli import main as cli_main
from easyocc.commands.labels import main


def labels_cli(argv):
    return cli_main(["labels", *argv])


LIMIT = 6


def _args(data, out, *extra):
    return [
        "--data",
        str(data),
        "--out",
        str(out),
        "--segmenter",
        "boxes",
        "--depth",
        "lidar",
        "--frames",
        str(LIMIT),
        "pseudo.past_frames=2",
        "-q",
        *extra,
    ]


def _labels(out):
    return sorted(out.glob("gts/*/*/labels.npz"))


def test_shard_is_disjoint_contiguous_and_complete():
    items = list(range(11))
    shards = [shard(items, rank, 3) for rank in range(3)]
    assert sum(shards, []) == items and all(shards)


def test_killed_run_resumes_without_redoing_finished_samples(nuscenes_root, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "easyocc", "labels", *_args(nuscenes_root, out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not _labels(out) and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {path: path.stat().st_mtime_ns for path in _labels(out)}
    assert finished, "the run was killed before it finished any sample"
    for path in finished:
        read_labels(path)  # every label on disk is complete
    assert main(_args(nuscenes_root, out)) == 0
    summary = json.loads((out / "summary_rank0.json").read_text())
    assert summary["skipped_finished"] == len(finished)
    assert summary["labelled"] == LIMIT - len(finished)
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())
    assert len(_labels(out)) == LIMIT and not list(out.glob("gts/**/*.tmp"))
    # a third run does nothing, and re-running the 3-D stage with other settings reuses the provider cache
    assert main(_args(nuscenes_root, out)) == 0
    assert json.loads((out / "summary_rank0.json").read_text())["skipped_finished"] == LIMIT
    other = tmp_path / "other"
    assert main(_args(nuscenes_root, other, "--cache", str(out / "cache"), "pseudo.outlier_removal=false")) == 0
    summary = json.loads((other / "summary_rank0.json").read_text())
    assert summary["cache_misses"] == 0 and summary["cache_hits"] > 0


def test_changed_settings_on_resume_are_refused(nuscenes_root, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*_args(nuscenes_root, out), "--frames", "1"]) == 0
    assert labels_cli([*_args(nuscenes_root, out), "--frames", "1", "pseudo.min_points=3"]) == 2
    assert "other settings (config)" in capsys.readouterr().err


def test_bad_arguments_give_one_line_errors(nuscenes_root, tmp_path, capsys):
    assert labels_cli(_args(nuscenes_root, tmp_path / "a", "nonsense")) == 2
    assert "config override 'nonsense' must look like key=value" in capsys.readouterr().err
    assert labels_cli([*_args(nuscenes_root, tmp_path / "b")[:4], "--segmenter", "magic"]) == 2
    assert "unknown segmenter 'magic'" in capsys.readouterr().err
    assert labels_cli([*_args(nuscenes_root, tmp_path / "c")[:4], "--segmenter", "grounded-sam"]) == 2
    assert "needs --models DIR" in capsys.readouterr().err


def test_sample_with_missing_input_is_skipped_with_reason(tmp_path, nuscenes_root, caplog):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(nuscenes_root / "v1.0-mini", root / "v1.0-mini")
    (root / "samples").symlink_to(nuscenes_root / "samples")
    tables = root / "v1.0-mini" / "sample_data.json"
    records = json.loads(tables.read_text())
    victim = next(r for r in records if "CAM_BACK/" in r["filename"])
    victim["filename"] = victim["filename"].replace(".jpg", "_missing.jpg")
    tables.write_text(json.dumps(records))
    out = tmp_path / "out"
    assert main(_args(root, out, "pseudo.past_frames=0")) == 1
    summary = json.loads((out / "summary_rank0.json").read_text())
    assert summary["failed"] == 1 and summary["labelled"] == LIMIT - 1
    assert "_missing.jpg" in summary["failures"][0]["reason"]
    assert any("skipped sample" in record.message for record in caplog.records)


def test_two_ranks_with_gloo_take_disjoint_shards(nuscenes_root, tmp_path):
    pytest.importorskip("torch")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "out"
    processes = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "easyocc", "labels", *_args(nuscenes_root, out, "pseudo.past_frames=1")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for process in processes:
        _, err = process.communicate(timeout=180)
        assert process.returncode == 0, err.decode()[-2000:]
    summaries = [json.loads((out / f"summary_rank{rank}.json").read_text()) for rank in range(2)]
    assert [s["labelled"] for s in summaries] == [LIMIT // 2, LIMIT // 2]
    assert len(_labels(out)) == LIMIT


def test_readme_commands_parse():
    import shlex
    from pathlib import Path

    from easyocc.commands.labels import build_parser

    readme = Path(__file__).resolve().parents[2] / "docs" / "readme" / "pseudo.md"
    commands = [shlex.split(line)[2:] for line in readme.read_text().splitlines() if line.startswith("easyocc labels ")]
    assert len(commands) >= 3
    for argv in commands:
        build_parser().parse_intermixed_args(argv)
    bench = [line for line in readme.read_text().splitlines() if "bench_pseudo_labels.py" in line]
    assert bench and (readme.parents[2] / "benchmarks" / "bench_pseudo_labels.py").is_file()


def test_config_file_errors_and_print_config(tmp_path, capsys):
    import yaml

    bad = tmp_path / "labels.yaml"
    bad.write_text("pseudo: !!python/object/apply:os.system ['true']\n")
    assert labels_cli(["--config", str(bad), "--data", "d", "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"easyocc labels: error: config file {bad}: invalid YAML at line 1" in err
    bad.write_text("pseudo: {min_points: 2\n")
    assert labels_cli(["--config", str(bad)]) == 2
    assert f"config file {bad}: invalid YAML" in capsys.readouterr().err
    bad.write_text("pseudo: {min_pionts: 2}\n")
    assert labels_cli(["--config", str(bad)]) == 2
    assert "unknown config key 'pseudo.min_pionts'; known under pseudo: past_frames," in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text("segmenter: simulated-low\npseudo: {min_points: 2}\n")
    argv = ["--config", str(good), "--frames", "3", "--scene", "a", "--scene", "b", "pseudo.past_frames=4"]
    assert labels_cli([*argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["segmenter"] == "simulated-low" and printed["frames"] == 3 and printed["scenes"] == ["a", "b"]
    assert printed["pseudo"]["min_points"] == 2 and printed["pseudo"]["past_frames"] == 4
