"""pytest fixtures over the shared test support (easyocc.testing): the tiny contract model and a small rig.

Usable by any test (runtime, ROS node): `from tests.runtime.stream_fixtures import build_tiny_model`;
the helpers themselves live in easyocc.testing, where the benchmarks import them too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from easyocc.calibration import CameraRig

from easyocc.testing import (  # noqa: F401  (re-exported for the tests that import them from here)
    FREE_BELOW,
    SMALL_RIG_SIZE,
    TINY_GRID,
    TINY_INPUT_SIZE,
    build_tiny_model,
    encode_jpeg,
    expected_class,
    grey_frame,
    small_rig,
    tiny_manifest,
)

# --- pytest fixtures (import them into a test module to use them) -----------------------------------


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Path of the tiny contract model (session-wide)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model") / "tiny.onnx")


@pytest.fixture
def rig() -> CameraRig:
    return small_rig()
