"""Exact ray casting of the world: pinhole cameras and a spinning lidar.

Culling: every solid is reduced to the rectangle of rays it can touch (its projected bounding box for
a camera, its angular bounding-sphere extent for the lidar); only those rays are tested, solids are
visited nearest first, and a solid whose nearest point is behind everything already hit in its
rectangle is skipped. Camera rays are scaled so that their camera-z component is 1: the ray
parameter of a hit is then the z-depth in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from easyocc.calibration import Camera
from easyocc.runtime.contract.classes import FREE
from easyocc.training.synth import primitives as prim
from easyocc.training.synth.shading import albedo_of, finish, shade, sky
from easyocc.training.synth.world import GROUND_TEXTURE, Scene

GROUND, NOTHING = -1, -2
_GROUND_TEXTURE_LUT = np.zeros(256, np.int16)
for _cls, _tex in GROUND_TEXTURE.items():
    _GROUND_TEXTURE_LUT[_cls] = _tex
HDL32_ELEVATIONS_DEG = np.linspace(-30.67, 10.67, 32)


@dataclass
class Hits:
    """Per-ray results of a cast on an [R, C] ray image: t (ray parameter, inf: none), solid id
    (>= 0, GROUND or NOTHING), and for hits: world points, class, instance, texture inputs."""

    t: np.ndarray
    solid: np.ndarray
    points_world: np.ndarray | None = None
    semantic: np.ndarray | None = None
    instance: np.ndarray | None = None


def cast(origin, dirs, prims: prim.Primitives, rects, max_ground_dist: float) -> Hits:
    """Cast rays origin [3] + t dirs [R, C, 3] (world) against the ground plane z = 0 and the solids.

    rects: list of (solid index, near distance m, r0, r1, c0, c1) sorted nearest first.
    """
    planes = np.ascontiguousarray(np.moveaxis(dirs, -1, 0), dtype=np.float32)  # [3, R, C]
    dz = planes[2]
    scale = np.sqrt((planes**2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(dz < 0, -origin[2] / dz, np.inf)
    t_ground = np.where(t_ground * scale <= max_ground_dist, t_ground, np.inf)
    t = t_ground.astype(np.float32)
    solid = np.where(np.isfinite(t), GROUND, NOTHING).astype(np.int32)
    max_scale = float(scale.max())
    for index, near, r0, r1, c0, c1 in rects:
        sub_t = t[r0:r1, c0:c1]
        if sub_t.size == 0 or near >= float(sub_t.max()) * max_scale:
            continue
        rotation = prims.rotation[index]
        o_local = tuple(float(v) for v in (origin - prims.centre[index]) @ rotation)
        d_local = _rotate(planes[:, r0:r1, c0:c1], rotation)
        half = tuple(float(v) for v in prims.half[index])
        hit = prim.intersect(int(prims.kind[index]), o_local, *d_local, half)
        closer = hit < sub_t
        if closer.any():
            sub_t[closer] = hit[closer]
            solid[r0:r1, c0:c1][closer] = index
    return Hits(t.astype(np.float64), solid)


def _rotate(d, rotation):
    """Direction planes d [3, ...] (world) -> local components (d @ rotation), skipping zero terms."""
    out = []
    for k in range(3):
        acc = None
        for j in range(3):
            r = float(rotation[j, k])
            if r != 0.0:
                term = d[j] if r == 1.0 else d[j] * r
                acc = term if acc is None else acc + term
        out.append(acc if acc is not None else np.zeros_like(d[0]))
    return out


def _to_local(points, centre, rotation):
    """Points [N, 3] -> local [N, 3] with per-point centre [N, 3] and rotation [N, 3, 3]: (p - c) @ R."""
    return np.einsum("nj,njk->nk", points - centre, rotation)


def _to_world(vectors, rotation):
    """Local vectors [N, 3] -> world [N, 3] with per-point rotation [N, 3, 3]: R @ v."""
    return np.einsum("nkj,nj->nk", rotation, vectors)


def surface(hits: Hits, origin, dirs, prims: prim.Primitives, scene: Scene, want_appearance: bool):
    """Fill hit points, classes and instances; return texture inputs for shading when asked."""
    flat = hits.solid.reshape(-1)
    sel = np.nonzero(flat != NOTHING)[0]
    d = dirs.reshape(-1, 3)[sel].astype(np.float64)
    p_world = origin + hits.t.reshape(-1)[sel, None] * d
    ids = flat[sel]
    semantic = np.full(flat.shape, FREE, np.uint8)
    instance = np.zeros(flat.shape, np.uint16)
    is_ground = ids == GROUND
    ground_cls, road_sl = scene.ground_class(p_world[is_ground, :2])
    sem = np.empty(len(sel), np.uint8)
    sem[is_ground] = ground_cls
    obj = ~is_ground
    sem[obj] = prims.class_id[ids[obj]]
    semantic[sel] = sem
    instance[sel[obj]] = prims.instance_id[ids[obj]]
    hits.points_world, hits.semantic, hits.instance = (
        p_world,
        semantic.reshape(hits.t.shape),
        instance.reshape(hits.t.shape),
    )
    if not want_appearance:
        return sel, None
    n = len(sel)
    p_local = np.zeros((n, 3))
    n_local = np.zeros((n, 3))
    n_world = np.zeros((n, 3))
    half = np.ones((n, 3))
    albedo = np.ones((n, 3))
    texture = np.zeros(n, np.int16)
    sl = np.zeros((n, 2))
    gi = np.nonzero(is_ground)[0]
    n_world[gi] = (0.0, 0.0, 1.0)
    n_local[gi] = (0.0, 0.0, 1.0)
    p_local[gi] = p_world[gi]
    sl[gi] = road_sl
    texture[gi] = _GROUND_TEXTURE_LUT[ground_cls]
    oi = np.nonzero(obj)[0]
    oid = ids[oi]
    rot = prims.rotation[oid]
    p_local[oi] = _to_local(p_world[oi], prims.centre[oid], rot)
    half[oi] = prims.half[oid]
    kinds = prims.kind[oid]
    for kind in np.unique(kinds):
        m = oi[kinds == kind]
        n_local[m] = prim.normals_local(int(kind), p_local[m], half[m])
    n_world[oi] = _to_world(n_local[oi], rot)
    albedo[oi] = prims.albedo[oid]
    texture[oi] = prims.texture[oid]
    return sel, (texture, albedo, p_world, p_local, n_local, n_world, sl, half)


# -- cameras ---------------------------------------------------------------------------------------
def camera_rays(camera: Camera) -> np.ndarray:
    """[H, W, 3] float64 camera-frame directions with z = 1 through every pixel centre."""
    v, u = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float64)
    y = (v - camera.K[1, 2]) / camera.K[1, 1]
    x = (u - camera.K[0, 2] - camera.K[0, 1] * y) / camera.K[0, 0]
    return np.stack([x, y, np.ones_like(x)], axis=-1)


def camera_rects(camera: Camera, world_T_cam: np.ndarray, prims: prim.Primitives, max_dist: float):
    """Culling rectangles (solid, near, r0, r1, c0, c1) of the solids that can appear in the image."""
    corners = prims.corners()  # [M, 8, 3]
    cam_pts = prim.rotate(corners - world_T_cam[:3, 3], world_T_cam[:3, :3].T)
    z = cam_pts[..., 2]
    dist = np.linalg.norm(prims.centre - world_T_cam[:3, 3], axis=1)
    near = np.maximum(dist - prims.radius, 0.0)
    keep = (z.max(axis=1) > 0.05) & (near < max_dist)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = camera.K[0, 0] * cam_pts[..., 0] / z + camera.K[0, 1] * cam_pts[..., 1] / z + camera.K[0, 2]
        v = camera.K[1, 1] * cam_pts[..., 1] / z + camera.K[1, 2]
    straddle = z.min(axis=1) <= 0.05
    c0 = np.where(straddle, 0, np.ceil(np.nan_to_num(u.min(axis=1), nan=0) - 1)).clip(0, camera.width)
    c1 = np.where(straddle, camera.width, np.floor(np.nan_to_num(u.max(axis=1)) + 2)).clip(0, camera.width)
    r0 = np.where(straddle, 0, np.ceil(np.nan_to_num(v.min(axis=1)) - 1)).clip(0, camera.height)
    r1 = np.where(straddle, camera.height, np.floor(np.nan_to_num(v.max(axis=1)) + 2)).clip(0, camera.height)
    keep &= (c1 > c0) & (r1 > r0)
    order = np.argsort(near, kind="stable")
    return [(int(i), float(near[i]), int(r0[i]), int(r1[i]), int(c0[i]), int(c1[i])) for i in order if keep[i]]


@dataclass
class CameraRender:
    """One camera image and its ground truth: rgb uint8 [H, W, 3]; depth_m float32 [H, W] z-depth
    (0 = sky); semantic uint8 [H, W] (17 = sky); instance uint16 [H, W] (0 = none)."""

    rgb: np.ndarray | None
    depth_m: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray


def render_camera(
    camera: Camera, rays_cam, world_T_cam, prims, scene: Scene, max_dist: float, rng, rgb=True, shadows=None
) -> CameraRender:
    """Ray-cast one camera at pose world_T_cam [4, 4]; rays_cam from camera_rays(camera)."""
    origin = world_T_cam[:3, 3]
    dirs = prim.rotate(rays_cam, world_T_cam[:3, :3])
    hits = cast(origin, dirs, prims, camera_rects(camera, world_T_cam, prims, max_dist), max_dist)
    sel, tex = surface(hits, origin, dirs, prims, scene, rgb)
    depth = np.where(hits.solid == NOTHING, 0.0, hits.t).astype(np.float32)
    image = None
    if rgb:
        texture, albedo, p_world, p_local, n_local, n_world, sl, half = tex
        colour = albedo_of(texture, albedo, p_world, p_local, n_local, sl, half, scene.look, scene.markings)
        radiance = np.zeros((depth.size, 3), np.float32)
        lit = np.ones(len(sel))
        if shadows is not None:
            ground = hits.solid.reshape(-1)[sel] == GROUND
            lit[ground] = shadows.lit(p_world[ground, :2])
        radiance[sel] = shade(colour, n_world, p_world, origin, scene.look, shadow=lit)
        sky_rgb = sky(dirs[depth == 0], scene.look)
        image = finish(radiance.reshape(dirs.shape), depth, sky_rgb, scene.look, rng)
    return CameraRender(image, depth, hits.semantic, hits.instance)


def _outline_local(kind: int, half: np.ndarray) -> np.ndarray:
    """Points [K, 3] on a solid's surface whose convex hull approximates its outline from any side."""
    return _OUTLINES[kind] * half


