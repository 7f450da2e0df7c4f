"""`SyntheticWorld`: one procedural scene that renders camera frames (and key frames with lidar and
Occ3D ground truth) on demand, for the dataset writer and for live streaming sources."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calibration import CameraRig, default_rig, invert_transform, transform_from_nuscenes
from runtime.labels import OccLabels
from training.synth import render, voxelize
from training.synth.config import KEY_FRAME_HZ, SynthConfig
from training.synth.render import CameraRender, LidarSweep
from training.synth.world import Scene

LIDAR_CALIBRATION = {
    "translation": [0.943713, 0.0, 1.84023],
    "rotation": [0.7077955119163518, -0.006492242056004365, 0.010646214713995808, -0.7063073142877817],
}
# Capture offsets (ms) relative to the key frame, as the lidar sweeps past each camera in nuScenes.
CAMERA_OFFSETS_MS = {"CAM_FRONT": 0.0, "CAM_FRONT_RIGHT": 8.0, "CAM_BACK_RIGHT": 17.0, "CAM_BACK": 25.0,
                     "CAM_BACK_LEFT": -17.0, "CAM_FRONT_LEFT": -8.0}  # fmt: skip
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
    """

    def __init__(self, config: SynthConfig, scene: int = 0, rig: CameraRig | None = None):
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

    def render_frame(self, index: int, rgb: bool = True) -> Frame:
        """Capture `index` (0, 1, ... at camera_rate_hz) of all cameras."""
        per_key = self.config.camera_frames_per_key
        times, stamps, poses, renders = {}, {}, {}, {}
        for cam_index, camera in enumerate(self.rig):
            t = self.camera_time(index, camera.name)
            pose = self.ego_pose(t)
            rng = np.random.default_rng([self.config.seed, self.scene_index, index, cam_index])
            renders[camera.name] = render.render_camera(
                camera, self._rays[camera.name], pose @ camera.ego_T_cam, self._primitives(t), self.scene,
                self.config.max_render_distance_m, rng, rgb=rgb, shadows=self._shadows(index / self.camera_rate_hz) if rgb else None,
            )  # fmt: skip
            times[camera.name], stamps[camera.name], poses[camera.name] = t, self.timestamp_us(t), pose
        return Frame(index, index % per_key == 0, times, stamps, poses, renders)

    def render_lidar(self, time_s: float) -> LidarSweep:
        world_T_lidar = self.ego_pose(time_s) @ self.ego_T_lidar
        return render.render_lidar(
            world_T_lidar, self._lidar_dirs, self._lidar_elevation, self._primitives(time_s), self.scene,
            self.config.lidar_max_range_m,
        )  # fmt: skip

    def key_frame(self, k: int, labels: bool = True, timings: dict | None = None) -> KeyFrame:
        """Key frame k: cameras, lidar, boxes and (if `labels`) Occ3D ground truth in the ego frame at time k / 2 s."""
        import time

        clock = time.perf_counter
        timings = {} if timings is None else timings
        t0 = clock()
        frame = self.render_frame(k * self.config.camera_frames_per_key)
        t1 = clock()
        time_s = k / KEY_FRAME_HZ
        global_T_ego = self.ego_pose(time_s)
        lidar = self.render_lidar(time_s)
        t2 = clock()
        occ = None
        if labels:
            occ = self.ground_truth(time_s, frame, lidar, timings)
        timings.update(cameras=t1 - t0, lidar=t2 - t1)
        boxes = self.scene.annotations_at(time_s)
        return KeyFrame(frame, self.timestamp_us(time_s), global_T_ego, lidar, occ, boxes)

    def ground_truth(self, time_s: float, frame: Frame, lidar: LidarSweep, timings: dict | None = None) -> OccLabels:
        """Occ3D labels in the ego frame at time_s: semantics and the camera and lidar visibility masks."""
        import time

        clock = time.perf_counter
        grid = self.config.grid
        global_T_ego = self.ego_pose(time_s)
        ego_T_global = invert_transform(global_T_ego)
        t0 = clock()
        prims_ego = self._primitives(time_s).transformed(ego_T_global)

        def ground_class(xy_ego):
            xy = np.einsum("nj,kj->nk", xy_ego, global_T_ego[:2, :2]) + global_T_ego[:2, 3]
            return self.scene.ground_class(xy)[0]

        sem = voxelize.semantics(prims_ego, ground_class, grid, self.config.subsamples)
        t1 = clock()
        views = []
        for camera in self.rig:
            ego0_T_cam = ego_T_global @ frame.global_T_ego[camera.name] @ camera.ego_T_cam
            views.append((camera, ego0_T_cam, frame.cameras[camera.name].depth_m))
        mask_camera = voxelize.camera_visibility(grid, views)
        t2 = clock()
        mask_lidar = voxelize.lidar_visibility(grid, self.ego_T_lidar, self._lidar_dirs, lidar.ray_range_m)
        t3 = clock()
        if timings is not None:
            timings.update(semantics=t1 - t0, mask_camera=t2 - t1, mask_lidar=t3 - t2)
        return OccLabels(sem, mask_lidar, mask_camera)
