"""Startup: `easyocc_node --help` prints help without starting a node; one autostart rule, logged when off."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.ros_node.helpers import PROJECT_ROOT, RosProcess


def test_easyocc_node_help_prints_help_and_starts_nothing():
    code = "import sys; from easyocc.commands.ros import node_main; sys.exit(node_main(['easyocc_node', '--help']))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: easyocc_node")
    assert "  autostart: Configure and activate on start, for every entry point" in done.stdout
    assert "  rig_source: " in done.stdout and "configured:" not in done.stdout + done.stderr and not done.stderr


def test_autostart_defaults_true_for_every_entry_point():
    from easyocc.ros_node.params import PARAMETERS

    assert PARAMETERS["autostart"].default is True
    launch = (PROJECT_ROOT / "ros_node" / "launch" / "easyocc.launch.py").read_text()
    assert "LAUNCH_DEFAULTS: dict[str, str] = {}" in launch  # no entry point overrides the node's default


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_unconfigured_node_says_so(tiny_model, ros_domain, tmp_path):
    model, rig_file = tiny_model
    proc = RosProcess(
        ["run", "--model", str(model), "--rig", str(rig_file), "--no-autostart", "--duration", "4"],
        dict(os.environ),
        tmp_path / "node.log",
    )
    try:
        assert proc.wait_for_output("autostart is false: staying unconfigured", 60), proc.output[-2000:]
        assert "ros2 lifecycle set /easyocc configure" in proc.output
        assert "configured:" not in proc.output
    finally:
        proc.close()
