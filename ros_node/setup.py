"""colcon / ament_python build of the ROS package easyocc_ros from this folder (the `ros_node` package).

The node's code is `easyocc.ros_node` from the easyocc distribution: install it first into the Python
environment ROS uses (pip install easyocc, or pip install -e <repo>). This package installs only the
ROS side (package index entry, package.xml, launch file, RViz2 config, Foxglove layout, the
`easyocc_node` executable), no Python modules, so there is one copy of the node and the runtime.
Not used by pip.
"""

from glob import glob

from setuptools import setup

PACKAGE = "easyocc_ros"

# Guarded: pip installs this file as the module easyocc.ros_node.setup, which must not run setup() on import;
# colcon runs it as a script.
if __name__ == "__main__":
    setup(
        name=PACKAGE,
        version="0.1.0",
        packages=[],
        data_files=[
            ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
            (f"share/{PACKAGE}", ["package.xml"]),
            (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
            (f"share/{PACKAGE}/config", glob("config/*")),  # RViz2 config, Foxglove layout
        ],
        install_requires=["setuptools"],
        zip_safe=True,
        maintainer="EasyOcc maintainers",
        maintainer_email="easyocc@example.com",
        description="EasyOcc ROS 2 node: camera topics in, semantic occupancy and diagnostics out",
        license="Apache-2.0",
        entry_points={"console_scripts": ["easyocc_node = easyocc.commands.ros:node_main"]},
    )
