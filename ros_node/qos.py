"""QoS profiles of the node: sensor-data camera input, reliable depth-1 outputs, latched metadata.

Defaults follow ros2/demos and image_pipeline: cameras use `qos_profile_sensor_data` (best effort,
keep last 5, volatile) so a slow node never pushes back on a camera driver; occupancy outputs are
reliable with depth 1, because a ~1 MB PointCloud2 is fragmented by DDS and a best-effort reader
loses the whole message when a single fragment is lost. Both are overridable by parameters.
"""

from __future__ import annotations


def _profile(reliability: str, depth: int, durability: str = "volatile"):
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(depth),
        reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if durability == "transient_local" else DurabilityPolicy.VOLATILE,
    )


def input_qos(config):
    """Camera (and CameraInfo) subscriptions: sensor-data QoS unless overridden."""
    return _profile(config.input_reliability, config.input_depth)


def output_qos(config):
    """Occupancy outputs: reliable, depth 1, volatile unless overridden."""
    return _profile(config.output_reliability, config.output_depth, config.output_durability)


def latched_qos():
    """Slow-changing metadata (grid geometry): reliable, transient local, so late joiners get it."""
    return _profile("reliable", 1, "transient_local")


def diagnostics_qos():
    """/diagnostics as diagnostic_updater publishes it: reliable, depth 10 (the common default)."""
    return _profile("reliable", 10)
