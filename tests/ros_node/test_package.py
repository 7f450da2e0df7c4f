"""The colcon side: package manifests, setup files, launch file and interface definition are well-formed."""

from __future__ import annotations

import ast
import configparser
import xml.etree.ElementTree as ET

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


def test_no_custom_message_and_no_second_runtime_copy():
    """Outputs are standard messages only (no interface package to build on the vehicle), and colcon installs
    no Python module: the node's code is the pip-installed easyocc (one copy of the runtime)."""
    assert not (ROS_NODE / "msg").exists() and not (ROS_NODE / "interfaces").exists()
    tree = ast.parse((ROS_NODE / "setup.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"]
    keywords = {k.arg: k.value for k in calls[0].keywords}
    assert isinstance(keywords["packages"], ast.List) and keywords["packages"].elts == []
    assert "py_modules" not in keywords and "package_dir" not in keywords
    shipped = ast.unparse(keywords["data_files"])
    assert "msg" not in shipped and "launch/*.launch.py" in shipped


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


def test_rviz_config_and_foxglove_layout_show_the_node_outputs():
    import json

    import yaml
    from easyocc.runtime.mcap_sink import LATENCY_TOPIC

    config = ROS_NODE / "config"
    rviz = yaml.safe_load((config / "easyocc.rviz").read_text())["Visualization Manager"]
    assert rviz["Global Options"]["Fixed Frame"] == "base_link"
    displays = {d["Name"]: d for d in rviz["Displays"]}
    cloud = displays["Occupancy (class colours)"]
    assert cloud["Class"] == "rviz_default_plugins/PointCloud2" and cloud["Color Transformer"] == "RGB8"
    assert cloud["Topic"]["Value"] == "/easyocc/occupancy/points" and cloud["Topic"]["Reliability Policy"] == "Reliable"
    assert displays["BEV occupancy"]["Topic"]["Value"] == "/easyocc/occupancy/bev"
    assert displays["Dense grid (slices, class colours)"]["Topic"]["Value"] == "/easyocc/occupancy/grid_color"
    assert not displays["Occupancy markers (per class)"]["Enabled"]  # built only while subscribed: opt in
    layout = json.loads((config / "easyocc.foxglove.json").read_text())
    panels = layout["configById"]
    scene = panels["3D!easyocc"]["topics"]
    assert scene["/easyocc/occupancy/points"]["colorField"] == "rgb"  # the cloud's packed class colour
    assert {"/occupancy/points", "/occupancy/bev"} <= set(scene)  # the MCAP recording's topics too
    assert panels["Plot!latency"]["paths"][0]["value"].startswith(LATENCY_TOPIC + ".")
    placed = json.dumps(layout["layout"])
    assert all(panel in placed for panel in panels)  # every configured panel is on screen
    assert 'glob("config/*")' in (ROS_NODE / "setup.py").read_text()  # colcon installs them


def test_orin_install_needs_no_ros_wheels():
    """On an Orin the system ROS 2 provides rclpy: `pip install easyocc` (no extra) must pull no ROS wheel
    (there are none for aarch64), and the gpu extra replaces the CPU onnxruntime rather than adding to it."""
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    base = [d.lower() for d in project["dependencies"]]
    assert not [d for d in base if d.startswith(("ros-", "rclpy", "tf2"))]
    extras = project["optional-dependencies"]
    assert all(d.startswith("ros-jazzy-") for d in extras["ros"])  # x86-64 wheels for machines without ROS 2
    assert extras["gpu"] == ["onnxruntime-gpu>=1.16"]
    assert (
        "pip uninstall -y onnxruntime && pip install 'easyocc[gpu]'"
        in (PROJECT_ROOT / "docs" / "readme" / "ros.md").read_text()
    )
