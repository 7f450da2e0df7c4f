"""The node's outputs in-process: the MarkerArray is built only while someone subscribes to it."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]


def test_markers_are_built_only_while_subscribed(ros_context, tiny_model):
    import rclpy
    from easyocc.ros_node import conversions
    from easyocc.ros_node.node import OccupancyNode
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from visualization_msgs.msg import MarkerArray

    from tests.runtime.stream_fixtures import grey_frame, small_rig

    model, rig_file = tiny_model
    node = OccupancyNode(
        "outputs_probe",
        context=ros_context,
        parameter_overrides=[
            Parameter("model_path", value=str(model)),
            Parameter("rig_file", value=str(rig_file)),
            Parameter("publish_markers", value=True),
            Parameter("threads", value=1),
            Parameter("autostart", value=False),
        ],
    )
    viewer = rclpy.create_node("marker_viewer", context=ros_context)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        result = node.runtime.process(grey_frame(small_rig(), 90, 1_000_000, seq=1))

        def built():
            header = conversions.make_header(result.stamp_us, "base_link")
            return [
                name
                for name, _ in node.outputs.messages(
                    header, result.voxels, result.bev, result.semantics, result.observed
                )
            ]

        assert "markers" not in built() and {"points", "bev", "grid", "grid_color"} <= set(built())
        viewer.create_subscription(
            MarkerArray,
            "/outputs_probe/occupancy/markers",
            lambda msg: None,
            QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE),
        )
        deadline = time.monotonic() + 10
        while node.outputs.publishers["markers"].get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "markers" in built()  # someone looks: now it is built (as serialised bytes)
        assert isinstance(
            dict(
                node.outputs.messages(
                    conversions.make_header(1, "base_link"),
                    result.voxels,
                    result.bev,
                    result.semantics,
                    result.observed,
                )
            )["markers"],
            bytes,
        )
        assert np.array_equal(result.observed, node.runtime.observed())
    finally:
        viewer.destroy_node()
        node.close()
        node.destroy_node()
