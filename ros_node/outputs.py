"""The node's occupancy outputs: their publishers (QoS from the output_* parameters, one output's
overridable through rclpy's qos_overrides parameters), the latched grid_info, and the messages built
per frame (ros_node/conversions.py) as each enabled output asks for them; the MarkerArray only while
something subscribes to it, as serialised bytes; the BEV in bev_frame_id through TF when asked."""

from __future__ import annotations

import numpy as np
from easyocc.ros_node import conversions
from easyocc.ros_node.qos import latched_qos, output_qos
from easyocc.runtime.contract.errors import EasyOccError


class OccupancyOutputs:
    def __init__(self, node):
        self._node = node
        self.publishers: dict = {}
        self._grid_info = None
        self._runtime = self._tf = self._on_drop = None

    def create(self, config, runtime, tf, on_drop) -> None:
        """Publishers of the enabled outputs; `tf()` gives the TF lookup, `on_drop(reason, message)` counts
        an output that could not be built."""
        from nav_msgs.msg import OccupancyGrid
        from rclpy.qos_overriding_options import QoSOverridingOptions
        from sensor_msgs.msg import Image, PointCloud2
        from std_msgs.msg import String
        from visualization_msgs.msg import MarkerArray

        self._runtime, self._tf, self._on_drop = runtime, tf, on_drop
        wanted = {
            "points": (config.publish_points, PointCloud2),
            "bev": (config.publish_bev, OccupancyGrid),
            "grid": (config.publish_grid, Image),
            "grid_color": (config.publish_grid_color, Image),
            "markers": (config.publish_markers, MarkerArray),
        }
        # output_* parameters set every output's QoS; qos_overrides./<node>/occupancy/<name>.publisher.<policy>
        # (declared by rclpy, read-only, given at start) override one output's
        self.publishers = {
            name: self._node.create_lifecycle_publisher(
                kind,
                f"~/occupancy/{name}",
                output_qos(config),
                qos_overriding_options=QoSOverridingOptions.with_default_policies(),
            )
            for name, (enabled, kind) in wanted.items()
            if enabled
        }
        if config.publish_grid:
            self._grid_info = self._node.create_publisher(String, "~/occupancy/grid_info", latched_qos())
            info = conversions.grid_info_json(runtime.grid, config.frame_id, runtime.manifest.summary())
            self._grid_info.publish(String(data=info))

    def publish(self, result) -> None:
        """Publish one OccupancyResult on the enabled outputs, stamped with its capture time."""
        header = conversions.make_header(result.stamp_us, self._node.config.frame_id)  # live: read per frame
        for name, msg in self.messages(header, result.voxels, result.bev, result.semantics, result.observed):
            self.publishers[name].publish(msg)

    def messages(self, header, voxels, bev, semantics, observed, names=None):
        """(output name, message) for each enabled output (of `names` if given), built as it is asked for.
        The markers come serialised (bytes, which rclpy publishes as they are), only while subscribed."""
        grid = self._runtime.grid
        out = set(self.publishers) if names is None else set(self.publishers) & set(names)
        if "points" in out:
            yield "points", conversions.cloud_msg(voxels.xyz_ego, voxels.labels, voxels.confidence, header)
        if "bev" in out:
            bev_msg = self._bev_msg(bev, header)
            if bev_msg is not None:
                yield "bev", bev_msg
        if "grid" in out:
            yield "grid", conversions.dense_grid_msg(semantics, grid, header, observed)
        if "grid_color" in out:
            yield "grid_color", conversions.colour_grid_msg(semantics, grid, header, observed)
        if "markers" in out and (names is not None or self.publishers["markers"].get_subscription_count() > 0):
            yield "markers", conversions.markers_bytes(voxels.xyz_ego, voxels.labels, grid, header)

    def _bev_msg(self, bev, header):
        """The BEV grid in bev_frame_id: the ego frame, or placed by TF at the frame's stamp (None, and a
        dropped-output count, when TF has no transform for that stamp)."""
        from easyocc.ros_node.images import stamp_to_us
        from easyocc.runtime.contract.frames import SINK_ERROR

        config, grid = self._node.config, self._runtime.grid
        target = config.bev_frame_id or config.frame_id
        z_m = config.bev_z_band_m[0]
        if target == header.frame_id:
            return conversions.bev_msg(bev, grid, header, z_m=z_m)
        stamp_us = stamp_to_us(header.stamp)
        try:
            target_T_ego = self._tf().lookup(target, header.frame_id, stamp_us or None, timeout_s=0.05)
        except EasyOccError as exc:
            self._on_drop(SINK_ERROR, f"bev at {stamp_us} us not published: {exc}")
            return None
        target_header = conversions.make_header(stamp_us, target)
        return conversions.bev_msg(bev, grid, target_header, z_m=z_m, target_T_ego=target_T_ego)

    def warm_up(self) -> None:
        """Build and serialize every enabled output once for a grid with all voxels occupied (the largest
        messages possible), without publishing: the first frame then does not pay for loading the type
        support and first-touch buffers (~10 ms more for the first PointCloud2 of the bundled model)."""
        from easyocc.runtime.postprocess import occupied_voxels
        from rclpy.serialization import serialize_message

        grid = self._runtime.grid
        semantics = np.zeros(grid.shape, np.uint8)
        voxels = occupied_voxels(semantics, np.zeros(grid.shape, np.float32), grid)
        bev = np.zeros((grid.shape[1], grid.shape[0]), np.int8)
        header = conversions.make_header(0, self._node.config.frame_id)
        observed = np.ones(grid.shape, bool)
        names = ("points", "grid", "grid_color", "markers")  # not the BEV: its TF lookup needs a real stamp
        for _, msg in self.messages(header, voxels, bev, semantics, observed, names=names):
            if not isinstance(msg, bytes):
                serialize_message(msg)

    def destroy(self) -> None:
        for publisher in self.publishers.values():
            self._node.destroy_lifecycle_publisher(publisher)
        self.publishers = {}
        if self._grid_info is not None:
            self._node.destroy_publisher(self._grid_info)
            self._grid_info = None
