"""EasyOcc: camera-only 3D semantic occupancy, from pseudo-labels to a ROS 2 node on Orin.

This package holds only the `easyocc` console entry; the work lives in calibration/, runtime/,
training/, export/ and ros_node/.
"""

__version__ = "0.1.0"
