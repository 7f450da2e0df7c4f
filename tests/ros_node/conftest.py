"""Fixtures of the ROS node tests: a ROS domain of their own, an rclpy context, the tiny model and rig."""

from __future__ import annotations

import os
import random

import pytest

from tests.ros_node.helpers import ros_env


@pytest.fixture(scope="session")
def ros_domain() -> int:
    """A domain id for this test session; this process's environment is set to it (discovery on localhost)."""
    pytest.importorskip("rclpy", reason="the ROS 2 wheels (pip install 'easyocc[ros]') are not installed")
    domain = int(os.environ.get("EASYOCC_TEST_ROS_DOMAIN", random.Random(os.getpid()).randint(20, 99)))
    saved = dict(os.environ)
    os.environ.update(ros_env(domain))
    yield domain
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def ros_context(ros_domain):
    """An rclpy context in the test domain, for collectors and publishers living in this process."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    yield context
    rclpy.try_shutdown(context=context)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """The runtime's tiny contract model (tests/runtime/stream_fixtures.py) and a rig file for its test images."""
    from easyocc.calibration import save_rig

    from tests.runtime.stream_fixtures import build_tiny_model, small_rig

    folder = tmp_path_factory.mktemp("ros_model")
    model = build_tiny_model(folder / "tiny.onnx")
    save_rig(small_rig(), folder / "small_rig.yaml")
    return model, folder / "small_rig.yaml"
