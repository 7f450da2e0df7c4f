"""The reader's indexes on the real scene-0916 tables: the same answers as a scan of the tables, sweeps
and their ego poses dropped at load, annotation tables read only when boxes are asked for, one shared
reader per folder until a table changes. (The per-sample cost at trainval size is a benchmark:
benchmarks/bench_nuscenes_tables.py.)"""

import json
import shutil

import pytest
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.nuscenes import NuScenesDataset, load_dataset


@pytest.fixture()
def tables_copy(nuscenes_root, tmp_path):
    """The scene's tables (no images) in a folder the test may edit."""
    shutil.copytree(nuscenes_root / "v1.0-mini", tmp_path / "v1.0-mini")
    return tmp_path


def test_boxes_match_a_scan_of_the_annotation_table(nuscenes_root):
    dataset = NuScenesDataset(nuscenes_root)
    annotations = json.loads((nuscenes_root / "v1.0-mini" / "sample_annotation.json").read_text())
    total = 0
    for sample in dataset.samples():
        expected = [a["instance_token"] for a in annotations if a["sample_token"] == sample.token]
        boxes = dataset.boxes(sample)
        assert [b.instance_token for b in boxes] == expected
        total += len(boxes)
    assert total == len(annotations) == 2424


def test_annotation_tables_are_read_on_the_first_boxes_call(nuscenes_root):
    dataset = NuScenesDataset(nuscenes_root)
    samples = dataset.samples()
    assert len(samples) == 41 and "sample_annotation" not in dataset._tables
    assert len(dataset.boxes(samples[0])) > 0
    assert len(dataset._tables["sample_annotation"]) == 2424 and len(dataset._annotations) == 41


def test_sweeps_and_their_ego_poses_are_dropped_at_load(tables_copy):
    folder = tables_copy / "v1.0-mini"
    rows = json.loads((folder / "sample_data.json").read_text())
    poses = json.loads((folder / "ego_pose.json").read_text())
    sweep = {**rows[0], "token": "sweep-0", "is_key_frame": False, "ego_pose_token": "pose-of-sweep-0"}
    (folder / "sample_data.json").write_text(json.dumps([*rows, sweep]))
    (folder / "ego_pose.json").write_text(json.dumps([*poses, {**poses[0], "token": "pose-of-sweep-0"}]))
    dataset = NuScenesDataset(tables_copy)
    assert len(dataset._tables["sample_data"]) == len(rows) == 41 * 7  # 6 cameras + lidar per key frame
    assert "pose-of-sweep-0" not in dataset._by_token["ego_pose"]
    sample = dataset.samples()[0]
    assert len(sample.cameras) == 6 and all(frame.token != "sweep-0" for frame in sample.cameras.values())


def test_one_shared_reader_per_folder_until_a_table_changes(tables_copy):
    first = load_dataset(tables_copy)
    assert load_dataset(str(tables_copy)) is first
    scene = tables_copy / "v1.0-mini" / "scene.json"
    scenes = json.loads(scene.read_text())
    scenes[0]["name"] = "scene-renamed"
    scene.write_text(json.dumps(scenes))
    second = load_dataset(tables_copy)
    assert second is not first and second.scene_names == ["scene-renamed"]
    (tables_copy / "stats").mkdir()  # JSON outside the table folder (class statistics) is not a table
    (tables_copy / "stats" / "class_counts.json").write_text("{}")
    assert load_dataset(tables_copy) is second


def test_broken_tables_are_named(tables_copy):
    (tables_copy / "v1.0-mini" / "sample_annotation.json").write_text("[{")
    dataset = NuScenesDataset(tables_copy)  # the annotation table is not read yet
    with pytest.raises(EasyOccError, match=r"^dataset table .*sample_annotation.json: invalid JSON \(Expecting"):
        dataset.boxes(dataset.samples()[0])
    (tables_copy / "v1.0-mini" / "ego_pose.json").unlink()
    with pytest.raises(EasyOccError, match=r"^dataset .*: table v1.0-mini/ego_pose.json is missing$"):
        NuScenesDataset(tables_copy)
    with pytest.raises(EasyOccError, match=r"^dataset folder not found: .*absent$"):
        load_dataset(tables_copy / "absent")
