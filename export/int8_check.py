"""Is the Q/DQ model good enough? Class agreement with the float model, and accuracy per precision.

- `heldout_feeds`: real frames of the calibration dataset that calibration did not see (the key
  frames between the calibration ones) plus synthetic frames, as (source, feed) pairs;
- `check_int8`: float ONNX vs Q/DQ ONNX through the runtime's ONNX Runtime runner and the one
  comparator (class agreement, confidence differences);
- `score_runner`: a runner's predictions on a labelled dataset scene written in the Occ3D layout and
  scored by the evaluation's own `score_predictions` (mIoU and RayIoU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import OUTPUT_SEMANTICS, Manifest


def heldout_feeds(manifest: Manifest, data, options, real: int, synthetic: int, rig=None) -> list[tuple]:
    """`real` frames of `data` that calibration (Int8Options `options`) did not see: between the
    calibration key frames at the same stride, or after them at stride 1; then `synthetic` frames
    with the rig's tables (default: nuScenes rig)."""
    from easyocc.export.feeds import dataset_feeds, synthetic_feeds

    pairs = []
    if real > 0:
        if options.stride >= 2:
            start, stride = options.start + options.stride // 2, options.stride
        else:
            start, stride = options.start + options.frames, 1
        pairs += [("dataset", f) for f in dataset_feeds(manifest, data, count=real, stride=stride, start=start)]
    if synthetic > 0:
        from easyocc.calibration import default_rig

        pairs += [("synthetic", f) for f in synthetic_feeds(manifest, rig or default_rig(), synthetic, seed=1000)]
    return pairs


def check_int8(float_path, int8_path, feeds, min_agreement: float = 0.99, threads=None):
    """ParityReport of the Q/DQ model against the float model on (source, feed) pairs."""
    from easyocc.runtime.backends import create_runner
    from easyocc.runtime.backends.compare import compare_runners

    runners = [
        create_runner(path, "onnxruntime", threads=threads, providers=["CPUExecutionProvider"])
        for path in (float_path, int8_path)
    ]
    labels = [f"float ONNX {Path(float_path).name}", f"INT8 Q/DQ {Path(int8_path).name}"]
    (report,) = compare_runners(runners, feeds, min_agreement, labels=labels)
    return report


def score_runner(runner, data, scene: str, out_dir, rays: bool = True) -> dict:
    """Run `runner` on every key frame of `scene` in dataset `data`, save the predictions under
    `out_dir` (Occ3D layout) and score them against the scene's labels (percent: mIoU in the camera
    mask, mIoU*, geometry IoU, and RayIoU unless `rays` is False: it costs seconds per frame)."""
    from types import SimpleNamespace

    from easyocc.export.feeds import dataset_feeds
    from easyocc.runtime.dataset.nuscenes import NuScenesDataset
    from easyocc.runtime.dataset.scoring import score_predictions
    from easyocc.runtime.sinks import Occ3DSink

    dataset = NuScenesDataset(data)
    if scene not in dataset.scene_names:
        raise EasyOccError(f"dataset {data} has no scene '{scene}' (it has {', '.join(dataset.scene_names)})")
    samples = dataset.samples(scene)
    sink = Occ3DSink(out_dir)
    with runner:
        manifest = runner.manifest
        first = [s.token for s in dataset.samples()].index(samples[0].token)
        feeds = dataset_feeds(manifest, data, count=len(samples), start=first)
        for sample, feed in zip(samples, feeds, strict=True):
            semantics = np.asarray(runner.infer(feed)[OUTPUT_SEMANTICS], dtype=np.uint8)
            sink.write(SimpleNamespace(semantics=semantics, meta={"scene": scene, "sample_token": sample.token}))
    return score_predictions(out_dir, data, scenes=[scene], grid=manifest.grid_spec, rays=rays)
