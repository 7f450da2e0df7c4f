"""benchmarks/bench_idle_wake.py: its argument checks, and one short real run on the shared scene."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_idle_wake.py"


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--per-block", "1"], "--blocks must be >= 1 and --per-block >= 2"),
        (["--gaps", "0,soon"], "--gaps must be seconds separated by commas, got '0,soon'"),
        (["--gaps", "0,-1"], "--gaps must not be negative, got '0,-1'"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(extra, message, tmp_path):
    out = tmp_path / "idle.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", "nowhere", "--json", str(out), *extra], capture_output=True, text=True
    )
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_missing_dataset_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(tmp_path / "nowhere")], capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("bench_idle_wake: error: ") and len(done.stderr.strip().splitlines()) == 1


def test_short_run_on_the_real_scene(nuscenes_root, tmp_path):
    out = tmp_path / "idle.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(nuscenes_root), "--gaps", "0,0.05", "--blocks", "1",
         "--per-block", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["gaps_s"] == [0.0, 0.05] and report["input_size"] == [352, 128]
    lanes = min(6, os.cpu_count() or 1)
    assert set(report["ms_after_gap"]) == {f"preprocess, {lanes} lanes", "preprocess, 1 lane", "inference"}
    for by_gap in report["ms_after_gap"].values():
        assert set(by_gap) == {"0", "0.05"}
        for value in by_gap.values():
            assert value["count"] == 2 and 0 < value["p50"] <= value["p90"] < 10_000


def test_a_first_frame_without_a_camera_is_one_line(synth_root, tmp_path):
    import shutil

    root = tmp_path / "scene"
    shutil.copytree(synth_root, root, ignore=shutil.ignore_patterns("depth", "semantic", "instance", "gts"))
    sorted((root / "samples" / "CAM_BACK").glob("*.jpg"))[0].unlink()
    done = subprocess.run([sys.executable, str(SCRIPT), "--data", str(root)], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr == f"bench_idle_wake: error: {root}: the first frame has no image from CAM_BACK\n"
