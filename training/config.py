"""TrainConfig: one frozen, typed config for a training run, from YAML plus dotted overrides.

`load_config("training/configs/demo.yaml", ["optim.lr=1e-3", "model.backbone_width=32"])`: the
project's one loader (easyocc.runtime.contract.config) checks types, ranges (the `setting` bounds
below) and unknown keys; override values are parsed for their field's type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from easyocc.runtime.contract import config as config_system
from easyocc.runtime.contract.config import setting
from easyocc.runtime.dataset.splits import EVAL_SPLITS, TRAIN_SPLITS
from easyocc.training.distill.config import DistillConfig
from easyocc.training.model.config import ModelConfig
from easyocc.training.pretrain.config import InitFrom, PretrainConfig


@dataclass(frozen=True)
class DataConfig:
    root: str = ""
    """nuScenes-layout dataset folder (real or synthetic)."""
    labels: str = ""
    """Folder holding gts/<scene>/<token>/labels.npz to train on (ground truth or pseudo); '' = root."""
    gt: str = ""
    """Ground truth for periodic evaluation; '' = root."""
    split: str = setting("auto", choices=TRAIN_SPLITS)
    """Scenes to train on: an official nuScenes list (train, val, test, mini_train, mini_val), 'holdout'
    (all but the last val_scenes scenes), or 'auto': the official 'train' list ('mini_train' on the mini
    set) when the dataset's scenes are nuScenes scenes, else 'holdout' (the synthetic world)."""
    eval_split: str = setting("auto", choices=EVAL_SPLITS)
    """Held-out scenes for evaluation: 'auto' ('val' after train, 'mini_val' after mini_train, the last
    val_scenes after holdout), an official list, 'holdout' or 'none'."""
    val_scenes: int = setting(1, min=0)
    """With split=holdout: the last N scenes are held out for evaluation and never trained on."""
    mask: str = setting("camera", choices=("camera", "lidar", "none"))
    """Label mask that selects voxels for the loss: camera, lidar or none."""
    augment: bool = True
    """Resize-and-crop images (K updated) and flip the BEV (labels and rig together)."""
    scale_range: tuple[float, float] = setting((1.0, 1.12), above=0.0)
    """Image resize factors before cropping back to the input size."""
    flip: bool = True
    """Random x and y mirror of the ego frame."""
    workers: int = setting(0, min=0)
    """DataLoader worker processes (0 loads in the training process)."""
    eval_frames: int = setting(0, min=0)
    """Frames of the held-out scenes scored at each periodic evaluation (0 = all)."""


@dataclass(frozen=True)
class OptimConfig:
    iters: int = setting(1000, min=1)
    """Optimizer steps in the whole run."""
    batch_size: int = setting(1, min=1)
    """Samples per process and micro-step."""
    grad_accum: int = setting(1, min=1)
    """Micro-steps per optimizer step; global batch = batch_size * processes * grad_accum."""
    lr: float = setting(2e-3, above=0.0)
    """Peak learning rate of AdamW."""
    min_lr_ratio: float = setting(0.05, min=0.0, max=1.0)
    """The cosine decays to lr * min_lr_ratio at the last step."""
    warmup_iters: int = setting(50, min=0)
    """Linear warm-up steps from 0 to lr."""
    weight_decay: float = setting(0.01, min=0.0)
    """AdamW weight decay on weights of convolutions (not on norms and biases)."""
    betas: tuple[float, float] = setting((0.9, 0.999), min=0.0, max=1.0)
    """AdamW betas."""
    grad_clip: float = setting(5.0, min=0.0)
    """Clip the global gradient norm to this (0 disables)."""


@dataclass(frozen=True)
class LossConfig:
    lovasz_weight: float = setting(1.0, min=0.0)
    """Weight of the Lovasz-softmax term beside the class-weighted cross-entropy."""
    lovasz_max_voxels: int = setting(60000, min=0)
    """Lovasz on a random subset of this many labelled voxels per sample (0 = all)."""
    class_weighting: bool = True
    """Weight cross-entropy by 1 / ln(class_weight_c + class frequency) of the training labels (ENet)."""
    class_weight_c: float = setting(1.02, above=1.0)
    """ENet's constant c: 1.02 weighs the rarest classes ~34x the dominant `free`; a larger c damps the
    weights (1.2: ~4x), trading object recall for fewer voxels wrongly marked occupied."""


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    """The network (stored in every checkpoint)."""
    data: DataConfig = field(default_factory=DataConfig)
    """Dataset, labels and augmentation."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and schedule."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Loss terms."""
    out_dir: str = "runs/easyocc"
    """Run folder: checkpoints, CSV and TensorBoard logs, evaluation JSON."""
    seed: int = setting(0, min=0)
    """Seeds weights, data order and augmentation; equal seeds give equal runs on one machine."""
    device: str = setting("auto", choices=("auto", "cpu", "cuda"))
    """'auto' (cuda when available), 'cpu' or 'cuda'."""
    amp: bool = True
    """bfloat16/float16 autocast on CUDA; ignored on the CPU."""
    threads: int = setting(0, min=0)
    """torch CPU threads per process (0 = torch's default)."""
    log_every: int = setting(10, min=1)
    """Steps between CSV/TensorBoard log rows."""
    eval_every: int = setting(0, min=0)
    """Steps between evaluations on the held-out scenes (0 = only at the end)."""
    ckpt_every: int = setting(100, min=1)
    """Steps between checkpoints (last.pt, written atomically; the run resumes from it)."""
    pretrained_backbone: str = ""
    """Optional torchvision ImageNet state dict (.pth) for the backbone (backbone_width 64 only)."""
    resume: bool = True
    """Continue from out_dir/last.pt when it exists and its config matches."""
    tensorboard: bool = True
    """Also write TensorBoard event files."""
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    """OccFeat pretraining (lidar occupancy + feature distillation) and lidar-only data beside the labels."""
    init: InitFrom = field(default_factory=InitFrom)
    """init.from=PATH: start from these weights (a pretraining checkpoint's trunk; mismatches refused)."""
    distill: DistillConfig = field(default_factory=DistillConfig)
    """RadOcc distillation from a frozen teacher checkpoint (rendered depth and semantics, or logit KL)."""

    def to_dict(self) -> dict:
        return config_system.to_dict(self)


def load_config(path=None, overrides=()) -> TrainConfig:
    """TrainConfig from an optional YAML file and 'dotted.key=value' overrides (later ones win)."""
    return config_system.load(TrainConfig, path, overrides)


def config_from_dict(data: dict) -> TrainConfig:
    """Inverse of TrainConfig.to_dict (a checkpoint's stored run config)."""
    return config_system.build(TrainConfig, data)
