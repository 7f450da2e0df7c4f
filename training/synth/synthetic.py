"""`SyntheticWorld`: one procedural scene that renders camera frames (and key frames with lidar and
Occ3D ground truth) on demand, for the dataset writer and for live streaming sources."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from easyocc.calibration import NUSCENES_CAMERAS, CameraRig, default_rig, invert_transform, transform_from_nuscenes
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.labels import OccLabels
from easyocc.training.synth import render, voxelize
from easyocc.training.synth.config import KEY_FRAME_HZ, SynthConfig
from easyocc.training.synth.render import CameraRender, LidarSweep
from easyocc.training.synth.world import Scene

LIDAR_CALIBRATION = {
    "translation": [0.943713, 0.0, 1.84023],
    "rotation": [0.7077955119163518, -0.006492242056004365, 0.010646214713995808, -0.7063073142877817],
}
# Capture offsets (ms) relative to the key frame, as the lidar sweeps past each camera in nuScenes.
CAMERA_OFFSETS_MS = dict(zip(NUSCENES_CAMERAS, (0.0, 8.0, -8.0, 25.0, -17.0, 17.0)))
BASE_TIMESTAMP_US = 1_600_000_000_000_000


@dataclass
class Frame:
    """Camera images of one capture: per channel, time (s from scene start), timestamp (us),
    global_T_ego [4, 4] at that time and the render (rgb, depth_m, semantic, instance)."""

    index: int
    is_key_frame: bool
    time_s: dict[str, float]
    timestamp_us: dict[str, int]
    global_T_ego: dict[str, np.ndarray]
    cameras: dict[str, CameraRender]

    @property
    def images(self) -> dict[str, np.ndarray]:
        """RGB uint8 [H, W, 3] per camera channel."""
        return {name: render_.rgb for name, render_ in self.cameras.items()}


@dataclass
class KeyFrame:
    """A key frame: its camera frame, the lidar sweep and pose, Occ3D labels and annotated boxes."""

    frame: Frame
    timestamp_us: int
    global_T_ego: np.ndarray
    lidar: LidarSweep
    labels: OccLabels | None
    boxes: list[dict] = field(default_factory=list)


class SyntheticWorld:
    """Scene `scene` (0-based) of the dataset that `config` describes; deterministic in (config.seed, scene).

    render_frame(index) renders capture `index` at the camera rate (config.camera_hz, or 2 Hz);
    key_frame(k) renders key frame k (time k / 2 s) with lidar and ground truth.
    threads: worker threads for the cameras, lidar and voxelization (default: one per core, at most 8;
    1 renders in the calling thread); the output does not depend on it.
    """

    def __init__(self, config: SynthConfig, scene: int = 0, rig: CameraRig | None = None, threads: int | None = None):
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise EasyOccError(f"synth: threads must be a positive integer, got {threads!r}")
        self.threads = threads or min(os.cpu_count() or 1, 8)
        self._pool: ThreadPoolExecutor | None = None
        self.config = config
        self.scene_index = int(scene)
        self.rig = rig or default_rig().resized(*config.image_size)
        duration = (config.frames - 1) / KEY_FRAME_HZ
        self.scene = Scene(np.random.default_rng([config.seed, self.scene_index]), duration, config.density)
        self.ego_T_lidar = transform_from_nuscenes(LIDAR_CALIBRATION)
        self._rays = {camera.name: render.camera_rays(camera) for camera in self.rig}
        self._lidar_dirs, self._lidar_elevation = render.lidar_directions(
            config.lidar_beams, config.lidar_azimuth_steps
        )
        self._prims_cache: dict[float, object] = {}
        self._shadow_cache: dict[float, render.ShadowMap] = {}

    @property
    def camera_rate_hz(self) -> float:
        return float(self.config.camera_hz or KEY_FRAME_HZ)

    @property
    def base_timestamp_us(self) -> int:
        return BASE_TIMESTAMP_US + self.scene_index * 10**9

    def timestamp_us(self, time_s: float) -> int:
        return self.base_timestamp_us + int(round(time_s * 1e6))

    def camera_time(self, index: int, channel: str) -> float:
        offset = CAMERA_OFFSETS_MS.get(channel, 0.0) / 1000.0 if self.config.stagger_cameras else 0.0
        return index / self.camera_rate_hz + offset

    def ego_pose(self, time_s: float) -> np.ndarray:
        """global_T_ego [4, 4] at time_s."""
        return self.scene.ego_pose(time_s)

    def _primitives(self, time_s: float):
        key = round(time_s, 6)
        if key not in self._prims_cache:
            if len(self._prims_cache) > 16:
                self._prims_cache.clear()
            self._prims_cache[key] = self.scene.primitives_at(time_s)
        return self._prims_cache[key]

    def _shadows(self, time_s: float) -> render.ShadowMap:
        key = round(time_s, 6)
        if key not in self._shadow_cache:
            self._shadow_cache.clear()
            centre = self.ego_pose(time_s)[:2, 3]
            self._shadow_cache[key] = render.ShadowMap(self._primitives(time_s), self.scene.look.sun_dir, centre)
        return self._shadow_cache[key]

    def _run(self, jobs: dict) -> dict:
        """Run the zero-argument callables `jobs` (name -> callable) on the world's threads; name -> result.

        numpy releases the GIL in the array work that dominates rendering, so cameras, the lidar and the
        voxelization share the cores. Every job draws from its own seeded generator: results do not
        depend on the thread count or the order the jobs finish in.
        """
        if self.threads <= 1 or len(jobs) <= 1:
            return {name: job() for name, job in jobs.items()}
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="synth")
        futures = {name: self._pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}

    def _camera_jobs(self, index: int, rgb: bool):
        """(times, stamps, poses, jobs) of capture `index`: one render job per camera channel."""
        times, stamps, poses, jobs = {}, {}, {}, {}
        shadows = self._shadows(index / self.camera_rate_hz) if rgb else None
        for cam_index, camera in enumerate(self.rig):
            t = self.camera_time(index, camera.name)
            pose = self.ego_pose(t)
            rng = np.random.default_rng([self.config.seed, self.scene_index, index, cam_index])
            jobs[camera.name] = partial(
                render.render_camera, camera, self._rays[camera.name], pose @ camera.ego_T_cam, self._primitives(t),
                self.scene, self.config.max_render_distance_m, rng, rgb=rgb, shadows=shadows,
            )  # fmt: skip
            times[camera.name], stamps[camera.name], poses[camera.name] = t, self.timestamp_us(t), pose
        return times, stamps, poses, jobs

    def render_frame(self, index: int, rgb: bool = True) -> Frame:
        """Capture `index` (0, 1, ... at camera_rate_hz) of all cameras."""
        times, stamps, poses, jobs = self._camera_jobs(index, rgb)
        renders = self._run(jobs)
        return Frame(index, index % self.config.camera_frames_per_key == 0, times, stamps, poses, renders)

    def render_lidar(self, time_s: float) -> LidarSweep:
        world_T_lidar = self.ego_pose(time_s) @ self.ego_T_lidar
        return render.render_lidar(
            world_T_lidar, self._lidar_dirs, self._lidar_elevation, self._primitives(time_s), self.scene,
            self.config.lidar_max_range_m,
        )  # fmt: skip

    def key_frame(self, k: int, labels: bool = True, timings: dict | None = None) -> KeyFrame:
        """Key frame k: cameras, lidar, boxes and (if `labels`) Occ3D ground truth in the ego frame at time k / 2 s.

        One job per camera (its image, then the voxels its rays cross), one for the lidar (its sweep,
        then mask_lidar) and one for the semantics grid, all on the world's threads. `timings`
        receives each stage's seconds summed over its jobs (cameras, lidar, semantics, mask_camera,
        mask_lidar); with more than one thread they overlap and add up to more than the wall time.
        """
        index = k * self.config.camera_frames_per_key
        time_s = k / KEY_FRAME_HZ
        self._primitives(time_s)  # fill the cache here: the jobs only read it
        ego_T_global = invert_transform(self.ego_pose(time_s))
        grid = self.config.grid
        times, stamps, poses, render_jobs = self._camera_jobs(index, rgb=True)
        jobs = {}
        if labels:  # the longest job first: the others fill the remaining threads around it
            jobs["semantics"] = partial(_then, partial(self._semantics, time_s), None, None)
        for camera in self.rig:
            ego0_T_cam = ego_T_global @ poses[camera.name] @ camera.ego_T_cam
            view = partial(voxelize.view_visibility, grid, camera, ego0_T_cam) if labels else None
            jobs["camera", camera.name] = partial(_then, render_jobs[camera.name], view, lambda r: r.depth_m)
        mask_lidar = partial(voxelize.lidar_visibility, grid, self.ego_T_lidar, self._lidar_dirs) if labels else None
        jobs["lidar"] = partial(_then, partial(self.render_lidar, time_s), mask_lidar, lambda r: r.ray_range_m)
        done = self._run(jobs)
        frame = Frame(index, True, times, stamps, poses, {name: done["camera", name][0] for name in times})
        lidar = done["lidar"][0]
        stage_s = {"cameras": sum(done["camera", name][2] for name in times), "lidar": done["lidar"][2]}
        occ = None
        if labels:
            visible = np.zeros(grid.num_voxels, bool)
            for name in times:
                visible |= done["camera", name][1]
            occ = OccLabels(done["semantics"][0], done["lidar"][1], visible.reshape(grid.shape).astype(np.uint8))
            stage_s.update(
                semantics=done["semantics"][2],
                mask_camera=sum(done["camera", name][3] for name in times),
                mask_lidar=done["lidar"][3],
            )
        if timings is not None:
            timings.update(stage_s)
        boxes = self.scene.annotations_at(time_s)
        return KeyFrame(frame, self.timestamp_us(time_s), self.ego_pose(time_s), lidar, occ, boxes)

    def _semantics(self, time_s: float) -> np.ndarray:
        """The voxelized semantics grid in the ego frame at time_s."""
        global_T_ego = self.ego_pose(time_s)
        prims_ego = self._primitives(time_s).transformed(invert_transform(global_T_ego))

        def ground_class(xy_ego):
            xy = np.einsum("nj,kj->nk", xy_ego, global_T_ego[:2, :2]) + global_T_ego[:2, 3]
            return self.scene.ground_class(xy)[0]

        return voxelize.semantics(prims_ego, ground_class, self.config.grid, self.config.subsamples)


def _then(job, follow, argument):
    """Run job(), then follow(argument(result)) when follow is given: (result, follow's result or None,
    job seconds, follow seconds)."""
    start = time.perf_counter()
    result = job()
    middle = time.perf_counter()
    second = follow(argument(result)) if follow is not None else None
    return result, second, middle - start, time.perf_counter() - middle
