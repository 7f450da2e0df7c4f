"""colcon / ament_python build of the ROS package easyocc_ros from this folder (the `ros_node` package).

The node imports `calibration` and `runtime` from the easyocc distribution: install it first into the
Python environment ROS uses (pip install easyocc, or pip install -e <repo>). Not used by pip; the
repository's pyproject.toml ships ros_node as part of easyocc.
"""

from glob import glob

from setuptools import setup

PACKAGE = "easyocc_ros"

# Guarded: pip installs this file as the module ros_node.setup, which must not run setup() on import;
# colcon runs it as a script.
if __name__ == "__main__":
    setup(
        name=PACKAGE,
        version="0.1.0",
        packages=["ros_node"],
        package_dir={"ros_node": "."},
        data_files=[
            ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
            (f"share/{PACKAGE}", ["package.xml"]),
            (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
            (f"share/{PACKAGE}/msg", glob("msg/*.msg")),
        ],
        install_requires=["setuptools"],
        zip_safe=True,
        maintainer="EasyOcc maintainers",
        maintainer_email="easyocc@example.com",
        description="EasyOcc ROS 2 node: camera topics in, semantic occupancy and diagnostics out",
        license="Apache-2.0",
        entry_points={"console_scripts": ["easyocc_node = ros_node.cli:node_main"]},
    )
