"""Package boundaries: the runtime imports with base dependencies only; the CLI's help needs nothing else."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
"""


def run_blocked(
    code: str, blocked=("torch", "rclpy", "tensorrt", "pycuda", "onnx", "scipy")
) -> subprocess.CompletedProcess:
    script = BLOCKER.format(blocked=set(blocked)) + code
    return subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


def test_runtime_and_calibration_import_without_heavy_dependencies():
    result = run_blocked(
        "import runtime, easyocc.calibration, easyocc.runtime.dataset.nuscenes, easyocc.runtime.dataset.metric, easyocc.commands.calib, easyocc.runtime.contract.view_feed\n"
        "import sys; heavy = [m for m in ('torch', 'rclpy', 'easyocc.training', 'easyocc.export') if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout


def test_cli_help_with_base_dependencies_only():
    result = run_blocked("from easyocc.cli import main; raise SystemExit(main(['--help']))")
    assert result.returncode == 0, result.stderr
    for command in ("calib", "synth", "train", "export", "bench", "ros"):
        assert f"  {command} " in result.stdout


def test_cli_unknown_command():
    result = subprocess.run(
        [sys.executable, "-m", "easyocc", "frobnicate"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "unknown command 'frobnicate'" in result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(PROJECT_ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (path,) = out.glob("easyocc-*.whl")
    return path


def test_wheel_installs_only_the_easyocc_import_name_and_the_bundled_model(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"easyocc"}, top_level
    for room in ("calibration", "runtime/contract", "runtime/dataset", "training", "export", "ros_node", "commands"):
        assert f"easyocc/{room}/__init__.py" in names, room
    assert "easyocc/models/demo/easyocc_compact_demo.onnx" in names
    # nothing of the repository's tooling travels: tests, docs, benchmarks, the colcon setup script
    assert not [name for name in names if name.startswith(("easyocc/tests", "easyocc/docs", "easyocc/benchmarks"))]


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_streams_a_real_scene_with_the_bundled_model_and_no_torch(wheel, nuscenes_root, tmp_path):
    """`pip install <wheel>` without extras, then `easyocc stream` from another folder: the bundled model is
    found inside the package, and neither torch nor the repository is on the path."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True, timeout=900
    )
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    result = subprocess.run(
        [
            str(venv / "bin" / "easyocc"),
            "stream",
            "--data",
            str(nuscenes_root),
            "--frames",
            "2",
            "--out",
            "out",
            "--json",
            "stream.json",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((workdir / "stream.json").read_text())
    assert summary["frames_out"] == 2, summary
    assert len(list((workdir / "out").rglob("*.npz"))) == 2
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, easyocc, easyocc.models as m; "
            "print(importlib.util.find_spec('torch') is None, easyocc.__file__, m.bundled_model().is_file())",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    no_torch, location, model_found = probe.stdout.split()
    assert no_torch == "True", "the base install pulled in torch"
    assert "site-packages" in location and str(PROJECT_ROOT) not in location
    assert model_found == "True"