def _unit_outline(kind: int) -> np.ndarray:
    half = np.ones(3)
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if kind == prim.BOX:
        return np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    if kind in (prim.CYLINDER, prim.CONE):
        top = 0.0 if kind == prim.CONE else 1.0
        pts = [np.c_[ring, -np.ones(12)], np.c_[ring * top, np.ones(12)]]
        return np.concatenate(pts) * half
    pts = [np.c_[ring * np.cos(e), np.full(12, np.sin(e))] for e in (-0.9, -0.3, 0.3, 0.9)]
    return np.concatenate(pts + [np.array([[0, 0, 1.0], [0, 0, -1.0]])]) * half


_OUTLINES = {kind: _unit_outline(kind) for kind in range(4)}


class ShadowMap:
    """Sun shadows on the ground: each solid's outline projected along the sun onto z = 0, rasterised
    at `resolution` m over a square of `extent` m around `centre_xy` [2] (world)."""

    def __init__(self, prims: prim.Primitives, sun_dir, centre_xy, extent: float = 160.0, resolution: float = 0.15):
        import cv2

        self.size = int(extent / resolution)
        self.resolution = resolution
        self.origin = np.asarray(centre_xy, np.float64) - extent / 2
        self.map = np.zeros((self.size, self.size), np.uint8)
        sun = np.asarray(sun_dir, np.float64)
        if sun[2] <= 0.05:
            return
        near = np.all(np.abs(prims.centre[:, :2] - centre_xy) < extent / 2 + prims.radius[:, None] * 4, axis=1)
        for i in np.nonzero(near)[0]:
            pts = _outline_local(int(prims.kind[i]), prims.half[i]) @ prims.rotation[i].T + prims.centre[i]
            ground = pts[:, :2] - (pts[:, 2:3] / sun[2]) * sun[:2]
            pix = np.round((ground - self.origin) / resolution * 16).astype(np.int32)
            hull = cv2.convexHull(pix)
            cv2.fillConvexPoly(self.map, hull, 1, lineType=cv2.LINE_8, shift=4)

    def lit(self, xy: np.ndarray) -> np.ndarray:
        """[N] 1.0 where ground points xy [N, 2] see the sun, 0.0 in shadow."""
        ij = np.floor((xy - self.origin) / self.resolution).astype(np.int64)
        ok = np.all((ij >= 0) & (ij < self.size), axis=1)
        out = np.ones(len(xy))
        out[ok] = 1.0 - self.map[ij[ok, 1], ij[ok, 0]]
        return out


