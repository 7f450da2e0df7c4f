"""Package layout for setuptools; the metadata lives in pyproject.toml.

One import name: the design's top-level folders (calibration/, runtime/, training/, export/,
ros_node/, models/) install as subpackages of `easyocc` (`easyocc.runtime`, ...), so a wheel puts
nothing generic into site-packages. The list is computed so a new subfolder cannot be forgotten.
"""

from setuptools import find_packages, setup

ROOMS = ("calibration", "runtime", "training", "export", "ros_node", "models")

packages = find_packages(include=["easyocc", "easyocc.*"])
package_dir = {"easyocc": "easyocc"}
for room in ROOMS:
    package_dir[f"easyocc.{room}"] = room
    packages += [f"easyocc.{name}" for name in find_packages(include=[room, f"{room}.*"])]

setup(packages=packages, package_dir=package_dir)
