"""RadOcc distillation on tiny inputs: the losses, the ray items, the frozen teacher, and the trainer
with a teacher (the student's checkpoint is unchanged by it)."""

from __future__ import annotations

import csv

import pytest

torch = pytest.importorskip("torch")

from easyocc.runtime.contract.classes import NUM_CLASSES  # noqa: E402
from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from easyocc.runtime.contract.grid import GridSpec  # noqa: E402
from easyocc.training.config import load_config  # noqa: E402
from easyocc.training.data import OccDataset  # noqa: E402
from easyocc.training.distill.config import DistillConfig  # noqa: E402
from easyocc.training.distill.losses import depth_consistency, logit_kl, segment_affinity_loss  # noqa: E402
from easyocc.training.distill.rays import RayDataset  # noqa: E402
from easyocc.training.distill.render import render_rays  # noqa: E402
from easyocc.training.distill.teacher import Distiller, load_teacher  # noqa: E402
from easyocc.training.model import read_checkpoint  # noqa: E402
from easyocc.training.trainer import train  # noqa: E402

from tests.training.test_data import make_tiny_world  # noqa: E402
from tests.training.test_train import TINY_YAML, overrides  # noqa: E402

GRID = GridSpec(voxel_size=1.6)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def teacher(world, tmp_path_factory):
    """A 2-step teacher with a wider BEV head than the student (same inputs)."""
    out = tmp_path_factory.mktemp("teacher")
    config = load_config(TINY_YAML, overrides(world, out, "model.bev_channels=24", "data.val_scenes=0"))
    train(config, progress=False)
    return out / "model.pt"


def rendered_pair(seed: int):
    torch.manual_seed(seed)
    logits = torch.randn(1, NUM_CLASSES, *GRID.shape)
    origins = torch.zeros(1, 6, 3)
    directions = torch.nn.functional.normalize(torch.randn(1, 6, 3), dim=-1)
    return render_rays(logits, GRID, origins, directions, step=0.8), (origins, directions)


def test_losses_vanish_for_equal_inputs_and_grow_otherwise():
    a, _ = rendered_pair(0)
    b, _ = rendered_pair(1)
    assert float(depth_consistency(a, a)) == pytest.approx(0.0, abs=1e-5)
    assert float(depth_consistency(a, b)) > 0.01
    features = torch.randn(2, 40, 8)
    segments = torch.arange(40).remainder(4)[None].expand(2, -1)
    assert float(segment_affinity_loss(features, features, segments)) == pytest.approx(0.0, abs=1e-6)
    assert float(segment_affinity_loss(features, torch.randn(2, 40, 3), segments)) > 0.1
    assert float(segment_affinity_loss(features, torch.randn(2, 40, 3), torch.full((2, 40), -1))) == 0.0
    logits = torch.randn(1, NUM_CLASSES, 4, 4, 2)
    assert float(logit_kl(logits, logits, None)) == pytest.approx(0.0, abs=1e-6)
    mask = torch.zeros(1, 4, 4, 2, dtype=torch.bool)
    mask[0, 0] = True
    assert float(logit_kl(logits, torch.randn_like(logits), mask, 2.0)) > 0.1


def test_ray_items_follow_the_rig_and_carry_segments(world):
    from tests.training.test_data import tiny_config

    base = OccDataset(world, world, tiny_config(), augment=True, seed=3)
    rays = RayDataset(base, stride=8)
    item = rays[0]
    assert item["ray_origins"].shape == item["ray_dirs"].shape == (6 * 16 * 8, 3)
    assert torch.allclose(item["ray_dirs"].norm(dim=-1), torch.ones(6 * 16 * 8), atol=1e-5)
    segments = item["ray_segments"]
    assert (segments >= 0).float().mean() > 0.3 and len(torch.unique(segments[segments >= 0])) > 5
    assert torch.equal(item["semantics"], base[0]["semantics"])  # the wrapped item is untouched


def test_teacher_is_frozen_and_must_read_the_students_inputs(world, teacher, tmp_path):
    config = load_config(TINY_YAML, overrides(world, tmp_path))
    model = load_teacher(str(teacher), config.model, torch.device("cpu"))
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    other = load_config(TINY_YAML, overrides(world, tmp_path, "model.input_size=[160,64]")).model
    with pytest.raises(
        EasyOccError, match=r"distill.teacher .*model.pt: reads other inputs than the student \(input_size"
    ):
        load_teacher(str(teacher), other, torch.device("cpu"))
    with pytest.raises(EasyOccError, match="depth_weight, semantic_weight and kl_weight are all 0"):
        Distiller(DistillConfig(teacher=str(teacher)), config.model, model, torch.device("cpu"))


def test_training_with_a_teacher_logs_each_term_and_leaves_the_student_alone(world, teacher, tmp_path):
    extra = [f"distill.teacher={teacher}", "distill.depth_weight=1", "distill.semantic_weight=1", "distill.kl_weight=1"]
    distilled = tmp_path / "distilled"
    train(load_config(TINY_YAML, overrides(world, distilled, "data.val_scenes=1", *extra)), progress=False)
    rows = list(csv.DictReader(open(distilled / "log.csv")))
    assert len(rows) == 2 and all(float(rows[-1][k]) > 0 for k in ("depth", "sem", "kl"))
    plain = tmp_path / "plain"
    train(load_config(TINY_YAML, overrides(world, plain, "data.val_scenes=1")), progress=False)
    student, reference = read_checkpoint(distilled / "model.pt"), read_checkpoint(plain / "model.pt")
    assert student["config"] == reference["config"]
    assert {k: v.shape for k, v in student["model"].items()} == {k: v.shape for k, v in reference["model"].items()}
