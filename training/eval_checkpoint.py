"""Score a checkpoint on a dataset: `evaluate_checkpoint(...)`, what `easyocc eval --model M.pt` calls."""

from __future__ import annotations

from pathlib import Path

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.runtime.dataset.nuscenes import NuScenesDataset
from easyocc.runtime.dataset.splits import scenes_for_eval


def evaluate_checkpoint(
    checkpoint,
    data,
    labels: str = "",
    gt: str = "",
    scenes: list[str] | None = None,
    split: str = "val",
    frames: int = 0,
    vis: str = "",
    device: str = "cpu",
    threads: int = 0,
    json_path=None,
    progress: bool = True,
) -> tuple[dict, list[str]]:
    """(results, printable tables): the Occ3D metric (camera mask and full scene) and RayIoU, in percent,
    of `checkpoint` on `scenes` of `data` (default: the checkpoint's held-out scenes of `split`) against
    `labels` ('' = the dataset's gts), and against `gt` too when it differs. Writes the results to
    `json_path` ('' = beside the checkpoint) and top-down images to `vis`."""
    import torch
    from easyocc.runtime.dataset.scoring import headline
    from easyocc.training.data import OccDataset
    from easyocc.training.evaluate import evaluate
    from easyocc.training.model import load_checkpoint, read_checkpoint

    if frames < 0:
        raise EasyOccError(f"eval: frames must be 0 (all) or more, got {frames}")
    if threads:
        torch.set_num_threads(threads)
    from easyocc.runtime.dataset.labels import check_labels_grid

    def same_grid(config):  # labels of the same shape on another grid: refused before the weights load
        check_labels_grid(config.grid_spec, labels or data, f"checkpoint {checkpoint}: the model", same_shape_only=True)

    model, config = load_checkpoint(checkpoint, check=same_grid)
    torch_device = torch.device(device)
    model.to(torch_device)
    if not scenes:
        data_config = read_checkpoint(checkpoint).get("train_config", {}).get("data", {})
        scenes = scenes_for_eval(NuScenesDataset(data).scene_names, split, data_config)
    labels = labels or str(data)
    dataset = OccDataset(data, labels, config, scenes, max_frames=frames)
    extra = {"gt": gt} if gt and Path(gt).resolve() != Path(labels).resolve() else None
    results = evaluate(model, dataset, torch_device, extra, vis or None, progress=progress)
    tables = list(results.pop("tables").values())
    results = {**headline(results["camera"], results["rays"]), "units": "percent", **results}
    results.update(checkpoint=str(checkpoint), data=str(data), labels=str(labels), scenes=list(scenes))
    out = Path(json_path) if json_path else Path(checkpoint).with_suffix(".eval.json")
    write_json_atomic(out, results)
    results["json"] = str(out)
    return results, tables
