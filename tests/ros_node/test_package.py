"""The colcon side: package manifests, setup files, launch file and interface definition are well-formed."""

from __future__ import annotations

import ast
import configparser
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import PROJECT_ROOT

ROS_NODE = PROJECT_ROOT / "ros_node"


def test_ament_python_package():
    root = ET.parse(ROS_NODE / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "easyocc_ros"
    assert root.find("export/build_type").text == "ament_python"
    depends = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "nav_msgs", "visualization_msgs", "diagnostic_msgs", "launch_ros"} <= depends
    cfg = configparser.ConfigParser()
    cfg.read(ROS_NODE / "setup.cfg")
    assert cfg["install"]["install_scripts"] == "$base/lib/easyocc_ros"
    setup_source = (ROS_NODE / "setup.py").read_text()
    assert "easyocc_node = easyocc.commands.ros:node_main" in setup_source
    assert (ROS_NODE / "resource" / "easyocc_ros").is_file()


def test_launch_file_compiles_and_names_the_executable():
    source = (ROS_NODE / "launch" / "easyocc.launch.py").read_text()
    tree = ast.parse(source)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    assert 'executable="easyocc_node"' in source and 'package="easyocc_ros"' in source


def test_interface_package_and_message():
    root = ET.parse(ROS_NODE / "interfaces" / "package.xml").getroot()
    assert root.findtext("name") == "easyocc_msgs"
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    assert "msg/OccupancyGrid3D.msg" in (ROS_NODE / "interfaces" / "CMakeLists.txt").read_text()
    parser = pytest.importorskip("rosidl_adapter.parser", reason="rosidl_adapter is not installed")
    spec = parser.parse_message_string(
        "easyocc_msgs", "OccupancyGrid3D", (ROS_NODE / "msg" / "OccupancyGrid3D.msg").read_text()
    )
    assert [f.name for f in spec.fields] == [
        "header",
        "origin",
        "resolution",
        "size_x",
        "size_y",
        "size_z",
        "class_names",
        "labels",
        "confidence",
    ]
    assert [(c.name, c.value) for c in spec.constants] == [("FREE", 17)]


def test_ros_node_never_imports_torch_training_or_export():
    for path in ROS_NODE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("torch", "easyocc.training", "easyocc.export")), (
                    f"{path.name} imports {name}"
                )


def test_ros_help_and_parameter_parsing_need_no_rclpy():
    """`easyocc ros --help` works and easyocc.commands.ros imports where rclpy is missing (its rclpy imports stay lazy)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['rclpy'] = None\n"  # any `import rclpy...` now raises ImportError
        "from easyocc.cli import main\n"
        "assert main(['ros', '--help']) == 0\n"
        "import easyocc.commands.ros\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "easyocc ros <run|play>" in done.stdout and done.stdout.endswith("ok\n")
