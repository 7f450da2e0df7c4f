"""The 3-D stage: per-image semantics and depth -> Occ3D labels of one key frame.

Per key frame: lift the six cameras of the key frame and of up to `past_frames` previous key frames into
the global frame (each frame's cloud cleaned by statistical outlier removal and kept in a small
cache, so sequential key frames reuse it), take static classes only from past frames, bring
everything into the label frame (the key frame's ego at the lidar's time, else at the first
camera's), vote classes per voxel (where the key frame's cameras see a dynamic class, that class
wins: a moving object keeps its class and, past frames giving static classes only, leaves no trail),
trace free space from every camera centre to every point, and build the masks. `mask_camera` is the
key frame's own visibility, as Occ3D defines it (voxels its cameras' rays cross or end in); past
frames add labels, not visibility (their accumulated coverage is reported as `observed_accumulated`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from easyocc.calibration import invert_transform, transform_points
from easyocc.runtime.contract import config as config_system
from easyocc.runtime.contract.classes import DYNAMIC_CLASSES, FREE
from easyocc.runtime.contract.config import setting
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import OCC3D_NUSCENES, GridSpec
from easyocc.runtime.contract.preprocess import read_image
from easyocc.runtime.dataset.labels import OccLabels
from easyocc.runtime.dataset.nuscenes import NuScenesDataset, Sample, load_lidar
from easyocc.training.pseudo.cache import ProviderCache
from easyocc.training.pseudo.lift import CloudPart, lift_image, outlier_mask
from easyocc.training.pseudo.providers import DepthEstimator, ImageView, Segmenter
from easyocc.training.pseudo.voxelize import free_space, unique_rays, vote

log = logging.getLogger(__name__)
_DYNAMIC = np.array(sorted(DYNAMIC_CLASSES), dtype=np.uint8)


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Settings of the 3-D stage."""

    past_frames: int = setting(13, min=0)
    """Previous key frames merged into each key frame's labels (0 = single frame)."""
    dynamic_filter: bool = True
    """Take dynamic classes (vehicles, people) only from the key frame itself, never from past frames."""
    outlier_removal: bool = True
    """Statistical outlier removal on each frame's merged cloud (scipy cKDTree)."""
    outlier_neighbours: int = setting(6, min=1)
    """Neighbours per point for outlier removal."""
    outlier_std_ratio: float = setting(2.0, above=0.0)
    """Points whose range-normalised mean neighbour distance exceeds mean + ratio * std are dropped."""
    min_points: int = setting(1, min=1)
    """Points a voxel needs to be labelled occupied."""
    max_points_per_image: int = setting(12000, min=1)
    """Dense depth maps are sampled on a pixel lattice to about this many points per image."""
    max_depth_m: float = setting(60.0, above=0.0)
    """Depth beyond this is ignored (foundation-model depth is unreliable far away)."""
    free_guard_voxels: int = setting(1, min=0)
    """Voxels within this many voxels (horizontally) of an occupied one are never labelled free: surface
    voxels are partly occupied, and rays grazing a facade cross their free part."""
    free_margin: float = setting(0.05, min=0.0, max=0.99)
    """Free-space rays stop this fraction of their length before the hit (room for depth error)."""
    grid: GridSpec = field(default=OCC3D_NUSCENES)
    """Label grid in the ego frame of the key frame."""

    def __post_init__(self):
        config_system.check(self)
        if not isinstance(self.grid, GridSpec):
            raise EasyOccError(f"pseudo-label config: grid must be a GridSpec, got {type(self.grid).__name__}")

    def to_dict(self) -> dict:
        return config_system.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PseudoLabelConfig:
        return config_system.build(cls, data)


@dataclass(frozen=True)
class FrameCloud:
    """One key frame's merged cameras in the global frame.

    points_global float64 [N, 3] m; classes uint8 [N]; camera uint8 [N] index into origins_global
    [C, 3] m (camera centres at each camera's own timestamp).
    """

    points_global: np.ndarray
    classes: np.ndarray
    camera: np.ndarray
    origins_global: np.ndarray


class ProviderError(EasyOccError):
    """A provider or an input file failed on one image; the message names the image and the cause."""


def label_frame_pose(sample: Sample) -> np.ndarray:
    """global_T_ego of the label frame: the ego at the lidar's timestamp, else at the first camera's."""
    if sample.lidar is not None:
        return sample.lidar.global_T_ego
    if not sample.cameras:
        raise EasyOccError(f"sample {sample.token} has neither cameras nor lidar")
    return next(iter(sample.cameras.values())).global_T_ego


