"""Scene splits: nuScenes' official lists (carried as package data) and the held-out rule for
datasets without official lists (the synthetic world).

Papers train on the official `train` list (700 scenes) and evaluate on `val` (150); the mini set
has its own lists (`mini_train` 8, `mini_val` 2). Note that `mini_train` is not a subset of `train`:
two of its scenes (scene-0553, scene-0796) are official `val` scenes, so never pair `mini_train`
with `val`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from easyocc.runtime.contract.errors import EasyOccError

OFFICIAL_SPLITS = ("train", "val", "test", "mini_train", "mini_val")
HOLDOUT = "holdout"
"""All but the last `val_scenes` scenes train; the last ones are held out."""
AUTO = "auto"
NONE = "none"
TRAIN_SPLITS = (AUTO, HOLDOUT, *OFFICIAL_SPLITS)
EVAL_SPLITS = (AUTO, HOLDOUT, NONE, *OFFICIAL_SPLITS)
PAIRED = {"train": "val", "mini_train": "mini_val"}
"""The evaluation split that goes with each training split."""


@cache
def official_splits() -> dict[str, tuple[str, ...]]:
    """{split name: scene names} of nuScenes v1.0 (trainval, test, mini), from the package data."""
    text = resources.files("easyocc.runtime.dataset").joinpath("data/nuscenes_splits.json").read_text()
    return {name: tuple(scenes) for name, scenes in json.loads(text)["splits"].items()}


def official_split(name: str) -> tuple[str, ...]:
    """Scene names of one official split (train, val, test, mini_train, mini_val)."""
    splits = official_splits()
    if name not in splits:
        raise EasyOccError(f"unknown nuScenes split '{name}' (official: {', '.join(OFFICIAL_SPLITS)})")
    return splits[name]


def splits_of(scene_name: str) -> list[str]:
    """Official splits that list `scene_name` (empty for a scene that is not a nuScenes scene)."""
    return [name for name, scenes in official_splits().items() if scene_name in scenes]


def has_official_lists(scene_names) -> bool:
    """True when every scene is a nuScenes v1.0 scene (in train, val or test)."""
    names = list(scene_names)
    known = {s for split in ("train", "val", "test") for s in official_split(split)}
    return bool(names) and all(name in known for name in names)


def split_scenes(scene_names, val_scenes: int) -> tuple[list[str], list[str]]:
    """(train, held-out): the last `val_scenes` scenes are held out, never seen in training."""
    names = list(scene_names)
    if val_scenes < 0 or (val_scenes > 0 and val_scenes >= len(names)):
        raise EasyOccError(f"data: cannot hold out {val_scenes} of {len(names)} scene(s) and still train")
    if val_scenes == 0:
        return names, []
    return names[:-val_scenes], names[-val_scenes:]


@dataclass(frozen=True)
class SceneSplit:
    """Training and held-out scenes of a dataset, in the dataset's order, with the rules that chose them."""

    train: list[str]
    held_out: list[str]
    train_split: str
    held_out_split: str

    def require_train(self, where) -> list[str]:
        """The training scenes; raises naming the dataset when the split selects none."""
        if not self.train:
            raise EasyOccError(f"data: split '{self.train_split}' selects no scene of {where} to train on")
        return self.train


def resolve_split(scene_names, split: str = AUTO, eval_split: str = AUTO, val_scenes: int = 1) -> SceneSplit:
    """Training and held-out scenes among `scene_names` (a dataset's scenes, in order).

    split: 'auto' = the official 'train' list ('mini_train' when every scene is a mini scene) where
    the dataset's scenes are nuScenes scenes, else 'holdout'; an official name; or 'holdout' (all but
    the last `val_scenes`). eval_split: 'auto' = the split paired with the training split ('val',
    'mini_val', or the last `val_scenes` after 'holdout'); an official name; 'holdout'; or 'none'.
    Either list may be empty (`SceneSplit.require_train` refuses an empty training list).
    """
    names = list(scene_names)
    if split not in TRAIN_SPLITS:
        raise EasyOccError(f"data.split '{split}' is unknown (one of {', '.join(TRAIN_SPLITS)})")
    if eval_split not in EVAL_SPLITS:
        raise EasyOccError(f"data.eval_split '{eval_split}' is unknown (one of {', '.join(EVAL_SPLITS)})")
    if val_scenes < 0:
        raise EasyOccError(f"data.val_scenes must be >= 0, got {val_scenes}")
    official = has_official_lists(names)
    if split == AUTO:
        mini = set(official_split("mini_train")) | set(official_split("mini_val"))
        split = ("mini_train" if set(names) <= mini else "train") if official else HOLDOUT
    if split in OFFICIAL_SPLITS and not official:
        raise EasyOccError(
            f"data.split '{split}': the dataset's scenes ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}) "
            "are not all nuScenes scenes; use split=holdout"
        )
    if eval_split == AUTO:
        eval_split = PAIRED.get(split, HOLDOUT if split == HOLDOUT else NONE)
    if eval_split in OFFICIAL_SPLITS and not official:
        raise EasyOccError(f"data.eval_split '{eval_split}': the dataset's scenes are not all nuScenes scenes")
    held = max(len(names) - val_scenes, 0) if val_scenes else len(names)
    train = names[:held] if split == HOLDOUT else _members(names, split)
    if eval_split == HOLDOUT:
        held_out = names[held:]
    else:
        held_out = [] if eval_split == NONE else _members(names, eval_split)
    shared = sorted(set(train) & set(held_out))
    if shared:
        raise EasyOccError(
            f"data: split '{split}' and eval_split '{eval_split}' share scene(s) {', '.join(shared[:3])}; "
            "training would see evaluation scenes"
        )
    return SceneSplit(train, held_out, split, eval_split)


def scenes_in_split(scene_names, split: str) -> list[str]:
    """The scenes of an official split among `scene_names` (a nuScenes dataset's scenes), in their order;
    what `easyocc labels split=train` labels."""
    names = list(scene_names)
    official_split(split)  # names an unknown split
    if not has_official_lists(names):
        raise EasyOccError(f"split '{split}': the dataset's scenes are not all nuScenes scenes")
    return _members(names, split)


def _members(names: list[str], split: str) -> list[str]:
    listed = set(official_split(split))
    return [name for name in names if name in listed]


EVAL_CHOICES = ("val", "train", "all", "test", "mini_train", "mini_val")


def scenes_for_eval(scene_names, choice: str = "val", data_config: dict | None = None) -> list[str]:
    """Scenes an evaluation scores, among `scene_names` (the evaluated dataset's scenes).

    choice: 'val' = the held-out scenes of the run described by `data_config` (the checkpoint's
    train_config["data"]: split, eval_split, val_scenes; official 'val' or 'mini_val' on nuScenes
    scenes, the last val_scenes otherwise, every scene when that run held none out); 'train' = that
    run's training scenes; 'all'; or an official split name (test, mini_train, mini_val).
    """
    names = list(scene_names)
    if choice == "all":
        return names
    if choice in EVAL_CHOICES[3:]:
        return scenes_in_split(names, choice)
    if choice not in ("val", "train"):
        raise EasyOccError(f"unknown evaluation split '{choice}' (one of {', '.join(EVAL_CHOICES)})")
    data = data_config or {}
    split, eval_split = data.get("split", AUTO), data.get("eval_split", AUTO)
    val_scenes = int(data.get("val_scenes", 0))
    resolved = resolve_split(names, split, eval_split, val_scenes)
    if choice == "train":
        return resolved.train
    if not resolved.held_out and resolved.held_out_split in (HOLDOUT, NONE):
        return names
    return resolved.held_out
