"""Voxelization: per-voxel class vote with a minimum point count, and free space by 3-D ray traversal.

Traversal is Amanatides-Woo DDA, vectorised over rays: a ray from its origin voxel to its end voxel
crosses exactly |di| + |dj| + |dk| voxel faces, so its length is known in advance; rays sorted by
length make the active set at step s a prefix of the arrays, and one numpy step advances all of them.
"""

from __future__ import annotations

import numpy as np
from easyocc.runtime.contract.classes import FREE, NUM_CLASSES
from easyocc.runtime.contract.grid import GridSpec


def vote(points_ego: np.ndarray, classes: np.ndarray, grid: GridSpec, min_points: int = 1):
    """Class vote per voxel.

    points_ego: [N, 3] m in the label frame; classes: uint8 [N] 0-16. Returns (semantics uint8
    [X, Y, Z] with FREE where not occupied, occupied bool [X, Y, Z], hit bool [X, Y, Z] = any point).
    A voxel is occupied when it holds at least `min_points` points; its class is the most frequent.
    """
    index, inside = grid.index_of(points_ego)
    flat = grid.flat_index(index[inside])
    counts = np.bincount(flat * NUM_CLASSES + classes[inside].astype(np.int64), minlength=grid.num_voxels * NUM_CLASSES)
    counts = counts.reshape(grid.num_voxels, NUM_CLASSES)
    total = counts.sum(axis=1)
    occupied = total >= max(int(min_points), 1)
    semantics = np.full(grid.num_voxels, FREE, dtype=np.uint8)
    semantics[occupied] = counts[occupied].argmax(axis=1).astype(np.uint8)
    return semantics.reshape(grid.shape), occupied.reshape(grid.shape), (total > 0).reshape(grid.shape)


def unique_rays(origins: np.ndarray, origin_id: np.ndarray, targets: np.ndarray, grid: GridSpec):
    """Deduplicate rays that share an origin and end in the same voxel.

    origins: [M, 3] m; origin_id: [N] int index into origins; targets: [N, 3] m. Returns
    (origins [R, 3], ends [R, 3] m at the end-voxel centres, or the targets themselves outside the grid).
    """
    index, inside = grid.index_of(targets)
    keys = np.where(inside, grid.flat_index(np.where(inside[:, None], index, 0)), -1)
    out_ends = targets[~inside]
    out_ids = origin_id[~inside]
    key = origin_id[inside].astype(np.int64) * grid.num_voxels + keys[inside]
    key = np.unique(key)
    ids, flat = np.divmod(key, grid.num_voxels)
    centres = np.asarray(grid.lower) + grid.voxel_size * (np.stack(np.unravel_index(flat, grid.shape), axis=1) + 0.5)
    return (
        np.concatenate([origins[ids], origins[out_ids]]),
        np.concatenate([centres, out_ends]),
    )


