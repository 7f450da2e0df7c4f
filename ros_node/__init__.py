"""ROS 2 node around the runtime: camera topics in, occupancy topics and diagnostics out."""