class PseudoLabeler:
    """Builds labels for the key frames of a dataset from a segmenter and a depth estimator."""

    def __init__(
        self,
        dataset: NuScenesDataset,
        segmenter: Segmenter,
        depth: DepthEstimator,
        config: PseudoLabelConfig = PseudoLabelConfig(),
        cache: ProviderCache | None = None,
        frame_cache_size: int | None = None,
        depth_observer=None,
        read_lidar: bool = True,
    ):
        """depth_observer(view, depth_m): called with every camera's depth map as its frame is lifted
        (the depth evaluation of `easyocc labels --evaluate`). read_lidar False (camera-only labels):
        mask_lidar is the camera mask, and no lidar file is opened."""
        self.dataset = dataset
        self.segmenter = segmenter
        self.depth = depth
        self.config = config
        self.cache = cache or ProviderCache(None)
        self._clouds: OrderedDict[str, FrameCloud] = OrderedDict()
        self._cache_size = frame_cache_size if frame_cache_size is not None else config.past_frames + 2
        self.depth_observer = depth_observer
        self.read_lidar = read_lidar
        if hasattr(depth, "segmenter_key"):  # the alignment reads the segmentation: part of its cache key
            depth.segmenter_key = segmenter.cache_key()
        self.provider_seconds = 0.0
        """Time inside the providers (segmenter, depth and its alignment), cache reads included."""
        self.provider_cpu_seconds = 0.0
        """The same as this process's CPU time."""

    # ----- per frame
    def frame_cloud(self, sample: Sample) -> FrameCloud:
        """The merged, cleaned cloud of one key frame (cached). Raises ProviderError naming the image."""
        if sample.token in self._clouds:
            self._clouds.move_to_end(sample.token)
            return self._clouds[sample.token]
        rig = self.dataset.rig(sample)
        start, cpu = time.perf_counter(), time.process_time()
        views, loaders = [], []
        for camera in rig:
            view = ImageView(self.dataset, sample, camera.name, sample.cameras[camera.name], camera)
            loaders.append(_ImageLoader(view))
            with _named_failure(view):
                segmentation = self.cache.segment(self.segmenter, loaders[-1], view)
            views.append(dataclasses.replace(view, segmentation=segmentation))
        try:  # all cameras in one call: the models batch their forward passes
            depths = self.cache.depth_batch(self.depth, loaders, views)
        except Exception:  # noqa: BLE001 - redone one image at a time, to name the image that fails
            depths = []
            for loader, view in zip(loaders, views):
                with _named_failure(view):
                    depths.append(self.cache.depth(self.depth, loader, view))
        self.provider_seconds += time.perf_counter() - start
        self.provider_cpu_seconds += time.process_time() - cpu
        parts: list[CloudPart] = []
        for view, depth_m in zip(views, depths):
            if self.depth_observer is not None:
                self.depth_observer(view, depth_m)
            parts.append(
                lift_image(
                    depth_m,
                    view.segmentation.classes,
                    view.camera,
                    view.frame.global_T_ego,
                    self.config.max_points_per_image,
                    self.config.max_depth_m,
                )
            )
        cloud = _merge(parts)
        if self.config.outlier_removal and len(cloud.points_global):
            ranges = np.linalg.norm(cloud.points_global - cloud.origins_global[cloud.camera], axis=1)
            keep = outlier_mask(
                cloud.points_global, self.config.outlier_neighbours, self.config.outlier_std_ratio, ranges
            )
            cloud = FrameCloud(cloud.points_global[keep], cloud.classes[keep], cloud.camera[keep], cloud.origins_global)
        self._clouds[sample.token] = cloud
        while len(self._clouds) > self._cache_size:
            self._clouds.popitem(last=False)
        return cloud

    # ----- per key frame
    def label(self, scene_samples: list[Sample], index: int) -> tuple[OccLabels, dict]:
        """Labels of scene_samples[index] (the scene's key frames in temporal order) and run info."""
        key = scene_samples[index]
        grid = self.config.grid
        label_T_global = invert_transform(label_frame_pose(key))
        clouds = [(0, self.frame_cloud(key))]
        skipped = []
        for past in range(index - 1, max(index - self.config.past_frames, 0) - 1, -1):
            try:
                clouds.append((index - past, self.frame_cloud(scene_samples[past])))
            except ProviderError as exc:
                log.warning("past frame dropped: %s", exc)
                skipped.append(str(exc))
        points, classes, origin_id, origins, current = [], [], [], [], []
        for age, cloud in clouds:
            keep = slice(None)
            if age and self.config.dynamic_filter:
                keep = ~np.isin(cloud.classes, _DYNAMIC)
            points.append(transform_points(label_T_global, cloud.points_global[keep]))
            classes.append(cloud.classes[keep])
            origin_id.append(cloud.camera[keep].astype(np.int64) + sum(len(o) for o in origins))
            origins.append(transform_points(label_T_global, cloud.origins_global))
            current.append(np.full(len(classes[-1]), age == 0))
        points, classes = np.concatenate(points), np.concatenate(classes)
        origin_id, origins, current = np.concatenate(origin_id), np.concatenate(origins), np.concatenate(current)
        semantics, occupied, _ = vote(points, classes, grid, self.config.min_points)
        # The key frame's dynamic observations take precedence: a voxel its cameras see a vehicle or a
        # person in keeps that class, whatever static classes past frames voted there.
        now_dynamic = current & np.isin(classes, _DYNAMIC)
        if self.config.dynamic_filter and now_dynamic.any():
            dynamic_semantics, dynamic_voxels, _ = vote(points[now_dynamic], classes[now_dynamic], grid, 1)
            semantics[dynamic_voxels] = dynamic_semantics[dynamic_voxels]
            occupied |= dynamic_voxels
        guard = ~guard_band(occupied, self.config.free_guard_voxels)
        free_now, rays_now = self._free(origins, origin_id[current], points[current], grid)
        free_past, rays_past = self._free(origins, origin_id[~current], points[~current], grid)
        free_now &= guard
        free = free_now | (free_past & guard)
        # mask_camera as Occ3D defines it: what the key frame's own cameras observe (voxels their rays
        # cross, and the voxels their points land in). Past frames fill in labels, not visibility.
        _, _, hit_now = vote(points[current], classes[current], grid, 1)
        mask_camera = (free_now | hit_now) & (occupied | free)
        mask_accumulated = occupied | free
        use_lidar = self.read_lidar and key.lidar is not None
        mask_lidar = lidar_mask(self.dataset, key, grid) if use_lidar else mask_camera
        labels = OccLabels(semantics, mask_lidar.astype(np.uint8), mask_camera.astype(np.uint8)).validate(grid)
        info = {
            "frames_used": len(clouds),
            "points": int(len(points)),
            "rays": rays_now + rays_past,
            "occupied": int(occupied.sum()),
            "free": int(free.sum()),
            "observed_now": int(mask_camera.sum()),
            "observed_accumulated": int(mask_accumulated.sum()),
            "past_frames_dropped": skipped,
        }
        return labels, info

    def _free(self, origins, origin_id, points, grid) -> tuple[np.ndarray, int]:
        """bool [X, Y, Z] voxels crossed by rays from their camera to each point (stopping free_margin
        short of the hit), and the number of distinct rays traced."""
        if not len(points):
            return np.zeros(grid.shape, dtype=bool), 0
        ray_origins, ray_ends = unique_rays(origins, origin_id, points, grid)
        if self.config.free_margin:
            ray_ends = ray_origins + (1 - self.config.free_margin) * (ray_ends - ray_origins)
        return free_space(ray_origins, ray_ends, grid), len(ray_origins)


