"""Camera images in on a single-threaded executor of their own, beside the node's multi-threaded one.

Why: rclpy's MultiThreadedExecutor rebuilds its wait set in Python on its spinning thread while the
callbacks run on its pool, so every image (six cameras, 12-48 a second) costs several passes over
every entity of a lifecycle node (its services, timers, publishers' event handlers), all under the
GIL. On a 2-core machine those passes kept the node's other Python threads (the worker that publishes
the result, the callbacks themselves) from running for 40-420 ms at a time: 76 such stalls in a
2,000-frame soak, images reaching their callback up to 512 ms after publication, and the node's
overhead p99 over its 15 ms budget in 4 of 9 runs (docs/readme/ros.md). The same node with a
SingleThreadedExecutor had no stall and a 13 ms image p99, but the node needs the multi-threaded
one: on_configure waits for CameraInfo and TF, which only other executor threads can deliver.

So the image subscriptions live on a second, plain node, `<node name>_images` in the same namespace
and context, spun by a SingleThreadedExecutor on its own thread: wait, take, callback, nothing
else. The lifecycle node keeps its executor for services, parameters, timers, CameraInfo and TF,
which now wakes only for those. Remapping rules given for the node by name (`easyocc:from:=to`)
do not apply to the image node; global ones (`from:=to`) and the topic parameters do.
"""

from __future__ import annotations

import threading

from easyocc.ros_node.spinning import spin_through_destroy_races


class ImageIntake:
    """The image subscriptions of `owner` (an rclpy node) on a node and executor thread of their own."""

    def __init__(self, owner):
        self._owner = owner
        self._node = None
        self._executor = None
        self._thread = None
        self._subscriptions: list = []
        self._lock = threading.Lock()

    @property
    def node_name(self) -> str:
        return f"{self._owner.get_name()}_images"

    def _start(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        context = self._owner.context
        self._node = rclpy.create_node(
            self.node_name,
            namespace=self._owner.get_namespace(),
            context=context,
            start_parameter_services=False,
        )
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self._node)
        logger = self._owner.get_logger()
        self._thread = threading.Thread(
            target=spin_through_destroy_races,
            args=(self._executor, lambda error: logger.debug(f"image intake spun through a destroy race: {error}")),
            name="easyocc-images",
            daemon=True,
        )
        self._thread.start()

    def subscribe(self, msg_type, topic: str, callback, qos) -> None:
        """One image subscription; the first one starts the intake's node and thread."""
        with self._lock:
            if self._node is None:
                self._start()
            self._subscriptions.append(self._node.create_subscription(msg_type, topic, callback, qos))

    def unsubscribe_all(self) -> None:
        with self._lock:
            for subscription in self._subscriptions:
                self._node.destroy_subscription(subscription)
            self._subscriptions = []

    def close(self) -> None:
        """Stop the thread and destroy the node (idempotent; safe after the context shut down)."""
        with self._lock:
            node, executor, thread = self._node, self._executor, self._thread
            self._node = self._executor = self._thread = None
            self._subscriptions = []
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if thread is not None:
            thread.join(timeout=5.0)
        if node is not None:
            try:
                node.destroy_node()
            except Exception:  # the context is already gone: nothing left to release
                pass
