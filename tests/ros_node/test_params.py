"""Parameters: declared with descriptors on a real rclpy node, validated with one-line errors; CLI parsing."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="the ROS 2 wheels are not installed")

from easyocc.ros_node.params import PARAMETERS, config_from_values  # noqa: E402
from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402


@pytest.fixture()
def model_file(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"onnx")
    return str(path)


def test_defaults_and_topics(model_file):
    config = config_from_values({"model_path": model_file})
    assert config.image_transport == "raw" and config.input_reliability == "best_effort"
    assert config.output_reliability == "reliable" and config.output_depth == 1
    assert config.publish_markers is False and config.camera_names == ()
    assert (
        config.keep_heap is True
        and config_from_values({"model_path": model_file, "keep_heap": False}).keep_heap is False
    )
    assert config.topics_for(["CAM_FRONT"]) == {"CAM_FRONT": "/cameras/CAM_FRONT/image_raw"}
    custom = config_from_values({"model_path": model_file, "camera_topics": ["/a/img", "/b/img"]})
    assert custom.topics_for(["A", "B"]) == {"A": "/a/img", "B": "/b/img"}
    with pytest.raises(EasyOccError, match="2 topics for 3 cameras"):
        custom.topics_for(["A", "B", "C"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "parameter model_path is required"),
        ({"model_path": "/nonexistent/m.onnx"}, "parameter model_path: file not found: /nonexistent/m.onnx"),
        ({"backend": "tflite"}, "parameter backend: 'tflite' is not one of onnxruntime, tensorrt"),
        ({"image_transport": "theora"}, "parameter image_transport: 'theora' is not one of raw, compressed"),
        ({"rig_source": "camera_info"}, "parameter extrinsics_file is required when rig_source is camera_info"),
        ({"sync_tolerance_ms": -1.0}, r"parameter sync_tolerance_ms: -1.0 is below the minimum 0.0"),
        ({"input_depth": 5000}, r"parameter input_depth: 5000 is above the maximum 1000"),
        ({"threads": "two"}, r"parameter threads: expected int, got 'two'"),
        ({"bev_z_band_m": [2.0, 1.0]}, "parameter bev_z_band_m: expected \\[lo, hi\\] with lo < hi"),
        ({"frame_id": " "}, "parameter frame_id must not be empty"),
        ({"no_such": 1}, "unknown parameter 'no_such'; known: model_path, backend, threads"),
    ],
)
def test_invalid_values_name_the_parameter(values, message, model_file):
    if values and "model_path" not in values:
        values = {"model_path": model_file, **values}
    with pytest.raises(EasyOccError, match=message):
        config_from_values(values)


def test_declared_with_descriptors_on_a_real_node(ros_context):
    import rclpy
    from easyocc.ros_node.params import declare_parameters
    from rclpy.parameter import Parameter

    node = rclpy.create_node("params_probe", context=ros_context)
    try:
        declare_parameters(node)
        assert set(PARAMETERS) <= {name for name in node._parameters}
        descriptor = node.describe_parameter("sync_tolerance_ms")
        assert "spread of camera stamps" in descriptor.description
        assert descriptor.floating_point_range[0].to_value == 1000.0
        assert "one of: raw, compressed" in node.describe_parameter("image_transport").additional_constraints
        # rclpy itself enforces the declared ranges
        result = node.set_parameters([Parameter("input_depth", value=0)])[0]
        assert not result.successful
    finally:
        node.destroy_node()


def test_cli_parameter_parsing():
    from easyocc.commands.ros import _parse_parameter

    assert _parse_parameter("sync_tolerance_ms:=60").value == 60.0
    assert _parse_parameter("publish_markers:=true").value is True
    assert _parse_parameter("keep_heap:=false").value is False
    assert _parse_parameter("camera_names:=[A, B]").value == ["A", "B"]
    assert _parse_parameter("camera_names:=A,B").value == ["A", "B"]
    assert _parse_parameter("camera_names:=").value == [""]
    assert _parse_parameter("bev_z_band_m:=[0, 2]").value == [0.0, 2.0]
    assert _parse_parameter("frame_id:=007").value == "007"  # a string parameter keeps its text
    with pytest.raises(EasyOccError, match="expected name:=value"):
        _parse_parameter("threads=2")
    with pytest.raises(EasyOccError, match="unknown parameter 'thread'"):
        _parse_parameter("thread:=2")
    with pytest.raises(EasyOccError, match="parameter autostart: expected true or false, got 'maybe'"):
        _parse_parameter("autostart:=maybe")
    with pytest.raises(EasyOccError, match=r"parameter keep_heap: expected true or false, got 1"):
        _parse_parameter("keep_heap:=1")
    with pytest.raises(EasyOccError, match=r"parameter sync_tolerance_ms: -5.0 is below the minimum 0.0"):
        _parse_parameter("sync_tolerance_ms:=-5")
    with pytest.raises(EasyOccError, match=r"parameter backend: 'tflite' is not one of onnxruntime, tensorrt"):
        _parse_parameter("backend:=tflite")


def test_cli_refuses_an_out_of_range_parameter_before_starting(capsys):
    from easyocc.cli import main

    assert main(["ros", "run", "--model", "m.onnx", "-p", "sync_tolerance_ms:=-5"]) == 2
    assert capsys.readouterr().err == "easyocc ros: error: parameter sync_tolerance_ms: -5.0 is below the minimum 0.0\n"


def test_print_config_shows_the_effective_parameters(capsys):
    import yaml

    from easyocc.cli import main

    argv = ["ros", "run", "--model", "m.onnx", "--transport", "compressed", "-p", "camera_names:=[A, B]"]
    assert main([*argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert list(printed) == list(PARAMETERS)
    assert printed["model_path"] == "m.onnx" and printed["image_transport"] == "compressed"
    assert printed["camera_names"] == ["A", "B"] and printed["autostart"] is True
    assert printed["sync_tolerance_ms"] == PARAMETERS["sync_tolerance_ms"].default == 50.0


def test_the_table_feeds_the_docs_and_the_launch_file():
    from pathlib import Path

    from easyocc.ros_node.params import launch_arguments, launch_parameters, markdown_table

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "readme" / "ros.md").read_text()
    start = doc.index("<!-- parameters:")
    block = doc[doc.index("\n", start) + 1 : doc.index("<!-- end parameters -->")].strip()
    assert block == markdown_table(), "docs/readme/ros.md: regenerate with python -m easyocc.ros_node.params"
    assert len(block.splitlines()) == 2 + len(PARAMETERS) == 39
    assert "| `sync_tolerance_ms` | double | 50.0 | [0.0, 1000.0] | configure |" in block
    # the launch file declares every parameter from the table and repeats none of them
    arguments = {name: default for name, default, _ in launch_arguments()}
    assert list(arguments) == list(PARAMETERS) and arguments["camera_names"] == "['']"
    assert launch_parameters(arguments) == {}  # the defaults pass nothing
    changed = launch_parameters({**arguments, "sync_tolerance_ms": "60", "camera_names": "[A, B]", "frame_id": "map"})
    assert changed == {"sync_tolerance_ms": 60.0, "camera_names": ["A", "B"], "frame_id": "map"}
    with pytest.raises(EasyOccError, match="parameter sync_tolerance_ms: -5.0 is below the minimum 0.0"):
        launch_parameters({"sync_tolerance_ms": "-5"})
    launch = (root / "ros_node" / "launch" / "easyocc.launch.py").read_text()
    assert "launch_arguments()" in launch and "launch_parameters(" in launch
    assert not [name for name in PARAMETERS if f'"{name}"' in launch and name != "autostart"]


def test_live_parameters_apply_to_the_running_config(ros_context, model_file):
    from easyocc.ros_node.node import OccupancyNode
    from rclpy.parameter import Parameter

    node = OccupancyNode(
        "live_probe",
        context=ros_context,
        parameter_overrides=[Parameter("model_path", value=model_file), Parameter("autostart", value=False)],
    )
    try:
        from easyocc.ros_node.params import config_from_values

        node.config = config_from_values({"model_path": model_file})  # as on_configure leaves it
        assert node.set_parameters([Parameter("frame_id", value="map")])[0].successful
        assert node.config.frame_id == "map"  # live: applied at once
        assert node.set_parameters([Parameter("sync_queue_size", value=8)])[0].successful
        assert node.config.sync_queue_size == 4  # applied at the next configure
        refused = node.set_parameters([Parameter("backend", value="tflite")])[0]
        assert (
            not refused.successful
            and refused.reason == "parameter backend: 'tflite' is not one of onnxruntime, tensorrt"
        )
        read_only = node.set_parameters([Parameter("autostart", value=True)])[0]
        assert not read_only.successful
        assert node.describe_parameter("autostart").read_only
    finally:
        node.destroy_node()


def test_cli_fails_with_one_line_error_for_a_bad_model(ros_domain, tmp_path):
    from tests.ros_node.helpers import RosProcess, ros_env

    proc = RosProcess(["run", "--model", str(tmp_path / "missing.onnx")], ros_env(ros_domain), tmp_path / "log")
    try:
        assert proc.wait(60) == 2
        assert "easyocc ros: error: node configuration failed" in proc.output
        assert f"parameter model_path: file not found: {tmp_path / 'missing.onnx'}" in proc.output
    finally:
        proc.close()


def test_unexpected_configure_error_is_logged_and_fails_the_transition(ros_context, model_file, capfd):
    """rclpy swallows a transition callback's exception; the node logs it (type, message, traceback)."""
    from easyocc.ros_node.node import OccupancyNode
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    node = OccupancyNode(
        "configure_probe",
        context=ros_context,
        parameter_overrides=[Parameter("model_path", value=model_file), Parameter("autostart", value=False)],
    )
    try:

        def broken_rig(config):
            raise RuntimeError("rig source exploded")

        node.calibration.load = broken_rig
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.runtime is None and node.outputs.publishers == {} and node._diag_timer is None
        log = capfd.readouterr().err
        assert "configure failed: unexpected RuntimeError: rig source exploded" in log
        assert "in broken_rig" in log  # the traceback, so that the bug can be found
    finally:
        node.destroy_node()
