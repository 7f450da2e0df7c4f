"""Ground truth on the Occ3D grid: semantics by sub-sampled majority, camera and lidar visibility."""

from __future__ import annotations

import numpy as np
from easyocc.calibration import Camera, invert_transform
from easyocc.runtime.contract.classes import FREE
from easyocc.runtime.contract.grid import GridSpec
from easyocc.training.synth import primitives as prim


def semantics(prims_ego: prim.Primitives, ground_class, grid: GridSpec, subsamples: int) -> np.ndarray:
    """uint8 [X, Y, Z] Occ3D classes of solids given in the ego frame.

    A voxel is occupied when any of its subsamples^3 sample points lies in a solid grown by half a
    sub-cell diagonal (so every voxel a surface passes through is occupied); its class is the one
    covering most samples of the un-grown solids. The ground (plane z = 0) fills the voxel layer that
    contains z = 0, its class per column the majority of subsamples^2 samples of `ground_class`
    (callable: ego xy [N, 2] -> class [N]).
    """
    vs, S = grid.voxel_size, subsamples
    S3 = S**3
    lower = np.asarray(grid.lower)
    shape = np.asarray(grid.shape)
    half_diag = vs * np.sqrt(3) / 2
    grow = vs / S * np.sqrt(3) / 2
    offsets = (np.stack(np.meshgrid(*[np.arange(S)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) / S * vs - vs / 2
    rows_v, rows_c, rows_u, rows_d = [], [], [], []
    corners = prims_ego.corners()
    for i in range(len(prims_ego)):
        lo = np.floor((corners[i].min(axis=0) - grow - lower) / vs).astype(int).clip(0, shape)
        hi = np.ceil((corners[i].max(axis=0) + grow - lower) / vs).astype(int).clip(0, shape)
        if np.any(hi <= lo):
            continue
        idx = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
        rotation, kind, half = prims_ego.rotation[i], int(prims_ego.kind[i]), prims_ego.half[i]
        local = prim.rotate(lower + (idx + 0.5) * vs - prims_ego.centre[i], rotation.T)
        full = prim.inside(kind, local, half, -half_diag)
        cand = np.nonzero(prim.inside(kind, local, half, half_diag + grow) & ~full)[0]
        samples = (local[cand, None, :] + (offsets @ rotation)[None]).reshape(-1, 3)
        count_in = prim.inside(kind, samples, half, 0.0).reshape(-1, S3).sum(axis=1)
        count_grown = prim.inside(kind, samples, half, grow).reshape(-1, S3).sum(axis=1)
        hit = count_grown > 0
        voxels = np.concatenate([idx[full], idx[cand[hit]]])
        rows_v.append(np.ravel_multi_index(tuple(voxels.T), grid.shape))
        rows_c.append(np.full(len(voxels), prims_ego.class_id[i], np.int64))
        rows_u.append(np.concatenate([np.full(int(full.sum()), S3), count_in[hit]]))
        rows_d.append(np.concatenate([np.full(int(full.sum()), S3), count_grown[hit]]))
    # ground layer
    k_ground = int(np.floor((0.0 - lower[2]) / vs))
    if 0 <= k_ground < shape[2]:
        sub = (np.arange(S) + 0.5) / S * vs
        gx = (lower[0] + np.arange(shape[0])[:, None] * vs + sub[None]).reshape(-1)
        gy = (lower[1] + np.arange(shape[1])[:, None] * vs + sub[None]).reshape(-1)
        xx, yy = np.meshgrid(gx, gy, indexing="ij")
        cls = ground_class(np.stack([xx.ravel(), yy.ravel()], axis=1)).reshape(shape[0], S, shape[1], S)
        cls = cls.transpose(0, 2, 1, 3).reshape(shape[0], shape[1], S * S)
        candidates = np.unique(cls)
        counts = np.stack([(cls == c).sum(axis=2) for c in candidates], axis=-1)
        majority = candidates[counts.argmax(axis=-1)]
        ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
        rows_v.append(np.ravel_multi_index((ii.ravel(), jj.ravel(), np.full(ii.size, k_ground)), grid.shape))
        rows_c.append(majority.ravel().astype(np.int64))
        rows_u.append(np.ones(ii.size))  # lowest priority: any solid in the layer wins
        rows_d.append(np.full(ii.size, S3))
    out = np.full(grid.num_voxels, FREE, np.uint8)
    if rows_v:
        voxel, cls = np.concatenate(rows_v), np.concatenate(rows_c)
        keys, inverse = np.unique(voxel * 32 + cls, return_inverse=True)
        score = np.bincount(inverse, np.concatenate(rows_u)) * 4096 + np.bincount(inverse, np.concatenate(rows_d))
        key_voxel = keys // 32
        order = np.lexsort((score, key_voxel))
        last = np.r_[key_voxel[order][1:] != key_voxel[order][:-1], True]
        best = keys[order][last]
        out[best // 32] = best % 32
    return out.reshape(grid.shape)


def flat_voxel_index(points: np.ndarray, grid: GridSpec) -> np.ndarray:
    """C-order flat voxel indices [M] of the points [N, 3] (ego, m) that fall inside the grid."""
    lower = np.asarray(grid.lower, points.dtype)
    scaled = (points - lower) * points.dtype.type(1.0 / grid.voxel_size)
    X, Y, Z = grid.shape
    i, j, k = (np.floor(scaled[:, a]).astype(np.int32) for a in range(3))
    ok = (i >= 0) & (i < X) & (j >= 0) & (j < Y) & (k >= 0) & (k < Z)
    return ((i[ok] * Y + j[ok]) * Z + k[ok]).astype(np.int64)


_CENTRES: dict[GridSpec, np.ndarray] = {}


def _centres32(grid: GridSpec) -> np.ndarray:
    if grid not in _CENTRES:
        _CENTRES[grid] = grid.centres().reshape(-1, 3).astype(np.float32)
    return _CENTRES[grid]


def view_visibility(grid: GridSpec, camera, ego0_T_cam, depth) -> np.ndarray:
    """bool [X*Y*Z] (C order): voxels one camera's rays cross or hit; mask_camera is the union over the
    cameras. A voxel counts as crossed when its centre projects into the image in front of the surface
    seen at that pixel (or into sky), and as hit when a pixel's surface point lies in it.

    ego0_T_cam [4, 4]: the camera pose in the key frame's ego frame; depth [H, W]: z-depth, 0 = sky.
    """
    centres = _centres32(grid)
    visible = np.zeros(len(centres), bool)
    cam_T_ego0 = invert_transform(ego0_T_cam)
    pts = prim.rotate(centres, cam_T_ego0[:3, :3]) + cam_T_ego0[:3, 3].astype(np.float32)
    z = pts[:, 2]
    front = z > 0.1
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_z = np.where(front, 1.0 / z, 0).astype(np.float32)
    K = camera.K
    u = np.rint(K[0, 0] * pts[:, 0] * inv_z + K[0, 1] * pts[:, 1] * inv_z + K[0, 2]).astype(np.int32)
    v = np.rint(K[1, 1] * pts[:, 1] * inv_z + K[1, 2]).astype(np.int32)
    inside = front & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    idx = np.nonzero(inside)[0]
    surface = depth[v[idx], u[idx]]
    visible[idx[(surface == 0) | (z[idx] < surface)]] = True
    vv, uu = np.nonzero(depth > 0)
    points = _unproject(camera, uu, vv, depth[vv, uu].astype(np.float64))
    points = (prim.rotate(points, ego0_T_cam[:3, :3]) + ego0_T_cam[:3, 3]).astype(np.float32)
    visible[flat_voxel_index(points, grid)] = True
    return visible


def _unproject(camera: Camera, u, v, depth):
    y = (v - camera.K[1, 2]) / camera.K[1, 1]
    x = (u - camera.K[0, 2] - camera.K[0, 1] * y) / camera.K[0, 0]
    return np.stack([x * depth, y * depth, depth], axis=1)


def lidar_visibility(grid: GridSpec, ego_T_lidar, dirs_lidar, ray_range_m) -> np.ndarray:
    """uint8 [X, Y, Z] mask_lidar: voxels along lidar rays (steps of half a voxel) up to and including the hit.

    dirs_lidar: [B, A, 3] unit directions (lidar frame); ray_range_m: [B, A] (inf: no return).
    """
    lower, upper = np.asarray(grid.lower), np.asarray(grid.upper)
    origin = ego_T_lidar[:3, 3]
    dirs = prim.rotate(dirs_lidar.reshape(-1, 3), ego_T_lidar[:3, :3])
    ranges = ray_range_m.reshape(-1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        exit_t = np.where(dirs > 0, (upper - origin) / dirs, np.where(dirs < 0, (lower - origin) / dirs, np.inf)).min(
            axis=1
        )
    reach = np.minimum(ranges, exit_t)
    step = grid.voxel_size / 2
    visible = np.zeros(grid.num_voxels, bool)
    order = np.argsort(reach)  # chunks of similar length waste few samples
    origin32, dirs32 = origin.astype(np.float32), dirs.astype(np.float32)
    for chunk in np.array_split(order, max(1, len(order) // 2048)):
        n_steps = int(np.ceil(reach[chunk].max() / step)) + 1
        t = np.minimum(np.arange(n_steps, dtype=np.float32)[None, :] * step, reach[chunk, None].astype(np.float32))
        pts = origin32 + t[..., None] * dirs32[chunk, None, :]
        visible[flat_voxel_index(pts.reshape(-1, 3), grid)] = True
    return visible.reshape(grid.shape).astype(np.uint8)
