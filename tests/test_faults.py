"""Bad input at every boundary, as a hostile user would try it (issue 16), through the real commands.

Each case runs `python -m easyocc ...` as a subprocess on small real inputs (the tiny synthetic scene,
copies of ../shared/data tables with one field broken) and asserts: no Python traceback, the exit
code (2: refused before any work, with one line naming the file, field and expectation; 0: a run
that dropped or degraded frames and finished with its summary) and the message or the counters.
The fault table in docs/readme/faults.md names the test of each row.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT

CAMERA = "CAM_FRONT"


def easyocc(*args, cwd=None, timeout: int = 300, prelude: str = "") -> subprocess.CompletedProcess:
    """`python -m easyocc ARGS` (after `prelude`, e.g. a meta-path blocker); no traceback allowed."""
    code = f"{prelude}\nimport sys\nfrom easyocc.cli import main\nraise SystemExit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=cwd or PROJECT_ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result


def refused(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The one error line of a refused command (exit 2), checked to hold every fragment."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("easyocc ")]
    assert len(errors) == 1, result.stderr
    line = errors[0]
    assert len(line) <= 320, line
    for fragment in fragments:
        assert fragment in line, line
    return line


def copy_scene(root: Path, to: Path) -> Path:
    """A copy of a synthetic dataset without its per-image ground truth (tables, samples, gts)."""
    shutil.copytree(root, to, ignore=shutil.ignore_patterns("depth", "semantic", "instance"))
    return to


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def frame_files(root: Path, camera: str) -> list[Path]:
    return sorted((root / "samples" / camera).glob("*.jpg"))


# --- 1, 5: a camera image missing from a sample: dropped (or zero-filled) and counted; the run finishes
@pytest.fixture(scope="module")
def scene_missing_camera(synth_root, tmp_path_factory) -> Path:
    """The 3-frame scene with frame 1's CAM_FRONT JPEG deleted."""
    root = copy_scene(synth_root, tmp_path_factory.mktemp("faults") / "missing")
    frame_files(root, CAMERA)[1].unlink()
    return root


def test_stream_drops_a_frame_with_a_missing_camera_and_finishes(scene_missing_camera, tmp_path):
    result = easyocc("stream", "--data", scene_missing_camera, "--out", tmp_path / "out", "--json", tmp_path / "s.json")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["frames_in"], summary["frames_out"]) == (3, 2)
    assert summary["drops"] == {"missing_camera": 1}
    assert summary["degraded"] == {"frames": 0, "cameras": {}}
    assert "dropped: missing_camera 1" in result.stdout
    assert f"camera {CAMERA} image could not be read in frame 1" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "frames").iterdir()) == ["000000.npz", "000002.npz"]


def test_stream_zero_fills_a_missing_camera_and_reports_the_degraded_frame(scene_missing_camera, tmp_path):
    result = easyocc(
        "stream", "--data", scene_missing_camera, "--out", tmp_path / "out", "--json", tmp_path / "s.json",
        "--missing-camera", "zero",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["frames_in"], summary["frames_out"]) == (3, 3)
    assert summary["drops"] == {}
    assert summary["degraded"] == {"frames": 1, "cameras": {CAMERA: 1}}
    assert f"degraded (published with zero-filled cameras): 1 frames ({CAMERA} 1)" in result.stdout
    missing = []
    for seq in range(3):
        with np.load(tmp_path / "out" / "frames" / f"{seq:06d}.npz") as frame:
            missing.append(frame["missing_cameras"].tolist())
    assert missing == [[], [CAMERA], []]


