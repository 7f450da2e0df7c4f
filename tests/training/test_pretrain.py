"""OccFeat pretraining: lidar occupancy targets from hand-built sweeps, the feature lift through the
view transform, the pretraining network and init.from, the teachers (a tiny random DINOv2 saved to a
temporary folder, the synthetic-semantics stand-in), and 2-step pretraining / fine-tuning runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from easyocc.calibration import build_view_transform, default_rig  # noqa: E402
from easyocc.runtime.contract.classes import FREE  # noqa: E402
from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from easyocc.runtime.contract.grid import GridSpec  # noqa: E402
from easyocc.runtime.dataset.lidar_occupancy import (  # noqa: E402
    Sweep,
    moving_boxes,
    outside_ego,
    points_in_box,
    ray_occupancy,
    score_prediction,
)
from easyocc.runtime.dataset.nuscenes import Box  # noqa: E402
from easyocc.training.config import load_config  # noqa: E402
from easyocc.training.model import build_model, read_checkpoint, save_checkpoint  # noqa: E402
from easyocc.training.pretrain.network import PretrainNet, load_init  # noqa: E402
from easyocc.training.pretrain.objective import (  # noqa: E402
    binary_occupancy_loss,
    lift_features,
    semantic_occupancy_logit,
)
from easyocc.training.pretrain.targets import TargetSpec, build_lidar_targets  # noqa: E402
from easyocc.training.pretrain.teachers import load_teacher, train_standin  # noqa: E402
from easyocc.training.trainer import train  # noqa: E402

from tests.training.test_data import make_tiny_world, tiny_config  # noqa: E402

PROJECT = Path(__file__).resolve().parents[2]
TINY_YAML = PROJECT / "training" / "configs" / "tiny.yaml"
REAL = PROJECT.parent / "shared" / "data" / "nuscenes-scene-0916"
# 5 x 5 x 1 voxels of 1 m; voxel (i, j, 0) has its centre at (i, j - 2, 0)
LINE_GRID = GridSpec((-0.5, -2.5, -0.5), (4.5, 2.5, 0.5), 1.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp("synth"))


# -- lidar occupancy targets ------------------------------------------------------------------------
def test_one_return_gives_occupied_free_before_and_unknown_elsewhere():
    sweep = Sweep(np.array([[3.2, 0.0, 0.0]]), np.zeros(3))
    occupancy = ray_occupancy(LINE_GRID, [sweep])
    row = 2  # y = 0
    assert occupancy.occupied[:, row, 0].tolist() == [False, False, False, True, False]
    assert occupancy.free[:, row, 0].tolist() == [True, True, True, False, False]  # x = 4: behind the hit
    assert not occupancy.known[:, [0, 1, 3, 4]].any()  # other directions had no return: unknown
    assert occupancy.occupied.sum() == 1 and occupancy.free.sum() == 3


def test_occupied_wins_over_a_later_sweeps_free_space():
    near = Sweep(np.array([[1.1, 0.0, 0.0]]), np.zeros(3))
    far = Sweep(np.array([[4.2, 0.0, 0.0]]), np.zeros(3))
    occupancy = ray_occupancy(LINE_GRID, [near, far])
    assert occupancy.occupied[:, 2, 0].tolist() == [False, True, False, False, True]
    assert occupancy.free[:, 2, 0].tolist() == [True, False, True, True, False]


def test_returns_outside_the_grid_still_free_the_voxels_before_them():
    occupancy = ray_occupancy(LINE_GRID, [Sweep(np.array([[30.0, 0.0, 0.0]]), np.zeros(3))])
    assert not occupancy.occupied.any() and occupancy.free[:, 2, 0].all()


def test_ego_body_points_are_dropped():
    points = np.array([[0.5, 0.0, 1.0], [1.5, 0.5, 1.8], [5.0, 0.0, 0.5], [0.0, 3.0, 0.0]])
    assert outside_ego(points).tolist() == [False, False, True, True]


def _box(instance: str, centre, yaw: float = 0.0) -> Box:
    c, s = np.cos(yaw), np.sin(yaw)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return Box(np.asarray(centre, float), np.array([2.0, 4.0, 1.5]), rotation, "vehicle.car", instance, 4)


def test_moving_objects_are_found_and_their_points_removed():
    past = [_box("parked", [10, 0, 0]), _box("driving", [20, 0, 0]), _box("gone", [30, 0, 0])]
    current = [_box("parked", [10.05, 0, 0]), _box("driving", [21, 0, 0])]
    assert [b.instance_token for b in moving_boxes(past, current, 0.3)] == ["driving", "gone"]
    # box axes: length 4 m along its x, width 2 m along its y; yawed by 90 degrees the length is along y
    turned = _box("t", [0, 0, 0], np.pi / 2)
    points = np.array([[0.0, 1.9, 0.0], [1.9, 0.0, 0.0], [0.0, 2.3, 0.0]])
    assert points_in_box(points, turned, margin_m=0.2).tolist() == [True, False, False]


def test_scores_of_a_prediction_against_a_sweep():
    sweep = Sweep(np.array([[3.2, 0.0, 0.0], [3.1, 0.1, 0.0]]), np.zeros(3))
    assert np.isnan(score_prediction(LINE_GRID, np.zeros(LINE_GRID.shape, bool), sweep).recall_at_1_above_ground)
    prediction = np.zeros(LINE_GRID.shape, bool)
    prediction[4, 2, 0] = True  # next to the hit voxel (3, 2): recall@1 counts it
    prediction[1, 2, 0] = True  # on the ray before the hit: a free-space violation
    scores = score_prediction(LINE_GRID, prediction, sweep)
    assert scores.recall_at_1 == 1.0 and scores.returns == 2
    assert scores.free_violation == pytest.approx(1 / 3) and scores.free_voxels == 3
    assert scores.occupied_voxels == 2 and scores.occupied_share == pytest.approx(2 / 25)
    prediction[:] = False
    prediction[0, 0, 0] = True  # two voxels away from the hit in x and y: no recall
    assert score_prediction(LINE_GRID, prediction, sweep).recall_at_1 == 0.0
    with pytest.raises(EasyOccError, match=r"prediction has shape \(2, 2, 2\), grid expects \(5, 5, 1\)"):
        score_prediction(LINE_GRID, np.zeros((2, 2, 2), bool), sweep)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/nuscenes-scene-0916 is absent")
def test_targets_on_the_real_scene_hold_out_the_last_frames(tmp_path):
    from easyocc.runtime.dataset.labels import read_labels
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset

    grid = GridSpec((-40, -40, -1), (40, 40, 5.4), 1.6)
    spec = TargetSpec(str(REAL), grid.to_dict(), past_frames=2, hold_out_last=39)
    out = build_lidar_targets(spec, tmp_path / "t")
    samples = NuScenesDataset(REAL).samples()
    written = sorted(p.parent.name for p in (out / "gts").rglob("labels.npz"))
    assert written == sorted(s.token for s in samples[:2])  # 41 key frames, the last 39 held out
    labels = read_labels(out / "gts" / samples[1].scene_name / samples[1].token / "labels.npz", grid)
    occupied = labels.semantics == 0
    known = labels.mask_lidar.astype(bool)
    assert occupied.any() and (occupied <= known).all() and ((labels.semantics == FREE) & known).sum() > occupied.sum()
    assert json.loads((out / "lidar_targets.json").read_text())["hold_out_last"] == 39
    other = TargetSpec(str(REAL), grid.to_dict(), past_frames=1, hold_out_last=39)
    with pytest.raises(EasyOccError, match=r"lidar targets .* were built differently \(lidar_targets.json\)"):
        build_lidar_targets(other, out)


# -- feature lift -----------------------------------------------------------------------------------
def test_lift_puts_a_pixels_feature_in_the_cells_that_project_to_it():
    features = torch.zeros(1, 2, 4, 4)  # one camera, D = 2, a 4 x 4 map
    features[0, :, 1, 2] = torch.tensor([1.0, -1.0])  # the pixel at row 1, column 2
    centre = [(2 + 0.5) / 4 * 2 - 1, (1 + 0.5) / 4 * 2 - 1]  # its centre in grid_sample coordinates
    vt_uv = torch.tensor([[[centre, [-0.75, -0.75], centre]]])  # [B, N_cam, 3 cells, 2]
    vt_weights = torch.tensor([[[1.0, 1.0, 0.0]]])  # the third cell is seen by no camera
    lifted, seen = lift_features(features, vt_uv, vt_weights, (3, 1, 1))
    assert lifted[0, :, 0, 0, 0].tolist() == [1.0, -1.0]
    assert lifted[0, :, 1, 0, 0].tolist() == [0.0, 0.0] and lifted[0, :, 2, 0, 0].tolist() == [0.0, 0.0]
    assert seen[0, :, 0, 0].tolist() == [True, True, False]


def test_lift_through_a_real_rig_matches_each_cells_projection():
    rig = default_rig().resized(64, 32)
    grid = GridSpec((-40, -40, -1), (40, 40, 5.4), 3.2)
    centres = grid.centres(1, 1)
    tables = build_view_transform(rig, centres)
    # Feature map = the pixel's own (u, v): bilinear sampling of a ramp is exact, so each cell seen
    # by one camera must receive the pixel coordinates its centre projects to.
    v, u = torch.meshgrid(torch.arange(32.0), torch.arange(64.0), indexing="ij")
    ramp = torch.stack([u, v])[None].repeat(len(rig), 1, 1, 1)
    lifted, seen = lift_features(
        ramp, torch.from_numpy(tables.uv_norm)[None], torch.from_numpy(tables.weights)[None], grid.shape
    )
    lifted = lifted[0].reshape(2, -1).T.numpy()
    single = (tables.weights == 1.0).any(axis=0)
    checked = 0
    for index, camera in enumerate(rig):
        uv, _, inside = camera.project(centres.reshape(-1, 3), min_depth_m=0.1)
        interior = inside & single & (tables.weights[index] == 1.0)
        interior &= (uv[:, 0] >= 0) & (uv[:, 0] <= 63) & (uv[:, 1] >= 0) & (uv[:, 1] <= 31)
        np.testing.assert_allclose(lifted[interior], uv[interior], atol=1e-3)
        checked += int(interior.sum())
    assert checked > 100 and seen.sum() == (tables.weights > 0).any(axis=0).sum()


# -- losses, network, init.from ---------------------------------------------------------------------
def test_binary_occupancy_loss_and_the_semantic_models_occupancy_logit():
    target = torch.tensor([0, FREE, 3, FREE])
    known = torch.tensor([True, True, True, False])
    logit = torch.tensor([2.0, -2.0, 0.0, 50.0])
    expected = (2 * np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-2.0)) + 2 * np.log(2)) / 3
    assert float(binary_occupancy_loss(logit, target, known, 2.0)) == pytest.approx(expected, rel=1e-5)
    logits = torch.full((18, 1, 1, 1), -30.0)
    logits[FREE] = 0.0
    logits[4] = np.log(3.0)  # P(car) = 3 P(free): log odds of occupied = ln 3
    assert float(semantic_occupancy_logit(logits)) == pytest.approx(np.log(3.0), abs=1e-4)


def test_pretrain_net_outputs_and_its_trunk_loads_into_the_student(tmp_path):
    config = tiny_config()
    net = PretrainNet(config, feature_dim=5).eval()
    images = torch.zeros(1, 6, 64, 128, 3, dtype=torch.uint8)
    uv = torch.zeros(1, 6, config.num_cells, 2)
    weights = torch.ones(1, 6, config.num_cells) / 6
    out = net(images, uv, weights)
    assert tuple(out["occupancy"].shape) == (1, *config.grid_spec.shape)
    assert tuple(out["features"].shape) == (1, 5, *config.cell_shape)
    save_checkpoint(tmp_path / "pre.pt", net, config)
    student = build_model(config)
    fresh = load_init(student, tmp_path / "pre.pt")
    assert fresh == ["head.classifier.bias", "head.classifier.weight"]
    assert torch.equal(student.backbone.conv1.weight, net.backbone.conv1.weight)
    assert torch.equal(student.head.refine[0].weight, net.head.refine[0].weight)
    wider = build_model(tiny_config(backbone_width=16))
    with pytest.raises(EasyOccError, match=r"init.from .*pre.pt: \d+ mis-shaped and 0 missing layer\(s\): backbone"):
        load_init(wider, tmp_path / "pre.pt")


def test_init_from_refuses_a_checkpoint_without_the_trunk(tmp_path):
    config = tiny_config()
    torch.save({"model": {"backbone.conv1.weight": torch.zeros(1)}, "config": config.to_dict()}, tmp_path / "x.pt")
    with pytest.raises(EasyOccError, match=r"1 mis-shaped and \d+ missing layer\(s\): backbone.conv1.weight \[1\]"):
        load_init(build_model(config), tmp_path / "x.pt")


def test_init_section_parses_from_and_refuses_other_keys():
    config = load_config(TINY_YAML, ["init.from=runs/pre/model.pt"])
    assert config.init.from_ == "runs/pre/model.pt" and config.to_dict()["init"] == {"from": "runs/pre/model.pt"}
    with pytest.raises(EasyOccError, match="config init: unknown key\\(s\\) path; known: from"):
        load_config(TINY_YAML, ["init.path=x"])


# -- teachers ---------------------------------------------------------------------------------------
def test_dinov2_teacher_from_a_local_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.Dinov2Config(
        hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48, patch_size=14, image_size=56
    )
    torch.manual_seed(0)
    transformers.Dinov2Model(config).save_pretrained(tmp_path / "dinov2")
    teacher = load_teacher(f"dinov2:{tmp_path / 'dinov2'}")
    features = teacher(torch.randint(0, 255, (2, 64, 128, 3), dtype=torch.uint8))
    assert teacher.dim == 24 and tuple(features.shape) == (2, 24, 5, 9)  # 64 -> 70 and 128 -> 126 px
    assert not any(p.requires_grad for p in teacher.parameters()) and torch.isfinite(features).all()


def test_teacher_errors_name_the_problem(tmp_path):
    with pytest.raises(EasyOccError, match=r"teacher dinov2:.*nowhere: no config.json there"):
        load_teacher(f"dinov2:{tmp_path / 'nowhere'}")
    with pytest.raises(EasyOccError, match="pretrain.teacher: unknown kind 'clip' \\(dinov2 or standin\\)"):
        load_teacher("clip:/x")
    with pytest.raises(EasyOccError, match="pretrain.teacher 'dinov2' must be dinov2:DIR or standin:PATH"):
        load_teacher("dinov2")


def test_standin_teacher_trains_on_synthetic_semantics_and_loads(world, tmp_path):
    report = train_standin(world, ["synth-0000"], tmp_path / "standin.pt", input_size=(128, 64), steps=3, dim=8)
    assert report["steps"] == 3 and np.isfinite(report["loss"]) and 0 <= report["pixel_accuracy"] <= 1
    assert read_checkpoint(tmp_path / "standin.pt")["config"]["scenes"] == ["synth-0000"]
    teacher = load_teacher(f"standin:{tmp_path / 'standin.pt'}")
    assert tuple(teacher(torch.zeros(6, 64, 128, 3, dtype=torch.uint8)).shape) == (6, 8, 8, 16)


# -- runs -------------------------------------------------------------------------------------------
def test_pretraining_with_distillation_then_fine_tuning(world, tmp_path):
    train_standin(world, ["synth-0000"], tmp_path / "standin.pt", input_size=(128, 64), steps=1, dim=8)
    pre = load_config(TINY_YAML, [
        f"data.root={world}", f"out_dir={tmp_path / 'pre'}", "pretrain.enabled=true", "pretrain.feature_weight=1.0",
        f"pretrain.teacher=standin:{tmp_path / 'standin.pt'}", "data.val_scenes=1",
    ])  # fmt: skip
    result = train(pre, progress=False)
    rows = (tmp_path / "pre" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,occ,feat,lr") and result["metrics"] == {}
    occ, feat = (float(v) for v in rows[-1].split(",")[2:4])
    assert occ > 0 and 0 < feat <= 2  # 1 - cosine lies in [0, 2]
    state = read_checkpoint(tmp_path / "pre" / "model.pt")["model"]
    assert "feature_head.1.weight" in state and "head.classifier.weight" not in state
    fine = load_config(TINY_YAML, [
        f"data.root={world}", f"out_dir={tmp_path / 'ft'}", f"init.from={tmp_path / 'pre' / 'model.pt'}",
        f"pretrain.lidar_root={world}", "pretrain.lidar_hold_out=1", "data.val_scenes=1",
        f"pretrain.targets_dir={tmp_path / 'targets'}", "optim.iters=4",
    ])  # fmt: skip
    result = train(fine, progress=False)
    header, *body = (tmp_path / "ft" / "log.csv").read_text().splitlines()
    assert header.startswith("step,loss,ce,lovasz,occ,lr") and len(body) == 4
    assert result["metrics"]["camera"]["frames"] == 2
    # lidar-only samples: the last key frame of each scene is held out and has no target
    assert len(list((tmp_path / "targets").rglob("labels.npz"))) == 2


def test_distillation_without_a_teacher_is_refused(world, tmp_path):
    config = load_config(TINY_YAML, [f"data.root={world}", f"out_dir={tmp_path}", "pretrain.enabled=true",
                                      "pretrain.feature_weight=1.0"])  # fmt: skip
    with pytest.raises(EasyOccError, match=r"pretrain.feature_weight > 0 needs pretrain.teacher"):
        train(config, progress=False)


def test_recall_above_ground_counts_only_returns_higher_than_half_a_metre():
    grid = GridSpec((-0.5, -2.5, -0.5), (4.5, 2.5, 2.5), 1.0)  # z layers centred at 0, 1, 2 m
    sweep = Sweep(np.array([[3.2, 0.0, 0.0], [3.2, 0.0, 2.0]]), np.array([0.0, 0.0, 1.0]))
    ground_only = np.zeros(grid.shape, bool)
    ground_only[:, :, 0] = True  # a flat sheet: recalls the road return, misses the one at 2 m
    scores = score_prediction(grid, ground_only, sweep)
    assert scores.recall_at_1 == 0.5 and scores.recall_at_1_above_ground == 0.0
