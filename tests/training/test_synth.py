"""The synthetic world: ground-truth consistency, the reader round trip, determinism, bad arguments."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from easyocc.calibration import default_rig
from easyocc.runtime.contract.classes import CLASS_ID, FREE, class_from_nuscenes_category
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import OCC3D_NUSCENES
from easyocc.runtime.dataset.labels import read_labels
from easyocc.runtime.dataset.nuscenes import NuScenesDataset, load_lidar
from easyocc.training.synth import SynthConfig, SyntheticWorld, generate_dataset, parse_size
from easyocc.training.synth.checks import lidar_depth_error, pixel_grid_agreement

from easyocc.commands.synth import main as synth_main

TINY = dict(scenes=1, frames=1, image_size=(160, 64), lidar_azimuth_steps=360)


def test_depth_semantics_and_grid_agree(synth_root):
    result = pixel_grid_agreement(synth_root)
    assert result["pixels"] > 100_000
    assert result["fraction"] >= 0.98, f"only {100 * result['fraction']:.2f} % of pixels agree with the grid"


def test_reader_round_trip(synth_root):
    dataset = NuScenesDataset(synth_root)
    assert dataset.scene_names == ["synth-0000"]
    samples = dataset.samples("synth-0000")
    assert len(samples) == 3
    assert [s.timestamp_us - samples[0].timestamp_us for s in samples] == [0, 500_000, 1_000_000]
    sample = samples[1]
    rig = dataset.rig(sample)
    assert rig.allclose(default_rig().resized(352, 128), atol=1e-6)
    for channel, frame in sample.cameras.items():
        assert (frame.width, frame.height) == (352, 128)
        assert abs(frame.timestamp_us - sample.timestamp_us) <= 25_000
        image = cv2.imread(str(frame.path))
        assert image.shape == (128, 352, 3) and image.std() > 10, channel
    lidar = load_lidar(sample.lidar.path)
    assert lidar.shape[1] == 5 and len(lidar) > 20_000
    assert set(np.unique(lidar[:, 4]).astype(int)) <= set(range(32))
    boxes = dataset.boxes(sample)
    assert len(boxes) > 20
    assert {b.class_id for b in boxes} >= {CLASS_ID[c] for c in ("car", "pedestrian", "barrier", "traffic_cone")}
    assert all(b.class_id == class_from_nuscenes_category(b.category) for b in boxes)
    labels = read_labels(dataset.labels_path(sample), OCC3D_NUSCENES)
    assert labels.mask_camera.any() and labels.mask_lidar.any()
    assert (labels.semantics != FREE).sum() > 10_000


def test_lidar_lands_on_rendered_depth(synth_root):
    errors = lidar_depth_error(synth_root)
    assert len(errors) > 5_000
    assert np.median(errors) < 0.05, f"median |lidar - rendered depth| = {np.median(errors):.3f} m"


def test_same_seed_same_bytes(tmp_path):
    config = SynthConfig(**TINY, seed=3)
    roots = [generate_dataset(tmp_path / name, config, progress=False) for name in ("a", "b")]
    files = sorted(p.relative_to(roots[0]) for p in roots[0].rglob("*") if p.is_file())
    assert len(files) > 30
    for name in files:
        assert (roots[0] / name).read_bytes() == (roots[1] / name).read_bytes(), name
    other = generate_dataset(tmp_path / "c", SynthConfig(**TINY, seed=4), progress=False)
    jpg = next(p for p in files if p.suffix == ".jpg")
    assert (
        not (other / "samples").exists()
        or (roots[0] / jpg).read_bytes() != next((other / jpg.parent).iterdir()).read_bytes()
    )


def test_resume_skips_finished_scenes_and_refuses_other_settings(tmp_path):
    config = SynthConfig(**TINY)
    root = generate_dataset(tmp_path, config, progress=False)
    labels = next(root.glob("gts/*/*/labels.npz"))
    before = labels.stat().st_mtime_ns
    generate_dataset(tmp_path, config, progress=False)
    assert labels.stat().st_mtime_ns == before
    with pytest.raises(EasyOccError, match="other settings .*seed"):
        generate_dataset(tmp_path, SynthConfig(**TINY, seed=9), progress=False)


def test_twelve_hz_cameras_write_non_key_frames(tmp_path):
    config = SynthConfig(
        scenes=1, frames=2, image_size=(96, 64), lidar_azimuth_steps=180, camera_hz=12, write_aux=False
    )
    root = generate_dataset(tmp_path, config, progress=False)
    records = json.loads((root / "v1.0-synth" / "sample_data.json").read_text())
    front = [r for r in records if "CAM_FRONT__" in r["filename"]]
    assert [r["is_key_frame"] for r in front] == [True] + [False] * 5 + [True]
    assert all((root / r["filename"]).is_file() for r in records)
    assert len(NuScenesDataset(root).samples()) == 2


def test_every_class_in_ten_default_scenes():
    config = SynthConfig()
    seen = set()
    for scene in range(10):
        world = SyntheticWorld(config, scene)
        seen |= set(np.unique(world.scene.primitives_at(0.0).class_id).tolist())
        seen |= {int(c) for *_, c in world.scene.patches}
    seen |= {CLASS_ID["driveable_surface"], CLASS_ID["sidewalk"], CLASS_ID["terrain"]}
    assert seen == set(range(FREE))


def test_render_frame_api():
    world = SyntheticWorld(SynthConfig(image_size=(128, 64)), scene=2)
    frame = world.render_frame(1)
    assert list(frame.images) == list(default_rig().names)
    assert all(image.shape == (64, 128, 3) and image.dtype == np.uint8 for image in frame.images.values())
    assert frame.timestamp_us["CAM_FRONT"] == world.base_timestamp_us + 500_000
    pose = frame.global_T_ego["CAM_FRONT"]
    assert np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3))


def test_key_frame_does_not_depend_on_threads():
    """Cameras, lidar and voxelization run on a thread pool; one thread must give the same arrays."""
    config = SynthConfig(image_size=(96, 48), subsamples=1)
    frames = [SyntheticWorld(config, scene=1, threads=threads).key_frame(2) for threads in (1, 3)]
    one, pooled = frames
    for name, render_ in one.frame.cameras.items():
        for field in ("rgb", "depth_m", "semantic", "instance"):
            assert np.array_equal(getattr(render_, field), getattr(pooled.frame.cameras[name], field)), (name, field)
    assert np.array_equal(one.lidar.points, pooled.lidar.points)
    for field in ("semantics", "mask_camera", "mask_lidar"):
        assert np.array_equal(getattr(one.labels, field), getattr(pooled.labels, field)), field
    assert one.labels.semantics.size and (one.labels.semantics != FREE).any()


def test_threads_must_be_positive():
    with pytest.raises(EasyOccError, match="threads must be a positive integer, got 0"):
        SyntheticWorld(SynthConfig(image_size=(96, 48)), threads=0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--size", "704"], "bad image size '704'"),
        (["--size", "8x8"], "each side must be 32..4096"),
        (["--scenes", "0"], "config scenes: 0 is below the minimum 1"),
        (["--frames", "-2"], "config frames: -2 is below the minimum 1"),
        (["density=nan"], "config density: nan is not a finite number"),
        (["desnity=2"], "unknown config key 'desnity'; known: scenes, frames, image_size"),
        (["--threads", "0"], "--threads must be positive"),
    ],
)
def test_bad_arguments(tmp_path, argv, message):
    with pytest.raises(EasyOccError, match=message):
        synth_main(["--out", str(tmp_path / "out"), "--quiet", *argv])


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EasyOccError, match="exists and is not a folder"):
        generate_dataset(blocker, SynthConfig(**TINY), progress=False)
    with pytest.raises(EasyOccError, match="cannot create output folder"):
        generate_dataset(blocker / "sub", SynthConfig(**TINY), progress=False)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(EasyOccError, match="not writable"):
            generate_dataset(locked, SynthConfig(**TINY), progress=False)


def test_cli_reports_one_line_error(tmp_path, capsys):
    from easyocc.cli import main

    assert main(["synth", "--out", str(tmp_path), "--size", "axb"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad image size 'axb'" in err


def test_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, easyocc.training.synth, easyocc.commands.synth; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_validation():
    assert parse_size("1600x900") == (1600, 900)
    with pytest.raises(EasyOccError, match="camera_hz"):
        SynthConfig(camera_hz=5)
    with pytest.raises(EasyOccError, match="config frames: 0 is below the minimum 1"):
        SynthConfig(frames=0)
    assert SynthConfig.from_dict(SynthConfig().to_dict()) == SynthConfig()
