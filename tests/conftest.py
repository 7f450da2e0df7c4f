"""Shared fixtures: paths to ../shared/data (tests skip with a reason when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
NUSCENES_SCENE = SHARED_DATA / "nuscenes-scene-0916"
OCC3D_SAMPLES = SHARED_DATA / "occ3d-samples"


@pytest.fixture(scope="session")
def nuscenes_root() -> Path:
    if not (NUSCENES_SCENE / "v1.0-mini" / "sample.json").is_file():
        pytest.skip(f"real nuScenes scene not found at {NUSCENES_SCENE} (../shared/data is absent)")
    return NUSCENES_SCENE


@pytest.fixture(scope="session")
def nuscenes_dataset(nuscenes_root):
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset

    return NuScenesDataset(nuscenes_root)


@pytest.fixture(scope="session")
def occ3d_files() -> list[Path]:
    files = sorted(OCC3D_SAMPLES.glob("*.npz"))
    if not files:
        pytest.skip(f"Occ3D sample files not found in {OCC3D_SAMPLES} (../shared/data is absent)")
    return files


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A tiny synthetic dataset (1 scene, 3 key frames, 352x128 images) in the nuScenes layout with
    Occ3D labels (gts/) and per-image depth/semantic/instance ground truth; generated once per session."""
    from easyocc.training.synth import SynthConfig, generate_dataset

    root = tmp_path_factory.mktemp("synth")
    return generate_dataset(root, SynthConfig(scenes=1, frames=3, image_size=(352, 128), seed=0), progress=False)
