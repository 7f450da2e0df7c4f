"""ros_node/intake.py: camera images on a node and single-threaded executor of their own."""

from __future__ import annotations

import threading
import time


def test_intake_delivers_on_its_own_thread_and_node_then_closes_cleanly(ros_context):
    """Messages published on a topic reach the callback on the intake's thread ('easyocc-images'),
    through a second node named after the owner, in the owner's namespace; after unsubscribe_all
    nothing more arrives; close() is idempotent and the owner's node keeps working."""
    import rclpy
    from easyocc.ros_node.intake import ImageIntake
    from easyocc.ros_node.qos import _profile
    from sensor_msgs.msg import Image

    owner = rclpy.create_node("intake_owner", namespace="/intake_test", context=ros_context)
    sender = rclpy.create_node("intake_sender", context=ros_context)
    publisher = sender.create_publisher(Image, "/intake_test/cam/image_raw", _profile("reliable", 5))
    intake = ImageIntake(owner)
    received, threads = [], set()
    done = threading.Event()

    def on_image(msg):
        received.append(msg.width)
        threads.add(threading.current_thread().name)
        if len(received) == 3:
            done.set()

    try:
        intake.subscribe(Image, "cam/image_raw", on_image, _profile("reliable", 5))  # relative: the namespace
        assert intake.node_name == "intake_owner_images"
        deadline = time.monotonic() + 10.0
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert publisher.get_subscription_count() == 1
        names = dict(owner.get_node_names_and_namespaces())
        assert names.get("intake_owner_images") == "/intake_test"
        for width in (1, 2, 3):
            msg = Image()
            msg.width = width
            publisher.publish(msg)
        assert done.wait(10.0), f"received {received}"
        assert received == [1, 2, 3] and threads == {"easyocc-images"}
        intake.unsubscribe_all()
        deadline = time.monotonic() + 10.0
        while publisher.get_subscription_count() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert publisher.get_subscription_count() == 0
        msg = Image()
        msg.width = 4
        publisher.publish(msg)
        time.sleep(0.3)
        assert received == [1, 2, 3]
    finally:
        intake.close()
        intake.close()  # idempotent
    assert owner.get_name() == "intake_owner"  # the owner is untouched
    owner.destroy_node()
    sender.destroy_node()
