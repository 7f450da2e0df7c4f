"""Spinning a multi-threaded executor while entities are created and destroyed in its threads.

rclpy (Humble to Jazzy) has a race: when one thread destroys a subscription or publisher while the
executor builds its wait set in another, the entity's QoS event handler may already refuse use, and
`executor.spin()` raises `InvalidHandle: cannot use Destroyable because destruction was requested`.
The node destroys entities from executor threads (the CameraInfo subscriptions once the rig is
built, the camera subscriptions on deactivate, the publishers on cleanup), so a plain `spin()` can
end the process at a lifecycle transition. The destroyed entity is already gone from the node, so
spinning again is safe; `spin_through_destroy_races` does that. Upstream: ros2/rclpy issues 1142
and 1206 (open for Humble, Iron and Jazzy).
"""

from __future__ import annotations

from collections.abc import Callable

from rclpy.exceptions import InvalidHandle

try:  # Iron and later
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks


def spin_through_destroy_races(executor, on_race: Callable[[str], None] | None = None) -> int:
    """executor.spin() until its context shuts down; returns how many destroy races it spun through.

    An error raised because the context was shut down meanwhile ends the spin like a clean return;
    other exceptions (KeyboardInterrupt, ExternalShutdownException, a callback's error) propagate.
    """
    races = 0
    while True:
        try:
            executor.spin()
            return races
        except InvalidHandle as exc:
            if not executor.context.ok():
                return races
            races += 1
            if on_race is not None:
                on_race(str(exc))
        except Exception:
            # Shutdown from another thread while the wait set was being built ("failed to initialize
            # wait set: the given context is not valid"): the spin is over, not failed.
            if not executor.context.ok():
                return races
            raise


def without_event_handlers():
    """event_callbacks for a short-lived subscription: no QoS event handler, so no destroy race."""
    return SubscriptionEventCallbacks(use_default_callbacks=False)
