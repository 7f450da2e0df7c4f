"""Monocular depth -> metric depth in the model's own output space, without lidar.

A relative model outputs affine-invariant disparity x; metric depth is 1 / q with inverse depth
q = s * x + t (a scale and a shift per image). A metric model's depth is only rescaled: x = 1 / depth,
q = s * x. The fit uses cues that need no 3-D labels, in this order:

1. The ground (`fit_ground`). Every pixel's viewing ray meets the ego frame's ground plane z = 0
   (the calibration gives each camera's height above it) at a known inverse depth g. Ground pixels
   satisfy s * x + t = g exactly, and nothing is visible *below* the ground, so the fit is a RANSAC
   line through (x, g) that scores inliers and penalises pixels it would put underground. That
   penalty is what stops the far solution: a scale that pushes the scene away puts the ground under
   the ground. Candidates are the segmenter's ground classes (road, sidewalk, other flat, terrain);
   where the segmenter has none (`boxes` on nuScenes), every non-object pixel below the horizon, and
   the RANSAC finds the ground among them (cue `ground-segmenter` or `ground-geometric`).
2. Photometric consistency (`consistency.py`), monodepth2 style: each pixel reprojected into the
   same camera's adjacent key frames (known ego motion) and into the neighbouring cameras at the same
   instant, per-pixel minimum over sources, auto-masked by the un-warped temporal error. It refines
   the overall scale within a bounded factor (`AlignConfig.search`) around the ground fit, and only
   where it lowers the loss by a clear margin; a search bounded this way cannot run to the far
   solution. Without a ground fit it searches a wider, still bounded, range (`photometric-wide`).

`anchor="lidar"` replaces both by a robust fit to the key frame's projected lidar (cue `lidar`);
`anchor="none"` (the default) reads no lidar at all.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from easyocc.calibration import Camera
from easyocc.runtime.contract.classes import CLASS_ID, DYNAMIC_CLASSES, FREE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.preprocess import read_image
from easyocc.training.pseudo.providers import DepthEstimator, ImageView

GROUND_CLASSES = tuple(CLASS_ID[n] for n in ("driveable_surface", "other_flat", "sidewalk", "terrain"))
ANCHORS = ("none", "lidar")


@dataclass(frozen=True)
class AlignConfig:
    """Settings of the alignment."""

    width: int = 192
    """Working width of the photometric cue, pixels (the image is resized, aspect kept)."""
    ground_range_m: tuple[float, float] = (2.0, 40.0)
    """Ground candidates: pixels whose ray meets the ground plane within this range."""
    ground_tolerance: float = 0.05
    """Relative inverse-depth residual within which a pixel is a ground inlier."""
    min_ground_pixels: int = 200
    """Fewer segmenter ground pixels than this: fall back to the geometric ground."""
    min_ground_inliers: int = 100
    """Fewer RANSAC inliers than this: no ground fit (photometric-wide instead)."""
    ransac_iterations: int = 256
    """RANSAC hypotheses of the ground line."""
    max_samples: int = 6000
    """Pixels sampled for the ground fit."""
    weak_ground: float = 0.3
    """A best ground line holding fewer than this fraction of the candidates is weak: wide photometric
    candidates join the search."""
    hypotheses: int = 3
    """Distinct ground lines (best RANSAC scores) the photometric refinement chooses among."""
    shift_search: float = 0.02
    """Photometric refinement: inverse-depth shifts in [-this, this] 1/m around each ground line (a
    camera pitch error of 1 degree at 1.5 m height shifts the ground's inverse depth by 0.012 1/m)."""
    search: float = 1.15
    """Photometric refinement: scale factors in [1 / search, search] (scale-only fits: stage 1)."""
    search_steps: int = 9
    """Steps of each search axis."""
    min_gain: float = 0.01
    """The refinement moves off the best ground line only if it lowers the loss by this fraction."""
    max_depth_m: float = 250.0
    """Aligned depth beyond this (inverse depth near or below 0: sky) becomes 0, no estimate."""


def ground_inverse_depth(camera: Camera, uv: np.ndarray) -> np.ndarray:
    """[N] inverse z-depth (1/m) at which each pixel's ray [N, 2] meets the ego ground plane z = 0;
    <= 0 for rays at or above the horizon."""
    centre = camera.centre_ego
    dz = camera.unproject(uv, np.ones(len(uv)))[:, 2] - centre[2]  # height change per metre of z-depth
    return -dz / max(float(centre[2]), 1e-3)


def robust_line(
    x: np.ndarray,
    target: np.ndarray,
    scale_only: bool,
    tolerance: float,
    iterations: int,
    below_penalty: float = 2.0,
    keep: int = 1,
    seed: int = 0,
) -> list[tuple[float, float, int]]:
    """RANSAC fit of target ~ s * x + t (t = 0 if scale_only) in relative residual (s*x+t)/target - 1,
    then least squares on the inliers. Hypotheses score inliers minus `below_penalty` times the pixels
    they put beyond their target (residual < -3 tolerance). Returns up to `keep` distinct fits
    [(s, t, inliers)], best first (empty if none has s > 0)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    first = rng.integers(0, n, iterations)
    if scale_only:
        scales, shifts = target[first] / np.where(x[first] != 0, x[first], np.nan), np.zeros(iterations)
    else:
        second = rng.integers(0, n, iterations)
        dx = x[first] - x[second]
        scales = (target[first] - target[second]) / np.where(np.abs(dx) > 1e-12, dx, np.nan)
        shifts = target[first] - scales * x[first]
    ok = np.isfinite(scales) & (scales > 0)
    scales, shifts = scales[ok], shifts[ok]
    residual = (scales[:, None] * x[None] + shifts[:, None]) / target[None] - 1
    score = (np.abs(residual) < tolerance).sum(1) - below_penalty * (residual < -3 * tolerance).sum(1)
    fits: list[tuple[float, float, int]] = []
    for best in np.argsort(-score):
        s, t = _refine_line(x, target, float(scales[best]), float(shifts[best]), scale_only, tolerance)
        if any(abs(np.log(s / other[0])) < 0.1 for other in fits):
            continue
        fits.append((s, t, int((np.abs((s * x + t) / target - 1) < tolerance).sum())))
        if len(fits) >= keep:
            break
    return fits


def _refine_line(x, target, s, t, scale_only, tolerance) -> tuple[float, float]:
    for _ in range(3):  # least squares on the inliers, relative residual: rows [x/g, 1/g] . (s, t) = 1
        inliers = np.abs((s * x + t) / target - 1) < tolerance
        if inliers.sum() < 3:
            break
        columns = [x[inliers] / target[inliers]] + ([] if scale_only else [1 / target[inliers]])
        solution = np.linalg.lstsq(np.stack(columns, 1), np.ones(int(inliers.sum())), rcond=None)[0]
        if solution[0] <= 0:
            break
        s, t = float(solution[0]), 0.0 if scale_only else float(solution[1])
    return s, t


def _wide_candidates(x: np.ndarray, scale_only: bool) -> list[tuple[float, float]]:
    """(s, t) putting the median pixel at 2..60 m and (relative models) the 2nd-percentile one (the
    farthest) 1.5x, 3x, 10x farther or at infinity: the bounded search space without a ground."""
    if not x.size:
        return [(1.0, 0.0)]
    median, far = float(np.median(x)), float(np.percentile(x, 2))
    candidates = []
    for depth in np.geomspace(2.0, 60.0, 13):
        if scale_only:
            candidates.append((1.0 / depth / max(median, 1e-12), 0.0))
            continue
        for ratio in (1.5, 3.0, 10.0, np.inf):
            spread = max(median - far, 1e-6 * max(abs(median), 1e-12))
            s = (1.0 / depth - 1.0 / (ratio * depth)) / spread
            candidates.append((s, 1.0 / depth - s * median))
    return candidates


@dataclass(frozen=True)
class Fit:
    """Inverse depth q = scale * x + shift; cue names what decided it; ground_inliers of the RANSAC;
    photometric_gain the relative drop of the photometric loss the refinement bought."""

    scale: float
    shift: float
    cue: str
    ground_inliers: int = 0
    photometric_gain: float = 0.0


class AlignedDepth(DepthEstimator):
    """Wraps a depth estimator: `base.relative` True -> its output is disparity (scale and shift);
    else metric depth (scale only). `anchor`: 'none' (no lidar read) or 'lidar'."""

    def __init__(self, base: DepthEstimator, anchor: str = "none", config: AlignConfig = AlignConfig()):
        if anchor not in ANCHORS:
            raise EasyOccError(f"unknown anchor '{anchor}'; known: {', '.join(ANCHORS)}")
        self.base, self.anchor, self.config = base, anchor, config
        self.name = f"aligned-{base.name}"
        self.relative = False  # the output is metric
        self._scenes: dict = {}
        self._small: OrderedDict = OrderedDict()
        self.last_fit: Fit | None = None
        self.cues: Counter = Counter()
        """(channel, cue) -> images: which cue decided each camera's fit."""
        self.seconds = 0.0
        """Wall time spent aligning (the base model's own time excluded)."""
        self.cpu_seconds = 0.0
        """CPU time of this process spent aligning (honest on a shared machine)."""
        self.images = 0
        self._aligned: dict = {}
        self.segmenter_key = None
        """Cache key of the segmenter whose ground classes the fit reads (set by PseudoLabeler)."""

    def options(self) -> dict:
        return {
            "base": self.base.cache_key(),
            "anchor": self.anchor,
            "segmenter": self.segmenter_key,
            **asdict(self.config),
        }

    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        return self._align(self.base.estimate(image_rgb, view), image_rgb, view)

    def estimate_batch(self, images_rgb: list[np.ndarray], views: list[ImageView]) -> list[np.ndarray]:
        """The base model on all images at once (batched), then each aligned in camera order."""
        raws = self.base.estimate_batch(images_rgb, views)
        return [self._align(raw, image, view) for raw, image, view in zip(raws, images_rgb, views)]

    def _align(self, raw, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float32)
        start, cpu = time.perf_counter(), time.process_time()
        relative = bool(getattr(self.base, "relative", False))
        if relative:
            x, valid = raw, np.isfinite(raw)
        else:
            valid = np.isfinite(raw) & (raw > 0)
            x = np.where(valid, 1.0 / np.where(valid, raw, 1.0), 0.0).astype(np.float32)
        fit = self._fit(x, valid, not relative, image_rgb, view)
        if "photometric-wide" in fit.cue:  # no ground: the cameras aligned before it, where they overlap
            fit = self._neighbour_fit(x, valid, not relative, view) or fit
        self.last_fit = fit
        self.cues[(view.channel, fit.cue)] += 1
        q = fit.scale * x + fit.shift
        ok = valid & (q > 1.0 / self.config.max_depth_m)
        depth = np.where(ok, 1.0 / np.where(ok, q, 1.0), 0.0).astype(np.float32)
        self._remember(depth, view, "photometric-wide" not in fit.cue)
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.process_time() - cpu
        self.images += 1
        return depth

    # ----- cues
    def _fit(self, x, valid, scale_only, image_rgb, view) -> Fit:
        config = self.config
        if self.anchor == "lidar":
            return self._lidar_fit(x, valid, scale_only, image_rgb, view)
        height, width = x.shape
        stride = max(1, int(np.sqrt(height * width / (4 * config.max_samples))))
        v, u = np.mgrid[stride // 2 : height : stride, stride // 2 : width : stride]
        u, v = u.ravel(), v.ravel()
        g = ground_inverse_depth(view.camera, np.stack([u, v], 1).astype(np.float64))
        near, far = config.ground_range_m
        candidate = valid[v, u] & (g >= 1 / far) & (g <= 1 / near)
        classes = view.segmentation.classes[v, u] if view.segmentation is not None else None
        cue = "ground-geometric"
        if classes is not None:
            ground = candidate & np.isin(classes, GROUND_CLASSES)
            if ground.sum() >= config.min_ground_pixels:
                candidate, cue = ground, "ground-segmenter"
            else:
                candidate &= ~np.isin(classes, list(DYNAMIC_CLASSES) + [FREE])
        index = np.flatnonzero(candidate)
        if len(index) > config.max_samples:
            index = np.random.default_rng(0).choice(index, config.max_samples, replace=False)
        fits = []
        if len(index) >= config.min_ground_inliers:
            fits = robust_line(
                x[v[index], u[index]].astype(np.float64),
                g[index],
                scale_only,
                config.ground_tolerance,
                config.ransac_iterations,
                keep=config.hypotheses,
            )
        fits = [Fit(s, t, cue, n) for s, t, n in fits if n >= max(config.min_ground_inliers, 0.6 * fits[0][2])]
        if not fits or fits[0].ground_inliers < config.weak_ground * len(index):
            # no (clear) ground: median below-horizon depth anywhere in 3..60 m, decided by photometry
            wide = "photometric-wide" if not fits else f"{cue}|photometric-wide"
            fits += [Fit(s, t, wide) for s, t in _wide_candidates(x[valid], scale_only)]
        return self._refine(fits, x, valid, scale_only, image_rgb, view)

    def _refine(self, fits: list[Fit], x, valid, scale_only, image_rgb, view) -> Fit:
        """Bounded photometric search: stage 1 over the hypotheses and a shift (or, scale-only, a
        scale) offset; stage 2 over scale x shift around the best. Keeps fits[0] unless a candidate
        lowers the loss by `min_gain`."""
        from easyocc.training.pseudo.consistency import photometric_losses

        sources = self._sources(view)
        if not sources:
            return fits[0]
        config = self.config
        small = self._resize(image_rgb)
        size = (small.shape[1], small.shape[0])
        x_small = cv2.resize(np.where(valid, x, np.nan).astype(np.float32), size, interpolation=cv2.INTER_NEAREST)
        camera = view.camera.resized(size[0] / view.camera.width, size[1] / view.camera.height)

        def losses(candidates):
            maps = [np.nan_to_num(s * x_small + t, nan=0.0) for s, t in candidates]
            return photometric_losses(maps, small, camera, sources)

        steps = np.linspace(-1, 1, config.search_steps)
        if scale_only:
            stage1 = [(f.scale * config.search**k, 0.0) for f in fits for k in steps]
        else:
            stage1 = [(f.scale, f.shift + config.shift_search * k) for f in fits for k in steps]
        # a line the ground supports less pays for it: loss * (1 + 0.5 * (1 - inliers / best inliers))
        support = np.repeat([f.ground_inliers / max(fits[0].ground_inliers, 1) for f in fits], len(steps))
        wide = np.repeat(["photometric-wide" in f.cue for f in fits], len(steps))
        curve = losses(stage1) * np.where(wide, 1.0, 1 + 0.5 * (1 - np.minimum(support, 1)))
        if not np.isfinite(curve).any():
            return fits[0]
        s, t = stage1[int(np.nanargmin(curve))]
        fine = np.linspace(-1, 1, 3) * config.shift_search / (config.search_steps - 1)
        stage2 = [(s, t)] + [(s * config.search ** (k / 2), t + (0 if scale_only else d)) for k in steps for d in fine]
        stage2.append((fits[0].scale, fits[0].shift))
        curve2 = losses(stage2)
        if not np.isfinite(curve2).any():
            return fits[0]
        best = int(np.nanargmin(curve2))
        gain = float(1 - curve2[best] / curve2[-1]) if curve2[-1] > 0 else 0.0
        if gain < config.min_gain and "photometric-wide" not in fits[0].cue:
            return fits[0]
        s, t = stage2[best]
        chosen = next((f for f in fits if abs(np.log(s / f.scale)) < np.log(config.search) * 1.01), fits[0])
        cue = chosen.cue if "photometric-wide" in chosen.cue else f"{chosen.cue}+photometric"
        return Fit(float(s), float(t), cue, chosen.ground_inliers, gain)

    def _lidar_fit(self, x, valid, scale_only, image_rgb, view) -> Fit:
        from easyocc.training.pseudo.lidar_boxes import LidarDepth

        if view.sample.lidar is None:
            raise EasyOccError(f"--anchor lidar: sample {view.sample.token} has no lidar")
        lidar = LidarDepth().estimate(image_rgb, view)
        ys, xs = np.nonzero((lidar > 0) & valid)
        if len(ys) < 10:
            raise EasyOccError(f"--anchor lidar: {len(ys)} lidar returns in {view.path.name}, need 10")
        fits = robust_line(x[ys, xs].astype(np.float64), 1.0 / lidar[ys, xs], scale_only, 0.05, 256, 0.0)
        if not fits:
            raise EasyOccError(f"--anchor lidar: no positive-scale fit to the lidar in {view.path.name}")
        return Fit(fits[0][0], fits[0][1], "lidar", fits[0][2])

    def _remember(self, depth: np.ndarray, view: ImageView, trusted: bool) -> None:
        """Keep a sample of this image's aligned points (global frame) for its neighbours' fallback."""
        if view.sample.token not in self._aligned:
            self._aligned = {view.sample.token: []}
        if not trusted:
            return
        v, u = np.nonzero(depth[::8, ::8] > 0)
        v, u = v * 8, u * 8
        points = view.camera.unproject(np.stack([u, v], 1), depth[v, u])
        global_points = points @ view.frame.global_T_ego[:3, :3].T + view.frame.global_T_ego[:3, 3]
        self._aligned[view.sample.token].append(global_points)

    def _neighbour_fit(self, x, valid, scale_only, view) -> Fit | None:
        """A robust fit to the other cameras' aligned points that land in this image (same instant)."""
        from easyocc.calibration import invert_transform, transform_points
        from easyocc.training.pseudo.lidar_boxes import project_to_depth_map

        clouds = self._aligned.get(view.sample.token)
        if not clouds:
            return None
        points_ego = transform_points(invert_transform(view.frame.global_T_ego), np.concatenate(clouds))
        sparse = project_to_depth_map(points_ego, view)
        ys, xs = np.nonzero((sparse > 0) & valid)
        if len(ys) < self.config.min_ground_inliers // 2:
            return None
        fits = robust_line(x[ys, xs].astype(np.float64), 1.0 / sparse[ys, xs], scale_only, 0.1, 256, 0.0)
        return Fit(fits[0][0], fits[0][1], "neighbour-cameras", 0) if fits else None

    # ----- source views: adjacent key frames of this camera, neighbouring cameras now
    def _resize(self, image_rgb: np.ndarray) -> np.ndarray:
        height, width = image_rgb.shape[:2]
        size = (self.config.width, max(8, int(round(height * self.config.width / width))))
        return cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)

    def _small_image(self, path) -> np.ndarray:
        if path not in self._small:
            self._small[path] = self._resize(read_image(path))
            while len(self._small) > 48:
                self._small.popitem(last=False)
        return self._small[path]

    def _sources(self, view: ImageView) -> list:
        from easyocc.calibration import invert_transform
        from easyocc.training.pseudo.consistency import SourceView

        scene = view.sample.scene_name
        if scene not in self._scenes:
            self._scenes = {scene: view.dataset.samples(scene)}
        samples = self._scenes[scene]
        tgt_global_T_cam = view.frame.global_T_ego @ view.camera.ego_T_cam
        sources = []
        for index in (view.sample.index - 1, view.sample.index + 1):
            if 0 <= index < len(samples) and view.channel in samples[index].cameras:
                frame = samples[index].cameras[view.channel]
                camera = view.dataset.rig(samples[index])[view.channel]
                src_T_tgt = invert_transform(frame.global_T_ego @ camera.ego_T_cam) @ tgt_global_T_cam
                sources.append(SourceView(self._small_image(frame.path), camera, src_T_tgt, temporal=True))
        axis = view.camera.ego_T_cam[:3, 2]
        for camera in view.dataset.rig(view.sample):
            if camera.name == view.channel or float(axis @ camera.ego_T_cam[:3, 2]) < np.cos(np.radians(80)):
                continue
            frame = view.sample.cameras[camera.name]
            src_T_tgt = invert_transform(frame.global_T_ego @ camera.ego_T_cam) @ tgt_global_T_cam
            sources.append(SourceView(self._small_image(frame.path), camera, src_T_tgt, temporal=False))
        return sources


__all__ = ["ANCHORS", "AlignConfig", "AlignedDepth", "Fit", "GROUND_CLASSES", "ground_inverse_depth", "robust_line"]
