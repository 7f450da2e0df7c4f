"""TrainConfig: one frozen, typed config for a training run, from YAML plus dotted overrides.

`load_config("training/configs/demo.yaml", ["optim.lr=1e-3", "model.backbone_width=32"])`; values of
overrides are parsed with yaml.safe_load, so numbers, booleans and [lists] keep their types.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.model.config import ModelConfig


@dataclass(frozen=True)
class DataConfig:
    root: str = ""
    """nuScenes-layout dataset folder (real or synthetic)."""
    labels: str = ""
    """Folder holding gts/<scene>/<token>/labels.npz to train on (ground truth or pseudo); '' = root."""
    gt: str = ""
    """Ground truth for periodic evaluation; '' = root."""
    split: str = "auto"
    """Scenes to train on: an official nuScenes list (train, val, test, mini_train, mini_val), 'holdout'
    (all but the last val_scenes scenes), or 'auto': the official 'train' list ('mini_train' on the mini
    set) when the dataset's scenes are nuScenes scenes, else 'holdout' (the synthetic world)."""
    eval_split: str = "auto"
    """Held-out scenes for evaluation: 'auto' ('val' after train, 'mini_val' after mini_train, the last
    val_scenes after holdout), an official list, 'holdout' or 'none'."""
    val_scenes: int = 1
    """With split=holdout: the last N scenes are held out for evaluation and never trained on."""
    mask: str = "camera"
    """Label mask that selects voxels for the loss: camera, lidar or none."""
    augment: bool = True
    """Resize-and-crop images (K updated) and flip the BEV (labels and rig together)."""
    scale_range: tuple[float, float] = (1.0, 1.12)
    """Image resize factors before cropping back to the input size."""
    flip: bool = True
    """Random x and y mirror of the ego frame."""
    workers: int = 0
    """DataLoader worker processes (0 loads in the training process)."""
    eval_frames: int = 0
    """Frames of the held-out scenes scored at each periodic evaluation (0 = all)."""


@dataclass(frozen=True)
class OptimConfig:
    iters: int = 1000
    """Optimizer steps in the whole run."""
    batch_size: int = 1
    """Samples per process and micro-step."""
    grad_accum: int = 1
    """Micro-steps per optimizer step; global batch = batch_size * processes * grad_accum."""
    lr: float = 2e-3
    """Peak learning rate of AdamW."""
    min_lr_ratio: float = 0.05
    """The cosine decays to lr * min_lr_ratio at the last step."""
    warmup_iters: int = 50
    """Linear warm-up steps from 0 to lr."""
    weight_decay: float = 0.01
    """AdamW weight decay on weights of convolutions (not on norms and biases)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    grad_clip: float = 5.0
    """Clip the global gradient norm to this (0 disables)."""


@dataclass(frozen=True)
class LossConfig:
    lovasz_weight: float = 1.0
    """Weight of the Lovasz-softmax term beside the class-weighted cross-entropy."""
    lovasz_max_voxels: int = 60000
    """Lovasz on a random subset of this many labelled voxels per sample (0 = all)."""
    class_weighting: bool = True
    """Weight cross-entropy by 1 / ln(class_weight_c + class frequency) of the training labels (ENet)."""
    class_weight_c: float = 1.02
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
    seed: int = 0
    """Seeds weights, data order and augmentation; equal seeds give equal runs on one machine."""
    device: str = "auto"
    """'auto' (cuda when available), 'cpu' or 'cuda'."""
    amp: bool = True
    """bfloat16/float16 autocast on CUDA; ignored on the CPU."""
    threads: int = 0
    """torch CPU threads per process (0 = torch's default)."""
    log_every: int = 10
    """Steps between CSV/TensorBoard log rows."""
    eval_every: int = 0
    """Steps between evaluations on the held-out scenes (0 = only at the end)."""
    ckpt_every: int = 100
    """Steps between checkpoints (last.pt, written atomically; the run resumes from it)."""
    pretrained_backbone: str = ""
    """Optional torchvision ImageNet state dict (.pth) for the backbone (backbone_width 64 only)."""
    resume: bool = True
    """Continue from out_dir/last.pt when it exists and its config matches."""
    tensorboard: bool = True
    """Also write TensorBoard event files."""

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["model"] = self.model.to_dict()
        return _lists(data)


def _lists(value):
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise EasyOccError(f"config {where}: expected a mapping, got {type(data).__name__}")
    if cls is ModelConfig:
        try:
            return ModelConfig.from_dict(data)
        except TypeError as exc:
            raise EasyOccError(f"config {where}: {exc}") from None
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        section = where.rstrip(".") or "top level"
        raise EasyOccError(f"config {section}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    defaults = cls()
    values = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        if name in _SECTIONS and cls is TrainConfig:
            value = _build(_SECTIONS[name], value or {}, f"{where}{name}.")
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != len(default):
                raise EasyOccError(f"config {where}{name}: expected a list of {len(default)}, got {value!r}")
            value = tuple(_scalar(v, d, f"{where}{name}") for v, d in zip(value, default))
        else:
            value = _scalar(value, default, f"{where}{name}")
        values[name] = value
    return cls(**values)


def _scalar(value, default, where: str):
    """`value` converted to the type of `default` (YAML reads 1e-3 as a string: accept it)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise EasyOccError(f"config {where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(value, bool):
        try:
            converted = type(default)(value)
        except (TypeError, ValueError):
            converted = None
        if converted is not None and (isinstance(default, float) or float(value) == converted):
            return converted
    if isinstance(value, type(default)):
        return value
    raise EasyOccError(f"config {where}: expected {type(default).__name__}, got {value!r}")


_SECTIONS = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig, "loss": LossConfig}


def set_dotted(data: dict, key: str, value) -> None:
    """data['a']['b'] = value for key 'a.b' (creating levels as needed)."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise EasyOccError(f"config override {key}: '{part}' is not a section")
    node[parts[-1]] = value


def load_config(path=None, overrides=()) -> TrainConfig:
    """TrainConfig from an optional YAML file and 'dotted.key=value' overrides (later ones win)."""
    data: dict = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise EasyOccError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise EasyOccError(f"config file {path}: invalid YAML ({exc})") from None
    for override in overrides:
        if "=" not in override:
            raise EasyOccError(f"config override '{override}' must look like section.key=value")
        key, text = override.split("=", 1)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        set_dotted(data, key.strip(), value)
    return _build(TrainConfig, data, "")


def config_from_dict(data: dict) -> TrainConfig:
    """Inverse of TrainConfig.to_dict (a checkpoint's stored run config)."""
    return _build(TrainConfig, data, "")
