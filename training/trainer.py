"""The training loop: AdamW with warm-up and cosine decay, gradient clipping, AMP on CUDA, atomic
checkpoints with resume, CSV and TensorBoard logs, periodic evaluation, torchrun DDP.

One flat loop in `train`. Under torchrun (RANK/WORLD_SIZE set) every process trains on its share of
each global batch; gradients are averaged by DDP (gloo on the CPU, nccl on CUDA).
"""

from __future__ import annotations

import csv
import math
import os
import random
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.training.config import TrainConfig
from easyocc.training.data import OccDataset, select_scenes, shared_class_counts
from easyocc.training.losses import class_weights_from_counts
from easyocc.training.model import ModelConfig, read_checkpoint, save_checkpoint
from easyocc.training.model.backbone import load_pretrained
from easyocc.training.pretrain.data import build_train_set
from easyocc.training.pretrain.network import build_training_model
from easyocc.training.pretrain.objective import Objective


def learning_rate(step: int, optim) -> float:
    """Linear warm-up to optim.lr, then cosine decay to optim.lr * optim.min_lr_ratio at the last step."""
    if step < optim.warmup_iters:
        return optim.lr * (step + 1) / optim.warmup_iters
    span = max(optim.iters - optim.warmup_iters, 1)
    progress = min((step - optim.warmup_iters) / span, 1.0)
    return optim.lr * (optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class StepBatches(torch.utils.data.Sampler):
    """Dataset keys for each micro-batch of this process, from `start_step` on.

    The global sample stream is a fresh seeded permutation per epoch; step s takes the next
    batch_size * world * accum keys and micro-step a of rank r takes its slice, so a run on one
    process with grad_accum = k sees the same samples per step as k DDP processes.
    A key is index + epoch * n: the dataset derives the augmentation from it.
    """

    def __init__(self, n: int, optim, seed: int, world: int = 1, rank: int = 0, start_step: int = 0):
        self.n, self.seed, self.world, self.rank = n, seed, world, rank
        self.bs, self.accum = optim.batch_size, optim.grad_accum
        self.start, self.stop = start_step, optim.iters

    def __len__(self) -> int:
        return (self.stop - self.start) * self.accum

    def _stream(self, begin: int, count: int) -> list[int]:
        keys, epoch = [], begin // self.n
        offset = begin % self.n
        while len(keys) < count:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            keys += [int(i) + epoch * self.n for i in order[offset:]]
            epoch, offset = epoch + 1, 0
        return keys[:count]

    def __iter__(self):
        per_step = self.bs * self.world * self.accum
        for step in range(self.start, self.stop):
            keys = self._stream(step * per_step, per_step)
            for micro in range(self.accum):
                first = (micro * self.world + self.rank) * self.bs
                yield keys[first : first + self.bs]


def compute_class_weights(dataset: OccDataset, c: float = 1.02, device=None) -> np.ndarray:
    """ENet class weights 1 / ln(c + frequency) from the labelled voxels of every training sample,
    counted once on rank 0, cached beside the labels (a resume or a rerun reads the cache) and
    broadcast to the other ranks."""
    counts, _ = shared_class_counts(dataset, device)
    return class_weights_from_counts(counts, c)


def _distributed() -> tuple[int, int, int]:
    """(rank, local_rank, world) under torchrun, else (0, 0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1
    return int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise EasyOccError("device cuda requested but torch sees no CUDA device")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise EasyOccError(f"unknown device '{name}' (auto, cpu or cuda)")
    return torch.device("cpu")


def _optimizer(model: torch.nn.Module, optim) -> torch.optim.AdamW:
    # No weight decay on norms and biases: decaying BN scales towards 0 fights the normalisation.
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas)


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def train(config: TrainConfig, progress: bool = True) -> dict:
    """Run (or resume) training. Returns {"step", "loss" (last logged), "metrics" (final eval or {})}."""
    rank, local_rank, world = _distributed()
    ddp = world > 1
    device = _device(config.device, local_rank)
    if ddp:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(config, rank, world, device, progress and rank == 0)
    finally:
        if ddp:
            torch.distributed.destroy_process_group()


def _train(config: TrainConfig, rank: int, world: int, device: torch.device, progress: bool) -> dict:
    ddp, master = world > 1, rank == 0
    if config.threads:
        torch.set_num_threads(config.threads)
    # Same seed on every rank: identical initial weights (DDP also broadcasts them from rank 0).
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    out_dir = Path(config.out_dir)
    data, optim = config.data, config.optim
    if not data.root:
        raise EasyOccError("config data.root is empty: give the dataset folder (data.root=DIR)")

    split = select_scenes(data.root, data.split, data.eval_split, data.val_scenes)
    train_scenes, val_scenes = split.require_train(data.root), split.held_out
    if config.pretrain.enabled:
        val_scenes = []  # the pretraining network has no semantic output to score
    # labelled scenes of data.root, plus lidar-only samples (pretraining, pretrain.lidar_root)
    train_set = build_train_set(config, train_scenes)
    labelled = train_set.labelled()
    class_weights = (
        compute_class_weights(labelled, config.loss.class_weight_c, device)
        if config.loss.class_weighting and labelled is not None
        else None
    )
    weights_t = torch.from_numpy(class_weights).to(device) if class_weights is not None else None

    model, teacher = build_training_model(config)  # PretrainNet when pretraining; init.from applied
    objective = Objective(config, weights_t, teacher.to(device) if teacher is not None else None)
    if config.pretrained_backbone:
        load_pretrained(model.backbone, config.pretrained_backbone)
    model.to(device)
    distiller, train_set = _distiller(config, model, device, train_set)
    optimizer = _optimizer(model, optim)
    last_path = out_dir / "last.pt"
    start_step, elapsed_before = _resume(config, model, optimizer, last_path, master)
    if start_step >= optim.iters and master:
        print(f"{last_path} already reached step {start_step} of {optim.iters}; nothing to train")
    raw_model = model
    if ddp:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    sampler = StepBatches(len(train_set), optim, config.seed, world, rank, start_step)
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_sampler=sampler,
        num_workers=data.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=data.workers > 0,
    )
    scaler, autocast = _mixed_precision(config.amp, device)

    writer, bar = _monitors(config, master, progress, start_step)

    def checkpoint(step: int) -> None:
        if master:
            save_checkpoint(
                last_path,
                raw_model,
                config.model,
                optimizer=optimizer.state_dict(),
                step=step,
                train_config=config.to_dict(),
                class_weights=None if class_weights is None else class_weights.tolist(),
                elapsed_s=time.time() - t0,
            )

    model.train()
    batches = iter(loader)
    skipped: set[int] = set()  # unreadable training samples met by this process (replaced, not fatal)
    # t0 counts from before the resume, so elapsed_s is the whole run's training time.
    step, last_row, history, t0 = start_step, {}, [], time.time() - elapsed_before
    while step < optim.iters:
        lr = learning_rate(step, optim)
        for group in optimizer.param_groups:
            group["lr"] = lr
        micro_batches = (_next_batch(batches, device, skipped, step) for _ in range(optim.grad_accum))
        loss_sum, parts_sum = _accumulate(model, objective, distiller, micro_batches, scaler, autocast, optim, ddp)
        scaler.unscale_(optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip or float("inf")))
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        history.append(loss_sum)

        if master and (step % config.log_every == 0 or step == optim.iters):
            last_row = {
                "step": step,
                "loss": loss_sum,
                **parts_sum,
                "lr": lr,
                "grad_norm": grad_norm,
                "elapsed_s": round(time.time() - t0, 2),
            }
            _log_row(out_dir / "log.csv", last_row, writer)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.3f}", lr=f"{lr:.2e}")
        if step % config.ckpt_every == 0 or step == optim.iters:
            checkpoint(step)
        if config.eval_every and step % config.eval_every == 0 and step < optim.iters and val_scenes:
            _periodic_eval(config, raw_model, val_scenes, device, step, writer, out_dir, master, ddp)
            model.train()
    if bar is not None:
        bar.close()
    if master and skipped:
        _write_skipped(out_dir, train_set, skipped)
    if master:
        # The deliverable: weights and configs only (last.pt also holds the optimizer, for resuming).
        save_checkpoint(out_dir / "model.pt", raw_model, config.model, step=step, train_config=config.to_dict())
    metrics = {}
    if val_scenes:
        metrics = _periodic_eval(config, raw_model, val_scenes, device, step, writer, out_dir, master, ddp)
    if writer is not None:
        writer.close()
    return {
        "step": step,
        "loss": last_row.get("loss"),
        "losses": history,
        "metrics": metrics,
        "skipped_samples": len(skipped),
    }


def _distiller(config: TrainConfig, model, device: torch.device, train_set):
    """(Distiller or None, training set): RadOcc's frozen teacher, read through hooks on the student
    (training/distill); its losses need camera rays beside each sample."""
    if not config.distill.teacher:
        return None, train_set
    from easyocc.training.distill.rays import RayDataset
    from easyocc.training.distill.teacher import Distiller

    distiller = Distiller(config.distill, config.model, model, device)
    return distiller, RayDataset(train_set, config.distill.ray_stride) if distiller.needs_rays else train_set


def _monitors(config: TrainConfig, master: bool, progress: bool, start_step: int):
    """(TensorBoard writer, progress bar), each None where off; rank 0 also writes out_dir/config.json."""
    writer = bar = None
    if master:
        out_dir = Path(config.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out_dir / "config.json", config.to_dict())
        if config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out_dir / "tb"))
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.optim.iters, initial=start_step, desc="train", dynamic_ncols=True, mininterval=5)
    return writer, bar


def _resume(config: TrainConfig, model, optimizer, last_path: Path, master: bool) -> tuple[int, float]:
    """(step, elapsed seconds) to continue from: last.pt's when resuming, else (0, 0.0)."""
    if not (config.resume and last_path.is_file()):
        return 0, 0.0
    state = read_checkpoint(last_path)
    stored = ModelConfig.from_dict(state["config"])
    if stored != config.model:
        raise EasyOccError(
            f"{last_path} belongs to a different model ({'; '.join(stored.differences(config.model))}); "
            "use another out_dir or resume=false"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    start_step = int(state["step"])
    if master:
        _truncate_log(last_path.parent / "log.csv", start_step)
    return start_step, float(state.get("elapsed_s", 0.0))


def _mixed_precision(amp: bool, device: torch.device):
    """(GradScaler, autocast context): AMP on CUDA only, bf16 where supported (no scaling needed)."""
    use_amp = amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    return scaler, torch.autocast("cuda", dtype=amp_dtype) if use_amp else nullcontext()


def _next_batch(batches, device: torch.device, skipped: set[int], step: int) -> dict:
    """The next batch on `device`; unreadable samples the dataset replaced are reported once each."""
    batch = _to(next(batches), device)
    substituted = batch.pop("substituted_for", None)
    for index in [] if substituted is None else [i for i in substituted.tolist() if i >= 0]:
        if index not in skipped:
            skipped.add(index)
            print(f"step {step}: skipped unreadable training sample {index} (replaced)", flush=True)
    return batch


def _accumulate(model, objective, distiller, micro_batches, scaler, autocast, optim, ddp: bool):
    """Forward and backward over one step's micro-batches; (mean loss, mean loss parts)."""
    parts_sum = dict.fromkeys(objective.names + (distiller.names if distiller else ()), 0.0)
    loss_sum = 0.0
    for micro, batch in enumerate(micro_batches):
        if ddp:
            # All-reduce only on the last micro-step: the others just accumulate locally.
            model.require_backward_grad_sync = micro == optim.grad_accum - 1
        with autocast:
            loss, parts = objective(model, batch)  # training/pretrain/objective.py
            if distiller is not None:
                extra, distilled = distiller.loss(batch)
                loss, parts = loss + extra, {**parts, **distilled}
        scaler.scale(loss / optim.grad_accum).backward()
        loss_sum += float(loss.detach()) / optim.grad_accum
        for key in parts_sum:
            parts_sum[key] += parts[key] / optim.grad_accum
    return loss_sum, parts_sum


def _write_skipped(out_dir: Path, train_set, skipped: set[int]) -> None:
    """out_dir/skipped_samples.json: the unreadable training samples this run replaced, with reasons."""
    dataset = train_set.labelled() if hasattr(train_set, "labelled") else train_set  # the OccDataset
    samples = getattr(dataset, "samples", None)
    reasons = getattr(dataset, "unreadable", {})
    for index in sorted(skipped - set(reasons)):  # met in a loader worker: read again here for the reason
        try:
            dataset.item(index, dataset.draw_augment(index, 0))
        except (AttributeError, EasyOccError):
            pass
    rows = {
        (samples[i].token if samples is not None and i < len(samples) else str(i)): reasons.get(i, "unreadable")
        for i in sorted(skipped)
    }
    write_json_atomic(out_dir / "skipped_samples.json", {"count": len(rows), "samples": rows})
    print(f"{len(rows)} unreadable training sample(s) skipped; see {out_dir / 'skipped_samples.json'}", flush=True)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows after `step`: they belong to steps a killed run did not checkpoint."""
    if path.is_file():
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows and int(rows[-1]["step"]) > step:
            with open(path, "w", newline="") as handle:
                out = csv.DictWriter(handle, fieldnames=list(rows[0]))
                out.writeheader()
                out.writerows(r for r in rows if int(r["step"]) <= step)


def _log_row(path: Path, row: dict, writer) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            out.writeheader()
        out.writerow(row)
    if writer is not None:
        for key, value in row.items():
            if key != "step":
                writer.add_scalar(f"train/{key}", value, row["step"])


def _periodic_eval(config, model, val_scenes, device, step, writer, out_dir, master, ddp) -> dict:
    """Evaluate on the held-out scenes on rank 0 while the other ranks wait."""
    from easyocc.runtime.dataset.scoring import headline
    from easyocc.training.evaluate import evaluate

    results = {}
    if master:
        data = config.data
        dataset = OccDataset(data.root, data.gt or data.root, config.model, val_scenes, max_frames=data.eval_frames)
        results = evaluate(model, dataset, device)
        results.pop("tables")
        results = {**headline(results["camera"], results["rays"]), "units": "percent", **results}
        write_json_atomic(out_dir / f"eval_step{step:06d}.json", {"step": step, **results})
        summary = []
        for mask in ("camera", "full"):
            values = results[mask]
            summary.append(f"{mask} mIoU {values['miou']:.2f} mIoU* {values['miou_star']:.2f}")
            if writer is not None:
                for key in ("miou", "miou_star", "geometry_iou"):
                    writer.add_scalar(f"eval_{mask}/{key}", values[key], step)
        summary.append(f"RayIoU {results['rayiou']:.2f}")
        if writer is not None:
            writer.add_scalar("eval/rayiou", results["rayiou"], step)
        print(f"step {step}: {', '.join(summary)}", flush=True)
    if ddp:
        torch.distributed.barrier()
    return results
