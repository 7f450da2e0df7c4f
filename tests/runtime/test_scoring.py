"""`easyocc eval --predictions`: saved predictions in the Occ3D layout scored against the ground truth."""

import json
import shutil

import numpy as np
import pytest
from easyocc.runtime.contract.classes import FREE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.labels import read_labels
from easyocc.runtime.dataset.nuscenes import NuScenesDataset
from easyocc.runtime.dataset.scoring import prediction_path, score_predictions

from easyocc.cli import main as cli


@pytest.fixture
def perfect(synth_root, tmp_path):
    """Predictions equal to the ground truth, one file per sample: {token: path}."""
    dataset = NuScenesDataset(synth_root)
    paths = {}
    for sample in dataset.samples():
        path = prediction_path(tmp_path / "pred", sample.scene_name, sample.token)
        path.parent.mkdir(parents=True)
        np.savez_compressed(path, semantics=read_labels(dataset.labels_path(sample)).semantics)
        paths[sample.token] = path
    return tmp_path / "pred", paths


def test_ground_truth_as_prediction_scores_100(synth_root, perfect, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert cli(["eval", "--predictions", str(perfect[0]), "--data", str(synth_root), "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    for key in ("miou", "miou_star", "geometry_iou", "rayiou", "rayiou@1", "rayiou@2", "rayiou@4"):
        assert results[key] == pytest.approx(100.0), key
    assert results["frames"] == 3 and results["units"] == "percent" and results["rays"]["rays"] > 1000
    assert results["full"]["miou"] == pytest.approx(100.0)
    assert "RayIoU (mean)" in capsys.readouterr().out


def test_free_prediction_scores_0(synth_root, perfect):
    for path in perfect[1].values():
        np.savez_compressed(path, semantics=np.full((200, 200, 16), FREE, np.uint8))
    results = score_predictions(perfect[0], synth_root)
    assert results["miou"] == 0.0 and results["rayiou"] == 0.0 and results["geometry_iou"] == 0.0


def one_line_error(capsys, argv) -> str:
    assert cli(argv) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    return message


def test_bad_predictions_get_one_line_errors(synth_root, perfect, capsys):
    root, paths = perfect
    argv = ["eval", "--predictions", str(root), "--data", str(synth_root)]
    first, second, third = paths.values()
    np.savez_compressed(first, semantics=np.zeros((200, 200, 8), np.uint8))
    assert f"prediction file {first}: semantics has shape (200, 200, 8)" in one_line_error(capsys, argv)
    np.savez_compressed(first, semantics=np.zeros((200, 200, 16), np.int64))
    assert f"prediction file {first}: semantics has dtype int64, expected uint8" in one_line_error(capsys, argv)
    np.savez_compressed(first, occupancy=np.zeros((200, 200, 16), np.uint8))
    assert f"prediction file {first}: no 'semantics' array" in one_line_error(capsys, argv)
    shutil.rmtree(first.parent)
    assert f"prediction file not found: {first}" in one_line_error(capsys, argv)
    stranger = second.parent.parent / "not-a-token" / "labels.npz"
    stranger.parent.mkdir()
    shutil.copy(second, stranger)
    assert f"prediction {stranger}: sample token 'not-a-token' is not in scene" in one_line_error(capsys, argv)
    with pytest.raises(EasyOccError, match="predictions folder not found"):
        score_predictions(root / "nowhere", synth_root)
    assert third.is_file()


def test_streamed_run_saves_predictions_that_eval_scores(synth_root, tmp_path, capsys):
    out = tmp_path / "stream"
    assert cli(["stream", "--data", str(synth_root), "--out", str(out), "--save-predictions", "--no-npz"]) == 0
    saved = sorted((out / "predictions").rglob("labels.npz"))
    assert len(saved) == 3
    scores = tmp_path / "scores.json"
    argv = ["eval", "--predictions", str(out / "predictions"), "--data", str(synth_root), "--json", str(scores)]
    assert cli(argv) == 0
    results = json.loads(scores.read_text())
    assert results["frames"] == 3 and results["rays"]["ray_frames"] == 3
    assert 0 < results["miou"] < 100 and 0 < results["rayiou"] < 100 and 0 < results["geometry_iou"] < 100


def test_demo_prints_rayiou_beside_miou(synth_root, tmp_path, capsys):
    assert cli(["demo", "--data", str(synth_root), "--frames", "3", "--out", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    line = next(text for text in printed.splitlines() if text.startswith("RayIoU "))
    assert "mIoU (0-16)" in printed and 0 < float(line.split()[1]) < 100


def test_scoring_predictions_needs_no_torch(synth_root, perfect, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from easyocc.cli import main\n"
        f"raise SystemExit(main(['eval', '--predictions', {str(perfect[0])!r}, '--data', {str(synth_root)!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "miou 100.00" in result.stdout and "rayiou 100.00" in result.stdout
