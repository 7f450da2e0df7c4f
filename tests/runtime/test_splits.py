"""Official nuScenes scene splits (package data) and the rules that pick training and held-out scenes."""

import pytest
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.splits import (
    has_official_lists,
    official_split,
    official_splits,
    resolve_split,
    split_scenes,
    splits_of,
)


def test_official_list_sizes_and_names():
    sizes = {name: len(scenes) for name, scenes in official_splits().items()}
    assert sizes == {"train": 700, "val": 150, "test": 150, "mini_train": 8, "mini_val": 2}
    for scenes in official_splits().values():
        assert len(set(scenes)) == len(scenes)
        assert all(s.startswith("scene-") and len(s) == 10 and s[6:].isdigit() for s in scenes)
    # v1.0-trainval holds 850 scenes: train and val together
    assert len(set(official_split("train")) | set(official_split("val"))) == 850


def test_lists_are_disjoint_where_they_must_be():
    train, val, test = (set(official_split(n)) for n in ("train", "val", "test"))
    mini_train, mini_val = set(official_split("mini_train")), set(official_split("mini_val"))
    assert not train & val and not train & test and not val & test
    assert not mini_train & mini_val
    assert not (mini_train | mini_val) & test
    assert mini_val <= val and not mini_val & train
    # mini_train is NOT a subset of train: two of its scenes are official val scenes (devkit lists).
    assert mini_train & val == {"scene-0553", "scene-0796"}
    assert mini_train - val <= train


def test_scene_0916_is_a_validation_scene(nuscenes_dataset):
    assert splits_of("scene-0916") == ["val", "mini_val"]
    assert official_split("mini_val") == ("scene-0103", "scene-0916")
    split = resolve_split(nuscenes_dataset.scene_names)
    assert (split.train_split, split.held_out_split) == ("mini_train", "mini_val")
    assert split.train == [] and split.held_out == ["scene-0916"]
    with pytest.raises(EasyOccError, match=r"^data: split 'mini_train' selects no scene of here to train on$"):
        split.require_train("here")


def test_auto_picks_official_lists_for_nuscenes_scenes():
    mini = ["scene-0061", "scene-0103", "scene-0553", "scene-0916"]
    split = resolve_split(mini)
    assert split.train == ["scene-0061", "scene-0553"] and split.held_out == ["scene-0103", "scene-0916"]
    # a trainval dataset: auto = train / val; scenes outside the chosen lists are simply not used
    trainval = ["scene-0001", "scene-0003", "scene-0916", "scene-0002"]
    split = resolve_split(trainval, val_scenes=3)
    assert (split.train, split.held_out) == (["scene-0001", "scene-0002"], ["scene-0003", "scene-0916"])
    assert resolve_split(trainval, "val", "none").train == ["scene-0003", "scene-0916"]
    assert resolve_split(trainval, "val", "none").held_out == []
    assert has_official_lists(trainval) and not has_official_lists(["synth-0000"]) and not has_official_lists([])


def test_holdout_rule_for_datasets_without_official_lists():
    names = ["synth-0000", "synth-0001", "synth-0002"]
    split = resolve_split(names, val_scenes=1)
    assert (split.train, split.held_out, split.train_split) == (names[:2], names[2:], "holdout")
    assert resolve_split(names, val_scenes=0).train == names and resolve_split(names, val_scenes=0).held_out == []
    assert resolve_split(names, eval_split="none", val_scenes=1).held_out == []
    assert split_scenes(names, 2) == (names[:1], names[1:])
    with pytest.raises(EasyOccError, match=r"^data: split 'holdout' selects no scene of d to train on$"):
        resolve_split(names, val_scenes=3).require_train("d")


@pytest.mark.parametrize(
    ("names", "split", "eval_split", "message"),
    [
        (["synth-0000"], "train", "auto", r"^data.split 'train': the dataset's scenes \(synth-0000\) are not all nuScenes scenes; use split=holdout$"),
        (["synth-0000", "synth-0001"], "holdout", "val", r"^data.eval_split 'val': the dataset's scenes are not all nuScenes scenes$"),
        (["scene-0916"], "trainval", "auto", r"^data.split 'trainval' is unknown \(one of auto, holdout, train, val, test, mini_train, mini_val\)$"),
        (["scene-0916"], "auto", "valid", r"^data.eval_split 'valid' is unknown \(one of auto, holdout, none, train, val, test, mini_train, mini_val\)$"),
        (["scene-0553", "scene-0916"], "mini_train", "val", r"^data: split 'mini_train' and eval_split 'val' share scene\(s\) scene-0553; training would see evaluation scenes$"),
    ],
)  # fmt: skip
def test_refused_splits_name_the_culprit(names, split, eval_split, message):
    with pytest.raises(EasyOccError, match=message):
        resolve_split(names, split, eval_split)


def test_unknown_official_name_and_negative_holdout():
    with pytest.raises(
        EasyOccError, match=r"^unknown nuScenes split 'mini' \(official: train, val, test, mini_train, mini_val\)$"
    ):
        official_split("mini")
    with pytest.raises(EasyOccError, match=r"^data.val_scenes must be >= 0, got -1$"):
        resolve_split(["synth-0000"], val_scenes=-1)


def test_evaluation_defaults_to_the_official_val_split():
    from easyocc.runtime.dataset.splits import scenes_for_eval

    mini = ["scene-0061", "scene-0103", "scene-0553", "scene-0916"]
    assert scenes_for_eval(mini) == ["scene-0103", "scene-0916"]  # a checkpoint without split settings
    assert scenes_for_eval(mini, "train", {"split": "auto", "val_scenes": 2}) == ["scene-0061", "scene-0553"]
    assert scenes_for_eval(mini, "mini_val") == ["scene-0103", "scene-0916"]
    assert scenes_for_eval(mini, "all") == mini
    synth = ["synth-0000", "synth-0001", "synth-0002"]
    assert scenes_for_eval(synth, "val", {"val_scenes": 1}) == ["synth-0002"]
    assert scenes_for_eval(synth, "train", {"val_scenes": 1}) == ["synth-0000", "synth-0001"]
    assert scenes_for_eval(synth, "val", {"val_scenes": 0}) == synth  # nothing held out: score every scene
    assert scenes_for_eval(synth[:1], "val", {"val_scenes": 2}) == synth[:1]  # trained elsewhere on more scenes
    with pytest.raises(EasyOccError, match=r"^split 'mini_val': the dataset's scenes are not all nuScenes scenes$"):
        scenes_for_eval(synth, "mini_val")
    with pytest.raises(
        EasyOccError, match=r"^unknown evaluation split 'dev' \(one of val, train, all, test, mini_train, mini_val\)$"
    ):
        scenes_for_eval(synth, "dev")


def test_scenes_in_split_for_labelling():
    from easyocc.runtime.dataset.splits import scenes_in_split

    mini = ["scene-0916", "scene-0061", "scene-0103"]
    assert scenes_in_split(mini, "mini_val") == ["scene-0916", "scene-0103"]
    assert scenes_in_split(mini, "train") == ["scene-0061"]
    with pytest.raises(EasyOccError, match=r"^unknown nuScenes split 'minival' \(official: "):
        scenes_in_split(mini, "minival")
    with pytest.raises(EasyOccError, match=r"^split 'train': the dataset's scenes are not all nuScenes scenes$"):
        scenes_in_split(["synth-0000"], "train")
