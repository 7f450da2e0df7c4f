"""The node's lifecycle driven through its services, as a launch system or an operator would.

A node process started with --no-autostart is configured, activated, deactivated, reactivated,
cleaned up, configured again (the engine reloads) and shut down through /easyocc/change_state from
this process; at each state the test checks what reaches the camera topics and the outputs.
Each deactivation and cleanup destroys subscriptions or publishers while the node's executor spins
(rclpy's destroy race, ros_node/spinning.py).
"""

from __future__ import annotations

import os
import time

import pytest

from tests.ros_node.helpers import CameraPublisher, Collector, RosProcess

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]


class LifecycleClient:
    """lifecycle_msgs services of a node, called from a node of this process."""

    def __init__(self, context, node_name: str = "easyocc"):
        import rclpy
        from lifecycle_msgs.srv import ChangeState, GetState
        from rclpy.executors import SingleThreadedExecutor

        self.node = rclpy.create_node("test_lifecycle_client", context=context)
        self.change = self.node.create_client(ChangeState, f"/{node_name}/change_state")
        self.get = self.node.create_client(GetState, f"/{node_name}/get_state")
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def wait_for_services(self, timeout_s: float) -> bool:
        return self.change.wait_for_service(timeout_sec=timeout_s) and self.get.wait_for_service(timeout_sec=timeout_s)

    def _call(self, client, request, timeout_s: float = 60.0):
        future = client.call_async(request)
        self.executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        assert future.done(), f"no answer from {client.srv_name} within {timeout_s} s"
        return future.result()

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState

        return self._call(self.get, GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request()
        request.transition.id = transition_id
        return self._call(self.change, request).success

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def _subscribed(cameras: CameraPublisher) -> int:
    return sum(p.get_subscription_count() for p in cameras.publishers.values())


def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_configure_activate_deactivate_cleanup_and_shutdown_through_services(tiny_model, ros_context, tmp_path):
    from lifecycle_msgs.msg import Transition

    from tests.runtime.stream_fixtures import small_rig

    model, rig_file = tiny_model
    rig = small_rig()
    node = RosProcess(
        [
            "run",
            "--model",
            str(model),
            "--rig",
            str(rig_file),
            "--no-autostart",
            "-p",
            "input_reliability:=reliable",
            "-p",
            "threads:=1",
            "--json",
            str(tmp_path / "stats.json"),
        ],
        dict(os.environ),
        tmp_path / "node.log",
    )
    client = LifecycleClient(ros_context)
    collector = Collector(ros_context)
    cameras = CameraPublisher(ros_context, rig.names)
    stamp = [1_000_000]

    def frame_goes_through() -> bool:
        before = len(collector.get("points"))
        stamp[0] += 100_000
        cameras.publish_grey(rig, 110, stamp[0])
        return collector.wait_for("points", before + 1, 15)

    def frame_is_ignored() -> bool:
        before = len(collector.get("points"))
        stamp[0] += 100_000
        cameras.publish_grey(rig, 110, stamp[0])
        time.sleep(1.0)
        return len(collector.get("points")) == before

    try:
        assert client.wait_for_services(60), node.output
        assert client.state() == "unconfigured"
        assert _subscribed(cameras) == 0 and collector.node.count_publishers("/easyocc/occupancy/points") == 0

        assert client.transition(Transition.TRANSITION_CONFIGURE), node.output
        assert client.state() == "inactive"
        assert collector.publishers_ready("points", 30), "configure did not create the output publishers"
        assert _subscribed(cameras) == 0, "an inactive node must not subscribe to the cameras"

        for round_ in range(2):  # activate, see a frame through, deactivate, see nothing; twice
            assert client.transition(Transition.TRANSITION_ACTIVATE), node.output
            assert client.state() == "active"
            assert _wait(lambda: _subscribed(cameras) == len(rig.names), 30), "no camera subscriptions"
            time.sleep(0.3)  # the reverse direction of discovery
            assert frame_goes_through(), f"round {round_}: no output while active\n{node.output[-2000:]}"
            assert client.transition(Transition.TRANSITION_DEACTIVATE), node.output
            assert client.state() == "inactive"
            assert _wait(lambda: _subscribed(cameras) == 0, 30), "deactivate left camera subscriptions"
            assert frame_is_ignored(), f"round {round_}: output while inactive"

        assert client.transition(Transition.TRANSITION_CLEANUP), node.output
        assert client.state() == "unconfigured"
        assert _wait(lambda: collector.node.count_publishers("/easyocc/occupancy/points") == 0, 30)

        assert client.transition(Transition.TRANSITION_CONFIGURE), node.output  # the engine loads again
        assert client.transition(Transition.TRANSITION_ACTIVATE), node.output
        assert _wait(lambda: _subscribed(cameras) == len(rig.names), 30)
        assert collector.publishers_ready("points", 30)
        time.sleep(0.3)
        assert frame_goes_through(), f"no output after cleanup and configure\n{node.output[-2000:]}"

        assert client.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN), node.output
        assert client.state() == "finalized"
        assert _wait(lambda: _subscribed(cameras) == 0, 30), "shutdown left camera subscriptions"
        assert node.interrupt(20) == 0, node.output[-3000:]
        assert "shut down cleanly" in node.output
        assert "Traceback" not in node.output and "configure failed" not in node.output, node.output[-3000:]
    finally:
        cameras.close()
        collector.close()
        client.close()
        node.close()