def guard_band(occupied: np.ndarray, voxels: int) -> np.ndarray:
    """bool [X, Y, Z]: occupied voxels grown by `voxels` in x and y (not z, so the layer above the
    ground stays free)."""
    if voxels <= 0:
        return occupied
    from scipy.ndimage import binary_dilation

    return binary_dilation(occupied, structure=np.ones((3, 3, 1), dtype=bool), iterations=voxels)


def lidar_mask(dataset: NuScenesDataset, sample: Sample, grid: GridSpec) -> np.ndarray:
    """bool [X, Y, Z]: voxels the key frame's lidar observed (crossed by a beam, or holding a return)."""
    points_ego = transform_points(sample.lidar.ego_T_sensor, load_lidar(sample.lidar.path)[:, :3])
    origin = sample.lidar.ego_T_sensor[:3, 3][None]
    index, inside = grid.index_of(points_ego)
    hit = np.zeros(grid.num_voxels, dtype=bool)
    hit[grid.flat_index(index[inside])] = True
    ray_origins, ray_ends = unique_rays(origin, np.zeros(len(points_ego), np.int64), points_ego, grid)
    return free_space(ray_origins, ray_ends, grid) | hit.reshape(grid.shape)


def _merge(parts: list[CloudPart]) -> FrameCloud:
    return FrameCloud(
        np.concatenate([p.points_global for p in parts]) if parts else np.zeros((0, 3)),
        np.concatenate([p.classes for p in parts]) if parts else np.zeros(0, np.uint8),
        np.concatenate([np.full(len(p.classes), i, np.uint8) for i, p in enumerate(parts)])
        if parts
        else np.zeros(0, np.uint8),
        np.stack([p.origin_global for p in parts]) if parts else np.zeros((0, 3)),
    )


@contextlib.contextmanager
def _named_failure(view: ImageView):
    """Any provider error inside becomes a ProviderError naming the sample and the image."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - any provider error becomes a named, skippable failure
        text = str(exc).splitlines()[0] if str(exc) else ""
        message = text if isinstance(exc, EasyOccError) else f"{type(exc).__name__}: {text}"
        raise ProviderError(f"sample {view.sample.token} image {view.path.name}: {message}") from exc


class _ImageLoader:
    """Reads the image once, on first use (cache hits never decode it); checks its size against the rig."""

    def __init__(self, view: ImageView):
        self.view = view
        self._image = None

    def __call__(self) -> np.ndarray:
        if self._image is None:
            image = read_image(self.view.path)
            if image.shape[:2] != self.view.shape:
                raise EasyOccError(
                    f"image {self.view.path}: size {image.shape[1]}x{image.shape[0]}, rig says {self.view.shape[1]}x{self.view.shape[0]}"
                )
            self._image = image
        return self._image


__all__ = [
    "FREE",
    "FrameCloud",
    "PseudoLabelConfig",
    "PseudoLabeler",
    "ProviderError",
    "label_frame_pose",
    "lidar_mask",
]
