"""The bundled demo model, shipped inside the package so `easyocc stream` finds it from any folder.

Reproduced by the command in docs/readme/model.md.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEMO_STEM = "easyocc_compact_demo"


def bundled_model(suffix: str = ".onnx") -> Path:
    """Path of the bundled demo model: `.onnx` (deployment), `.pt` (checkpoint) or `.eval.json`."""
    return Path(str(files(__name__).joinpath("demo", DEMO_STEM + suffix)))
