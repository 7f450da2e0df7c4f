"""Per-image cache of provider outputs, so the 3-D stage can be re-run without re-running the models.

Layout: <root>/{semantics,depth}/<provider cache key>/<CHANNEL>/<image stem>.npz, written atomically; a file that
cannot be read (a run killed mid-write on a file system without atomic rename) is recomputed.
"""

from __future__ import annotations

import logging
import time
import zipfile
from pathlib import Path

import numpy as np
from easyocc.runtime.contract.fileio import atomic_path
from easyocc.training.pseudo.providers import (
    DepthEstimator,
    ImageView,
    Segmentation,
    Segmenter,
    check_depth,
    check_segmentation,
)

log = logging.getLogger(__name__)


class ProviderCache:
    """Runs providers through an on-disk cache (`root` None: no cache, always run)."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0
        self.seconds = {"segment": 0.0, "depth": 0.0, "cache_io": 0.0}
        """Seconds spent running each kind of provider on misses (image decode included), and reading
        and writing cache files: the per-stage costs that the merged labelling summary reports."""

    def _path(self, kind: str, provider, view: ImageView) -> Path:
        return self.root / kind / provider.cache_key() / view.channel / (view.path.name.split(".")[0] + ".npz")

    def _load(self, path: Path) -> dict | None:
        if self.root is None or not path.is_file():
            return None
        start = time.perf_counter()
        try:
            with np.load(path) as data:
                return {key: np.asarray(data[key]) for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            log.warning("cache file %s is unreadable; recomputing", path)
            return None
        finally:
            self.seconds["cache_io"] += time.perf_counter() - start

    def _store(self, path: Path, **arrays) -> None:
        if self.root is None:
            return
        start = time.perf_counter()
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)
        self.seconds["cache_io"] += time.perf_counter() - start

    def segment(self, segmenter: Segmenter, image_loader, view: ImageView) -> Segmentation:
        """Cached `segmenter.segment`; `image_loader()` returns the RGB image, only called on a miss."""
        path = self._path("semantics", segmenter, view) if self.root is not None else None
        cached = self._load(path) if path is not None else None
        if cached is not None and cached["classes"].shape == view.shape:
            self.hits += 1
            return Segmentation(cached["classes"], cached["score"].astype(np.float32))
        self.misses += 1
        start = time.perf_counter()
        result = check_segmentation(segmenter.segment(image_loader(), view), view, segmenter.name)
        self.seconds["segment"] += time.perf_counter() - start
        if path is not None:
            self._store(path, classes=result.classes, score=result.score.astype(np.float16))
        return result

    def depth(self, estimator: DepthEstimator, image_loader, view: ImageView) -> np.ndarray:
        """Cached `estimator.estimate` (float32 [H, W] metres, 0 = none); stored as float32."""
        path = self._path("depth", estimator, view) if self.root is not None else None
        cached = self._load(path) if path is not None else None
        if cached is not None and cached["depth_m"].shape == view.shape:
            self.hits += 1
            return cached["depth_m"].astype(np.float32)
        self.misses += 1
        start = time.perf_counter()
        depth_m = check_depth(estimator.estimate(image_loader(), view), view, estimator.name)
        self.seconds["depth"] += time.perf_counter() - start
        if path is not None:
            self._store(path, depth_m=depth_m)
        return depth_m

    def depth_batch(self, estimator: DepthEstimator, image_loaders: list, views: list[ImageView]) -> list[np.ndarray]:
        """`depth` for several images: cache hits read, the misses estimated in one
        `estimator.estimate_batch` call (the models batch their forward passes)."""
        out: list = [None] * len(views)
        paths = [self._path("depth", estimator, v) if self.root is not None else None for v in views]
        for i, (path, view) in enumerate(zip(paths, views)):
            cached = self._load(path) if path is not None else None
            if cached is not None and cached["depth_m"].shape == view.shape:
                self.hits += 1
                out[i] = cached["depth_m"].astype(np.float32)
        todo = [i for i, depth in enumerate(out) if depth is None]
        if todo:
            self.misses += len(todo)
            start = time.perf_counter()
            images = [image_loaders[i]() for i in todo]
            results = estimator.estimate_batch(images, [views[i] for i in todo])
            self.seconds["depth"] += time.perf_counter() - start
            for i, depth_m in zip(todo, results):
                out[i] = check_depth(depth_m, views[i], estimator.name)
                if paths[i] is not None:
                    self._store(paths[i], depth_m=out[i])
        return out