def test_demo_drops_a_frame_with_a_missing_camera_and_finishes(scene_missing_camera, tmp_path):
    result = easyocc("demo", "--data", scene_missing_camera, "--frames", "3", "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    assert "frames: 3 in, 2 out" in result.stdout
    assert "dropped: missing_camera 1" in result.stdout
    assert (tmp_path / "demo" / "preview.png").is_file()


def test_bench_goes_on_past_bad_frames_and_counts_them(scene_missing_camera, tmp_path):
    """A missing camera (frame 1) and a truncated JPEG (frame 2) in `bench --data`: every pass skips
    them, counted by reason; the benchmark finishes and writes its results."""
    root = copy_scene(scene_missing_camera, tmp_path / "scene")
    truncate(frame_files(root, "CAM_BACK")[2])
    result = easyocc(
        "bench", "--data", root, "--frames", "6", "--warmup", "1", "--sequential-frames", "3",
        "--backend-frames", "2", "--json", tmp_path / "bench.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    backend = json.loads((tmp_path / "bench.json").read_text())["results"][0]
    # throughput pass: 7 frames of a 3-frame loop -> frames 1, 4 miss a camera, frames 2, 5 are corrupt
    assert backend["drops"] == {"missing_camera": 2, "corrupt_image": 2}
    assert backend["pipelined"]["frames"] == 7 - 4 - 1  # minus the drops and the warm-up frame
    all_passes = backend["drops_all_passes"]
    assert all_passes["missing_camera"] >= 3 and all_passes["corrupt_image"] >= 3  # + the one-at-a-time pass
    assert backend["degraded"] == {"frames": 0, "cameras": {}}
    assert "dropped frames, all passes" in result.stdout


# --- 2: nuScenes tables validated: one line naming table, token and field (through calib check)
@pytest.fixture(scope="module")
def real_tables(nuscenes_root) -> dict:
    folder = nuscenes_root / "v1.0-mini"
    return {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}


def _key_frame(tables) -> dict:
    return next(r for r in tables["sample_data"] if r["is_key_frame"])


def _break(tables, name):
    """(broken copy of table `name`, token of the broken row, expected fragment)."""
    rows = json.loads(json.dumps(tables[name.split("-")[0]]))
    if name == "sample":
        del rows[0]["timestamp"]
        return rows, rows[0]["token"], "field 'timestamp' is missing"
    if name == "sample-yesterday":
        rows = json.loads(json.dumps(tables["sample"]))
        rows[3]["timestamp"] = "yesterday"
        return rows, rows[3]["token"], "field 'timestamp' is 'yesterday', expected an integer"
    if name == "scene":
        return ["scene-0916"], "row 0", "row 0 is 'scene-0916', expected an object"
    if name in ("ego_pose", "ego_pose-nan"):
        rows = json.loads(json.dumps(tables["ego_pose"]))
        token = _key_frame(tables)["ego_pose_token"]
        row = next(r for r in rows if r["token"] == token)
        if name == "ego_pose":
            row["rotation"] = [2.0, 0.0, 0.0, 0.0]
            return rows, token, "field 'rotation' is [2.0, 0.0, 0.0, 0.0], expected a unit quaternion"
        row["translation"] = [math.nan, 0.0, 0.0]
        return rows, token, "field 'translation' is [nan, 0.0, 0.0], expected 3 finite numbers"
    if name == "sample_data":
        row = next(r for r in rows if r["is_key_frame"])
        row["calibrated_sensor_token"] = "no-such-token"
        return rows, row["token"], "field 'calibrated_sensor_token' names calibrated_sensor 'no-such-token'"
    if name == "calibrated_sensor":
        rows[0]["rotation"] = [1.0, 0.0, 0.0]
        return rows, rows[0]["token"], "field 'rotation' is [1.0, 0.0, 0.0], expected a list of 4 numbers"
    raise AssertionError(name)


@pytest.mark.parametrize(
    "case", ["sample", "sample-yesterday", "scene", "ego_pose", "ego_pose-nan", "sample_data", "calibrated_sensor"]
)
def test_calib_check_refuses_a_broken_nuscenes_table_in_one_line(real_tables, nuscenes_root, tmp_path, case):
    root = tmp_path / "scene"
    (root / "v1.0-mini").mkdir(parents=True)
    (root / "samples").symlink_to(nuscenes_root / "samples")  # read-only view; ../shared is never written
    table = case.split("-")[0]
    rows, token, fragment = _break(real_tables, case)
    for name, original in real_tables.items():
        data = rows if name == table else original
        (root / "v1.0-mini" / f"{name}.json").write_text(json.dumps(data))
    result = easyocc("calib", "check", "--data", root, "--out", tmp_path / "overlay.png")
    refused(result, f"v1.0-mini/{table}.json", token, fragment)
    assert not (tmp_path / "overlay.png").exists()


def test_lidar_file_cut_by_18_bytes_is_refused(synth_root, tmp_path):
    root = copy_scene(synth_root, tmp_path / "scene")
    lidar = sorted((root / "samples" / "LIDAR_TOP").glob("*.bin"))[0]
    lidar.write_bytes(lidar.read_bytes()[:-18])  # 5N floats - 18 bytes: still a multiple of 5 floats
    result = easyocc("calib", "check", "--data", root, "--out", tmp_path / "overlay.png")
    refused(result, str(lidar), "is not a multiple of the 20-byte point row")


# --- 8: a truncated JPEG is refused, not decoded half-grey
def test_calib_check_refuses_a_truncated_jpeg(synth_root, tmp_path):
    root = copy_scene(synth_root, tmp_path / "scene")
    image = frame_files(root, "CAM_BACK")[0]
    truncate(image)
    result = easyocc("calib", "check", "--data", root, "--out", tmp_path / "overlay.png")
    refused(result, str(image), "truncated JPEG (no end-of-image marker")
    assert not (tmp_path / "overlay.png").exists()


# --- 3: manifests and checkpoints checked for every field that changes meaning
def _edited_model(tmp_path: Path, edit) -> Path:
    import onnx
    from easyocc.models import bundled_model
    from easyocc.runtime.contract.manifest import ONNX_METADATA_KEY

    model = onnx.load(str(bundled_model(".onnx")))
    entry = next(p for p in model.metadata_props if p.key == ONNX_METADATA_KEY)
    manifest = json.loads(entry.value)
    edit(manifest)
    entry.value = json.dumps(manifest)
    path = tmp_path / "edited.onnx"
    onnx.save(model, str(path))
    return path


def test_manifest_with_another_grid_of_the_same_shape_is_refused(synth_root, tmp_path):
    def coarser(manifest):  # 0.5 m voxels over +-50 m: still 200 x 200 x 16
        manifest["grid"] = {"lower": [-50.0, -50.0, -1.0], "upper": [50.0, 50.0, 7.0], "voxel_size": 0.5}

    model = _edited_model(tmp_path, coarser)
    result = easyocc("stream", "--model", model, "--data", synth_root, "--out", tmp_path / "out")
    refused(result, "manifest grid 200x200x16 @ 0.5 m, [-50, -50, -1, 50, 50, 7]", "model_config's 200x200x16 @ 0.4 m")
    assert not (tmp_path / "out" / "frames").exists()


def test_manifest_colour_order_bgr_is_refused(synth_root, tmp_path):
    model = _edited_model(tmp_path, lambda manifest: manifest.update(colour_order="BGR"))
    result = easyocc("stream", "--model", model, "--data", synth_root, "--out", tmp_path / "out")
    refused(result, "manifest colour_order is 'BGR': this runtime feeds RGB images only")


def _checkpoint(path: Path, saved_config, built_config) -> Path:
    from easyocc.training.model import build_model, save_checkpoint

    save_checkpoint(path, build_model(built_config), saved_config)
    return path


def test_checkpoint_on_another_grid_of_the_same_shape_is_not_scored_against_04m_labels(synth_root, tmp_path):
    from easyocc.runtime.contract.grid import GridSpec

    from easyocc.testing import tiny_model_config

    grid = GridSpec((-50.0, -50.0, -1.0), (50.0, 50.0, 7.0), 0.5)  # 200 x 200 x 16, like the labels
    config = tiny_model_config(grid=grid, input_size=(352, 128), stride_xy=4, stride_z=4)
    checkpoint = _checkpoint(tmp_path / "coarse.pt", config, config)
    result = easyocc(
        "eval", "--model", checkpoint, "--data", synth_root, "--split", "all", "--json", tmp_path / "e.json"
    )
    refused(result, "the model has grid 200x200x16 @ 0.5 m", "are on 200x200x16 @ 0.4 m", "synth_config.json")
    assert not (tmp_path / "e.json").exists()


def test_checkpoint_width_mismatch_is_one_short_line(synth_root, tmp_path):
    from dataclasses import replace

    from easyocc.testing import tiny_model_config

    config = tiny_model_config()
    checkpoint = _checkpoint(tmp_path / "wide.pt", config, replace(config, neck_channels=32, bev_channels=32))
    result = easyocc("eval", "--model", checkpoint, "--data", synth_root, "--json", tmp_path / "e.json")
    line = refused(result, "weights do not fit its own config", "of another shape (", ", ...)")
    assert len(line) <= 320


# --- 4: outputs that cannot be written are refused before any work, in every command
@pytest.fixture()
def places(tmp_path) -> dict:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    return {"file": tmp_path / "a_file", "folder": tmp_path / "a_folder"}


OUTPUT_CASES = [
    (["stream", "--data", "{data}", "--out", "{file}"], "--out {file}: is a file, expected a folder"),
    (["stream", "--data", "{data}", "--out", "{file}/sub"], "--out {file}/sub: {file} is a file, expected a folder"),
    (["stream", "--data", "{data}", "--json", "{folder}"], "--json {folder}: is a folder, expected a file path"),
    (["stream", "--data", "{data}", "--json", "/proc/easyocc/s.json"], "--json /proc/easyocc/s.json: cannot write in"),
    (["bench", "--data", "{data}", "--json", "{folder}"], "--json {folder}: is a folder, expected a file path"),
    (["demo", "--data", "{data}", "--out", "{file}"], "--out {file}: is a file, expected a folder"),
    (["calib", "check", "--data", "{data}", "--out", "{folder}"], "--out {folder}: is a folder, expected a file path"),
    (["synth", "--out", "{file}"], "--out {file}: is a file, expected a folder"),
    (["labels", "--data", "{data}", "--out", "{file}"], "--out {file}: is a file, expected a folder"),
    (["train", "--data", "{data}", "--out", "{file}"], "--out {file}: is a file, expected a folder"),
    (["eval", "--model", "m.pt", "--data", "{data}", "--json", "{folder}"], "--json {folder}: is a folder"),
    (["report", "--json", "{folder}"], "--json {folder}: is a folder, expected a file path"),
    (["export", "onnx", "--model", "m.pt", "--out", "{folder}"], "--out {folder}: is a folder, expected a file path"),
    (["export", "lint", "--model", "m.onnx", "--json", "{folder}"], "--json {folder}: is a folder"),
    (["ros", "run", "--json", "{folder}"], "--json {folder}: is a folder, expected a file path"),
    (["ros", "play", "--data", "{data}", "--timing-json", "{folder}"], "--timing-json {folder}: is a folder"),
]


@pytest.mark.parametrize(
    ("args", "message"), OUTPUT_CASES, ids=[" ".join(a[:2]) + " " + m[:6] for a, m in OUTPUT_CASES]
)
def test_unwritable_outputs_are_refused_up_front(args, message, places, synth_root, tmp_path):
    values = {"data": synth_root, **places}
    result = easyocc(*(a.format(**values) for a in args), cwd=tmp_path)
    refused(result, message.format(**values))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder"]  # nothing written


# --- 6: a missing optional dependency is one line naming its extra
BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == {module!r}:
            raise ModuleNotFoundError(f"No module named '{{name}}'", name=name)
sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize(
    ("module", "args", "hint"),
    [
        ("scipy", ["labels", "--data", "{data}", "--out", "{tmp}/labels", "-q"], "pip install 'easyocc[train]'"),
        ("onnx", ["export", "lint", "--model", "{tmp}/m.onnx"], "pip install 'easyocc[export]'"),
        ("rclpy", ["ros", "run", "--duration", "1"], "source a ROS 2 Jazzy installation"),
    ],
)
def test_missing_extra_is_one_line_naming_it(module, args, hint, synth_root, tmp_path):
    args = [a.format(data=synth_root, tmp=tmp_path) for a in args]
    result = easyocc(*args, prelude=BLOCK.format(module=module), cwd=tmp_path)
    extra = {"scipy": "train", "onnx": "export", "rclpy": "ros"}[module]
    refused(result, f"needs '{module}' (extra '{extra}'), which is not installed", hint)
    if module == "scipy":  # refused before any work: no label folder, no progress
        assert not (tmp_path / "labels").exists() and "%" not in result.stderr


# --- 7: training skips an unreadable sample, counts it, and a resume does not stop on it
def test_train_skips_a_corrupt_image_and_resumes_past_it(tmp_path):
    from easyocc.testing import TINY_TRAIN_CONFIG, make_tiny_world

    world = Path(make_tiny_world(tmp_path / "world"))
    image = frame_files(world, CAMERA)[0]
    truncate(image)
    run = tmp_path / "run"
    first = easyocc("train", "--config", TINY_TRAIN_CONFIG, "--data", world, "--out", run, "-q", "optim.iters=3")
    assert first.returncode == 0, first.stderr
    assert "1 unreadable training sample(s) skipped" in first.stdout
    skipped = json.loads((run / "skipped_samples.json").read_text())
    assert skipped["count"] == 1
    (reason,) = skipped["samples"].values()
    assert f"{image}: truncated JPEG" in reason
    resumed = easyocc("train", "--config", TINY_TRAIN_CONFIG, "--data", world, "--out", run, "-q", "optim.iters=5")
    assert resumed.returncode == 0, resumed.stderr
    assert "done: step 5" in resumed.stdout


# --- 5: degraded frames and pending parameters in the node's diagnostics
def test_node_diagnostics_report_degraded_frames_and_pending_reconfigure():
    pytest.importorskip("diagnostic_msgs", reason="the ROS 2 wheels are not installed")
    from builtin_interfaces.msg import Time
    from easyocc.ros_node.diagnostics import Health, diagnostic_array, values_of

    health = Health(["CAM_FRONT", "CAM_BACK"], stale_timeout_s=1.0)
    report = health.report()
    report["degraded"] = {"frames": 3, "cameras": {"CAM_BACK": 3}}
    report["pending_reconfigure"] = ["sync_queue_size"]
    pipeline = diagnostic_array(report, "easyocc", "onnxruntime", "tiny", Time()).status[1]
    values = values_of(pipeline)
    assert (values["degraded/frames"], values["degraded/CAM_BACK"]) == ("3", "3")
    assert values["pending_reconfigure"] == "sync_queue_size"
    assert values["dropped/total"] == "0"  # degraded frames are not drops


def test_node_reports_a_parameter_that_waits_for_the_next_configure(tmp_path):
    pytest.importorskip("rclpy", reason="the ROS 2 wheels are not installed")
    import rclpy
    from easyocc.ros_node.node import OccupancyNode
    from easyocc.ros_node.params import config_from_values
    from rclpy.parameter import Parameter

    from tests.runtime.stream_fixtures import build_tiny_model

    model = str(build_tiny_model(tmp_path / "tiny.onnx"))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=97)
    node = OccupancyNode(
        "pending_probe",
        context=context,
        parameter_overrides=[Parameter("model_path", value=model), Parameter("autostart", value=False)],
    )
    try:
        assert node.set_parameters([Parameter("sync_queue_size", value=8)])[0].successful
        assert node.pending_reconfigure == set()  # not configured yet: it applies at the first configure
        node.config = config_from_values({"model_path": model})  # as on_configure leaves it
        assert node.set_parameters([Parameter("sync_queue_size", value=6)])[0].successful
        assert node.set_parameters([Parameter("frame_id", value="map")])[0].successful  # live
        assert node.pending_reconfigure == {"sync_queue_size"}
        assert node.config.sync_queue_size == 4 and node.config.frame_id == "map"
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
