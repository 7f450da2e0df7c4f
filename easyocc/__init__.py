"""EasyOcc: camera-only 3D semantic occupancy, from pseudo-labels to a ROS 2 node on Orin.

Everything installs under this one import name: `easyocc.calibration`, `easyocc.runtime`,
`easyocc.training`, `easyocc.export`, `easyocc.ros_node`, `easyocc.models`, and the console entry
`easyocc.cli` with its subcommands in `easyocc.commands`.

In a source checkout those subpackages live in the design's top-level folders beside this one (a
wheel places them inside it). Adding the checkout's root to this package's search path makes
`import easyocc.runtime` resolve to the checkout's own `runtime/` folder with or without an
(editable) install, which keeps several checkouts of the repository independent.
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "setup.py").is_file() and (_checkout / "runtime" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (the package's own search path)