# -- lidar -----------------------------------------------------------------------------------------
def lidar_directions(beams: int, azimuth_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions [beams, steps, 3] in the lidar frame (beam rows by rising elevation) and elevations (rad)."""
    if beams == 32:
        elevation = np.deg2rad(HDL32_ELEVATIONS_DEG)
    else:
        elevation = np.deg2rad(np.linspace(-30.67, 10.67, beams))
    azimuth = (np.arange(azimuth_steps) + 0.5) * 2 * np.pi / azimuth_steps
    ce = np.cos(elevation)[:, None]
    se = np.broadcast_to(np.sin(elevation)[:, None], (beams, azimuth_steps))
    dirs = np.stack([ce * np.cos(azimuth), ce * np.sin(azimuth), se], axis=-1)
    return dirs, elevation


def lidar_rects(world_T_lidar, prims: prim.Primitives, elevation, steps: int, max_range: float):
    """Culling rectangles in (beam, azimuth step) space from each solid's bounding sphere."""
    centre = (prims.centre - world_T_lidar[:3, 3]) @ world_T_lidar[:3, :3]
    dist = np.linalg.norm(centre, axis=1)
    radius = prims.radius
    rects = []
    for i in np.argsort(dist - radius, kind="stable"):
        near = dist[i] - radius[i]
        if near > max_range:
            continue
        if near <= 0.05:
            rects.append((int(i), 0.0, 0, len(elevation), 0, steps))
            continue
        half_angle = np.arcsin(min(1.0, radius[i] / dist[i]))
        el = np.arcsin(centre[i, 2] / dist[i])
        r0 = int(np.searchsorted(elevation, el - half_angle))
        r1 = int(np.searchsorted(elevation, el + half_angle, side="right"))
        if r1 <= r0:
            continue
        az = np.arctan2(centre[i, 1], centre[i, 0]) % (2 * np.pi)
        c0 = int(np.floor((az - half_angle) / (2 * np.pi) * steps - 0.5))
        c1 = int(np.ceil((az + half_angle) / (2 * np.pi) * steps + 0.5)) + 1
        if c1 - c0 >= steps:
            rects.append((int(i), float(near), r0, r1, 0, steps))
        elif c0 < 0:
            rects += [(int(i), float(near), r0, r1, 0, c1), (int(i), float(near), r0, r1, steps + c0, steps)]
        elif c1 > steps:
            rects += [(int(i), float(near), r0, r1, c0, steps), (int(i), float(near), r0, r1, 0, c1 - steps)]
        else:
            rects.append((int(i), float(near), r0, r1, c0, c1))
    return rects


@dataclass
class LidarSweep:
    """points float32 [N, 5] (x, y, z, intensity 0-255, ring) in the lidar frame; ray_range_m float32
    [beams, steps] (inf where nothing was hit in range), for the lidar visibility mask."""

    points: np.ndarray
    ray_range_m: np.ndarray


def render_lidar(world_T_lidar, dirs_lidar, elevation, prims, scene: Scene, max_range: float) -> LidarSweep:
    """Ray-cast the whole sweep at one instant from pose world_T_lidar [4, 4]."""
    origin = world_T_lidar[:3, 3]
    dirs = prim.rotate(dirs_lidar, world_T_lidar[:3, :3])
    rects = lidar_rects(world_T_lidar, prims, elevation, dirs.shape[1], max_range)
    hits = cast(origin, dirs, prims, rects, max_range)
    sel, _ = surface(hits, origin, dirs, prims, scene, want_appearance=False)
    t = hits.t.reshape(-1)[sel]
    ok = t <= max_range
    sel, t = sel[ok], t[ok]
    ids = hits.solid.reshape(-1)[sel]
    reflect = np.where(ids >= 0, prims.albedo[np.maximum(ids, 0)].mean(axis=1), 0.3)
    paint = scene.markings(*scene.road.to_road(hits.points_world[ok][:, :2]).T) * (ids == GROUND)
    cos_inc = np.abs(dirs.reshape(-1, 3)[sel, 2]) * (ids == GROUND) + (ids != GROUND) * 0.7
    intensity = np.clip(255 * (0.15 + 0.85 * np.maximum(reflect, paint)) * (0.3 + 0.7 * cos_inc), 0, 255)
    ring = sel // dirs.shape[1]
    points = np.concatenate(
        [dirs_lidar.reshape(-1, 3)[sel] * t[:, None], intensity[:, None], ring[:, None].astype(np.float64)], axis=1
    ).astype(np.float32)
    ray_range = np.full(hits.t.size, np.inf, np.float32)
    ray_range[sel] = t
    return LidarSweep(points, ray_range.reshape(hits.t.shape))