def traverse(origins: np.ndarray, ends: np.ndarray, grid: GridSpec) -> np.ndarray:
    """Flat indices (int64, with repeats) of the voxels crossed by segments origin -> end.

    origins, ends: [R, 3] m. Segments are clipped to the grid; the voxel holding `end` is not included
    when `end` is inside the grid (it holds the hit), all crossed voxels are when it lies outside.
    """
    size = np.asarray(grid.shape, dtype=np.float64)
    p0 = (np.asarray(origins, np.float64) - grid.lower) / grid.voxel_size
    p1 = (np.asarray(ends, np.float64) - grid.lower) / grid.voxel_size
    d = p1 - p0
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t_a, t_b = -p0 * inv, (size - p0) * inv
    t_lo = np.where(d != 0, np.minimum(t_a, t_b), -np.inf)
    t_hi = np.where(d != 0, np.maximum(t_a, t_b), np.inf)
    inside0 = np.all((p0 >= 0) & (p0 < size), axis=1)
    inside1 = np.all((p1 >= 0) & (p1 < size), axis=1)
    # Rays parallel to an axis and outside its slab never enter the grid.
    parallel_out = np.any((d == 0) & ((p0 < 0) | (p0 >= size)), axis=1)
    t_enter = np.clip(np.nanmax(np.where(np.isfinite(t_lo), t_lo, -np.inf), axis=1), 0, 1)
    t_exit = np.clip(np.nanmin(np.where(np.isfinite(t_hi), t_hi, np.inf), axis=1), 0, 1)
    keep = ~parallel_out & (t_enter < t_exit)
    if not keep.any():
        return np.zeros(0, dtype=np.int64)
    p0, d, inv, inside0, inside1 = p0[keep], d[keep], inv[keep], inside0[keep], inside1[keep]
    t_enter, t_exit = t_enter[keep], t_exit[keep]
    upper = size.astype(np.int64) - 1
    start_point = p0 + (t_enter + np.where(inside0, 0, 1e-9))[:, None] * d
    end_point = p0 + (t_exit - np.where(inside1, 0, 1e-9))[:, None] * d
    index = np.clip(np.floor(start_point), 0, upper).astype(np.int64)
    end_index = np.clip(np.floor(end_point), 0, upper).astype(np.int64)
    steps = np.abs(end_index - index).sum(axis=1) + np.where(inside1, 0, 1)

    order = np.argsort(-steps, kind="stable")
    index, d, inv, p0, steps = index[order], d[order], inv[order], p0[order], steps[order]
    step = np.sign(d).astype(np.int64)
    with np.errstate(invalid="ignore"):
        t_max = np.where(d != 0, (index + (step > 0) - p0) * inv, np.inf)
        t_delta = np.where(d != 0, np.abs(inv), np.inf)
    strides = np.array([grid.shape[1] * grid.shape[2], grid.shape[2], 1], dtype=np.int64)
    # int32 / float32 state halves the memory traffic of the loop; t stays in [0, 1] (float32 is ample).
    flat = (index @ strides).astype(np.int32)
    flat_step = [(step[:, a] * strides[a]).astype(np.int32) for a in range(3)]
    tx, ty, tz = (np.minimum(t_max[:, a], 2.0).astype(np.float32) for a in range(3))
    dx, dy, dz = (np.minimum(t_delta[:, a], 2.0).astype(np.float32) for a in range(3))
    offsets = np.concatenate([[0], np.cumsum(steps)[:-1]])
    out = np.empty(int(steps.sum()), dtype=np.int32)
    # active_after[s] = number of rays with more than s steps: a prefix, as steps are sorted descending
    active_after = len(steps) - np.cumsum(np.bincount(steps, minlength=int(steps.max()) + 1))
    for s in range(int(steps.max())):
        m = int(active_after[s])
        out[offsets[:m] + s] = flat[:m]
        x, y, z = tx[:m], ty[:m], tz[:m]
        along_x = (x <= y) & (x <= z)
        along_y = ~along_x & (y <= z)
        along_z = ~(along_x | along_y)
        flat[:m] += np.where(along_x, flat_step[0][:m], np.where(along_y, flat_step[1][:m], flat_step[2][:m]))
        x += np.where(along_x, dx[:m], 0)
        y += np.where(along_y, dy[:m], 0)
        z += np.where(along_z, dz[:m], 0)
    # Ties in t (ray through an edge or corner) can push a ray one voxel off its counted path.
    np.clip(out, 0, grid.num_voxels - 1, out=out)
    return out.astype(np.int64)


def free_space(origins: np.ndarray, ends: np.ndarray, grid: GridSpec) -> np.ndarray:
    """bool [X, Y, Z]: voxels crossed by any segment before its end voxel (see `traverse`)."""
    free = np.zeros(grid.num_voxels, dtype=bool)
    free[traverse(origins, ends, grid)] = True
    return free.reshape(grid.shape)
