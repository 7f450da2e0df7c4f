"""The README's quick tour, run for real: every command line of its code block executes in order in a
fresh folder, shrunk to CI size by the substitutions below (fewer scenes, frames and steps, smaller
images), so the tour cannot drift from what the commands do. test_readme.py checks that every
documented command parses; this file checks that the tour runs."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT, SHARED_DATA

README = PROJECT_ROOT / "README.md"

# Lines that cannot run on a CI machine, by a piece of their text, with the reason.
SKIP = {
    "--segmenter grounded-sam": "needs foundation-model weights (none on these machines); the next line runs the same pipeline with simulated providers",
    "export engine": "needs TensorRT and an NVIDIA GPU",
    "ros run": "a node that runs until stopped; tests/ros_node run it against real ROS 2 processes",
    "ros play": "plays to a running node; tests/ros_node run it against real ROS 2 processes",
    " /data/nuscenes": "the full nuScenes dataset is not on these machines",
}
# (text, replacement): the same commands on tiny inputs.
TINY = [
    ("../shared/data", str(SHARED_DATA)),
    (
        "training/configs/compact.yaml",
        f"{PROJECT_ROOT}/training/configs/tiny.yaml model.grid.voxel_size=0.4 out_dir=runs/compact data.val_scenes=1",
    ),
    ("--scenes 10", "--scenes 2"),
    ("--frames 40", "--frames 3"),
    ("--size 704x256", "--size 128x64"),
    ("--frames 2000", "--frames 3"),
]
# Options appended to the lines holding a piece of text (after their own), to bound their run time.
BOUND = [
    ("stream --data ../shared", ["--frames", "2"]),
    ("labels --data ../shared", ["--frames", "2"]),
    ("labels --data data/synth", ["--frames", "2"]),
    ("demo ", ["--frames", "3"]),
    ("eval --model", ["--frames", "2"]),
]


def tour_lines() -> list[str]:
    text = README.read_text()
    block = text[text.index("## Quick tour") :]
    block = block[block.index("```bash") + len("```bash") : block.index("\n```", block.index("```bash"))]
    lines, pending = [], ""
    for raw in block.splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.startswith("easyocc "):
            lines.append(line)
    return lines


def shrink(line: str) -> list[str] | None:
    for piece in SKIP:
        if piece in line:
            return None
    extra = [option for piece, options in BOUND if piece in line for option in options]
    for old, new in TINY:
        line = line.replace(old, new)
    return shlex.split(line, comments=True)[1:] + extra


@pytest.mark.slow
def test_the_quick_tour_runs_in_order_on_tiny_inputs(tmp_path):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the tour uses the real scene in {SHARED_DATA}, which is absent")
    pytest.importorskip("torch", reason="the tour trains and exports a model")
    ran, skipped = [], []
    for line in tour_lines():
        argv = shrink(line)
        if argv is None:
            skipped.append(line)
            continue
        result = subprocess.run(
            [sys.executable, "-m", "easyocc", *argv], cwd=tmp_path, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"`{line}` (run as {shlex.join(argv)}) failed:\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        ran.append(argv[0])
    assert {"synth", "labels", "train", "eval", "export", "stream", "bench", "demo"} <= set(ran), ran
    assert len(skipped) == sum(any(piece in line for piece in SKIP) for line in tour_lines())
