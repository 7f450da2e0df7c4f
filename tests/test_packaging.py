"""Package boundaries: the runtime imports with base dependencies only; the CLI's help needs nothing else."""

import subprocess
import sys

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
