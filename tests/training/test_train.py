"""The trainer on the synthetic world: 2-iteration CPU smoke test, resume, config errors, eval CLI,
and DDP with 2 CPU processes (torchrun, gloo) against one process with gradient accumulation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from easyocc.training.config import load_config  # noqa: E402
from easyocc.training.model import build_model, load_checkpoint, read_checkpoint  # noqa: E402
from easyocc.training.trainer import StepBatches, learning_rate, train  # noqa: E402

from easyocc.testing import TINY_TRAIN_CONFIG as TINY_YAML  # noqa: E402  (training/configs/tiny.yaml)

PROJECT = Path(__file__).resolve().parents[2]
from easyocc.testing import make_tiny_world  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp("synth"))


def overrides(world, out_dir, *extra):
    return [f"data.root={world}", f"out_dir={out_dir}", *extra]


def test_two_iteration_smoke_run_via_cli(world, tmp_path, capsys):
    from easyocc.commands.train import main

    assert main(["--config", str(TINY_YAML), "-q", *overrides(world, tmp_path, "data.val_scenes=1")]) == 0
    out = capsys.readouterr().out
    assert "done: step 2, held-out camera-mask mIoU" in out
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,ce,lovasz,lr,grad_norm") and len(rows) == 3
    checkpoint = read_checkpoint(tmp_path / "last.pt")
    assert checkpoint["step"] == 2 and len(checkpoint["class_weights"]) == 18
    model, config = load_checkpoint(tmp_path / "last.pt")
    assert config.backbone_width == 8 and not model.training
    evaluation = json.loads((tmp_path / "eval_step000002.json").read_text())
    assert evaluation["camera"]["frames"] == 2 and 0 <= evaluation["camera"]["geometry_iou"] <= 100


def test_eval_cli_tables_json_and_images(world, tmp_path, capsys):
    import shutil

    import cv2
    from easyocc.runtime.topdown import LEGEND_WIDTH

    from easyocc.commands.eval import main

    train(load_config(TINY_YAML, overrides(world, tmp_path / "run", "optim.iters=1")), progress=False)
    shutil.copytree(Path(world) / "gts", tmp_path / "labels" / "gts")  # stands in for pseudo-labels
    args = ["--model", str(tmp_path / "run" / "model.pt"), "--data", world, "--labels", str(tmp_path / "labels")]
    args += ["--gt", world, "--split", "all", "--json", str(tmp_path / "eval.json"), "--vis", str(tmp_path / "vis")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "mIoU (0-16)" in out and "mIoU* (15 classes)" in out and "full (4 frames)" in out
    results = json.loads((tmp_path / "eval.json").read_text())
    assert results["camera"]["frames"] == 4 and results["gt_camera"]["miou"] == results["camera"]["miou"]
    assert results["miou"] == results["camera"]["miou"] and 0 <= results["rayiou"] <= 100  # RayIoU beside mIoU
    assert results["rays"]["ray_frames"] == 4 and "RayIoU (mean)" in out
    images = sorted((tmp_path / "vis").rglob("*.png"))
    assert len(images) == 4
    image = cv2.imread(str(images[0]))
    assert image.shape == (50 * 2 + 24, 3 * (50 * 2 + LEGEND_WIDTH) + 2 * 8, 3)  # prediction | labels | gt


def test_resume_continues_and_refuses_another_model(world, tmp_path):
    first = train(load_config(TINY_YAML, overrides(world, tmp_path, "optim.iters=1")), progress=False)
    assert first["step"] == 1
    second = train(load_config(TINY_YAML, overrides(world, tmp_path, "optim.iters=2")), progress=False)
    assert second["step"] == 2 and len(second["losses"]) == 1  # only step 2 was run
    with pytest.raises(EasyOccError, match=r"different model \(bev_channels: 16 != 32\)"):
        train(
            load_config(TINY_YAML, overrides(world, tmp_path, "optim.iters=3", "model.bev_channels=32")), progress=False
        )


def test_config_overrides_are_typed_and_checked():
    config = load_config(TINY_YAML, ["optim.lr=1e-3", "model.input_size=[160, 64]", "data.scale_range=[1, 1.2]"])
    assert config.optim.lr == 0.001 and config.model.input_size == (160, 64) and config.data.scale_range == (1.0, 1.2)
    with pytest.raises(EasyOccError, match="unknown config key 'optim.lrr'; known under optim: iters, batch_size"):
        load_config(TINY_YAML, ["optim.lrr=1"])
    with pytest.raises(EasyOccError, match="config optim.iters: expected int, got 'many'"):
        load_config(TINY_YAML, ["optim.iters=many"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.iters=-3", "config optim.iters: -3 is below the minimum 1"),
        ("optim.batch_size=0", "config optim.batch_size: 0 is below the minimum 1"),
        ("optim.lr=nan", "config optim.lr: nan is not a finite number"),
        ("optim.iterz=5", "unknown config key 'optim.iterz'; known under optim: iters, batch_size, grad_accum, lr"),
        ("data.mask=all", "config data.mask: 'all' is not one of camera, lidar, none"),
    ],
)
def test_cli_refuses_bad_values_before_work_starts(tmp_path, capsys, override, message):
    from easyocc.cli import main

    assert main(["train", "--config", str(TINY_YAML), f"out_dir={tmp_path / 'run'}", override]) == 2
    err = capsys.readouterr().err
    assert err == f"easyocc train: error: {message}\n" or (err.count("\n") == 1 and message in err), err
    assert not (tmp_path / "run").exists()  # refused before any work


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("optim: {iters: 2\n", "invalid YAML"),
        ("model: !!python/object:os.system {}\n", "invalid YAML at line 1 (could not determine a constructor"),
        ("- a list\n", "expected a mapping of keys, got list"),
    ],
)
def test_cli_refuses_bad_yaml_naming_the_file(tmp_path, capsys, text, message):
    from easyocc.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"easyocc train: error: config file {path}: {message}" in err, err


def test_print_config_prints_the_effective_yaml(capsys):
    import yaml

    from easyocc.cli import main

    assert main(["train", "--config", str(TINY_YAML), "optim.iters=7", "--data", "/d", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == load_config(TINY_YAML, ["optim.iters=7", "data.root=/d"]).to_dict()
    assert printed["optim"]["iters"] == 7 and printed["data"]["root"] == "/d"


def test_shipped_configs_load_and_match_the_variants():
    from easyocc.training.model.config import variant

    configs = {path.stem: load_config(path) for path in (PROJECT / "training" / "configs").glob("*.yaml")}
    assert {"compact", "paper", "demo", "tiny"} <= set(configs)
    assert configs["compact"].model == variant("compact") and configs["paper"].model == variant("paper")


def test_schedule_and_batches():
    from easyocc.training.config import OptimConfig

    optim = OptimConfig(iters=100, warmup_iters=10, lr=1.0, min_lr_ratio=0.1, batch_size=2, grad_accum=2)
    assert learning_rate(0, optim) == pytest.approx(0.1) and learning_rate(9, optim) == pytest.approx(1.0)
    assert learning_rate(99, optim) == pytest.approx(0.1, abs=1e-3)
    single = list(StepBatches(5, optim, seed=1, world=1, rank=0))
    ranks = [list(StepBatches(5, OptimConfig(iters=100, batch_size=2), seed=1, world=2, rank=r)) for r in (0, 1)]
    # one process with 2 micro-steps sees exactly what 2 DDP ranks see, step by step
    assert single[0::2] == ranks[0] and single[1::2] == ranks[1]
    first_epoch = [k for batch in single for k in batch][:5]
    assert sorted(first_epoch) == [0, 1, 2, 3, 4]  # each epoch is a permutation of the set


def test_ddp_two_cpu_processes_match_one_process(world, tmp_path):
    common = ["optim.iters=2", "optim.batch_size=1", "data.augment=true", "threads=1", "resume=false"]
    single = load_config(TINY_YAML, overrides(world, tmp_path / "single", "optim.grad_accum=2", *common))
    train(single, progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "easyocc.commands.train", "--config", str(TINY_YAML), "-q",
        *overrides(world, tmp_path / "ddp", "optim.grad_accum=1", *common),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    a = read_checkpoint(tmp_path / "single" / "last.pt")["model"]
    b = read_checkpoint(tmp_path / "ddp" / "last.pt")["model"]
    model, _ = load_checkpoint(tmp_path / "single" / "last.pt")
    parameters = {name for name, _ in model.named_parameters()}
    worst = max(float((a[name] - b[name]).abs().max()) for name in parameters)
    # Two AdamW steps at lr 1e-3 move a weight by up to ~2e-3; reduction order differs only in rounding.
    assert worst < 1e-5, f"DDP and single-process weights differ by {worst}"
    torch.manual_seed(single.seed)
    initial = build_model(single.model).state_dict()
    assert max(float((a[name] - initial[name]).abs().max()) for name in parameters) > 1e-4  # it did train
    losses_single = (tmp_path / "single" / "log.csv").read_text().splitlines()[1:]
    losses_ddp = (tmp_path / "ddp" / "log.csv").read_text().splitlines()[1:]
    assert len(losses_single) == len(losses_ddp) == 2
