"""The node's executor survives rclpy's destroy race (an entity destroyed while the wait set is built)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("rclpy", reason="the ROS 2 wheels are not installed")

# A child process, so that the tiny switch interval (which makes the race likely) and its own rclpy
# context do not touch this test session. The churn creates and destroys six subscriptions with
# rclpy's default QoS event handlers 1,000 times from an executor thread, as the node does when it
# builds its rig from CameraInfo; plain `executor.spin()` raised InvalidHandle within seconds in 3
# runs out of 3.
CHURN = r"""
import sys, time
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from sensor_msgs.msg import CameraInfo
from easyocc.ros_node.spinning import spin_through_destroy_races

sys.setswitchinterval(1e-6)
rclpy.init()
node = rclpy.create_node("destroy_race_probe")
group = ReentrantCallbackGroup()
done = []

def churn():
    timer.cancel()
    for _ in range(1000):
        subs = [node.create_subscription(CameraInfo, f"/race{j}/camera_info", lambda m: None, 10,
                                         callback_group=group) for j in range(6)]
        time.sleep(0.001)
        for sub in subs:
            node.destroy_subscription(sub)
        done.append(1)
    rclpy.try_shutdown()

timer = node.create_timer(0.0, churn, callback_group=group)
executor = MultiThreadedExecutor(num_threads=3)
executor.add_node(node)
races = spin_through_destroy_races(executor)
print(f"churned {len(done)} races {races}")
"""


def test_spin_survives_subscriptions_destroyed_while_spinning(ros_domain):
    from tests.ros_node.helpers import PROJECT_ROOT, ros_env

    result = subprocess.run(
        [sys.executable, "-c", CHURN],
        cwd=PROJECT_ROOT,
        env=ros_env(ros_domain),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "churned 1000 races" in result.stdout, result.stdout + result.stderr[-3000:]
