"""Analytic solids: oriented boxes, elliptic cylinders, cones and ellipsoids, as struct-of-arrays.

Every solid has a local frame (centre, 3x3 rotation world_R_local) and half extents h = (hx, hy, hz):
box: |x| <= hx, |y| <= hy, |z| <= hz; cylinder: axis local z, (x/hx)^2 + (y/hy)^2 <= 1, |z| <= hz;
cone: base ellipse (hx, hy) at z = -hz, apex at z = +hz; ellipsoid: semi-axes (hx, hy, hz).
Ray functions take local origins o [3] and (not necessarily unit) directions d [N, 3] and return the
ray parameter t [N] of the first entering hit (inf for none), so t keeps the units of d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOX, CYLINDER, CONE, ELLIPSOID = 0, 1, 2, 3
KIND_NAMES = ("box", "cylinder", "cone", "ellipsoid")
_EPS = 1e-4


@dataclass
class Primitives:
    """M solids. centre [M, 3] m, rotation [M, 3, 3] (world_R_local), half [M, 3] m, kind/class/instance
    [M] ints, albedo [M, 3] float in [0, 1], texture [M] int (see shading.py)."""

    kind: np.ndarray
    centre: np.ndarray
    rotation: np.ndarray
    half: np.ndarray
    class_id: np.ndarray
    instance_id: np.ndarray
    albedo: np.ndarray
    texture: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)

    @property
    def radius(self) -> np.ndarray:
        """Bounding-sphere radius [M] (m) about the centre."""
        return np.linalg.norm(self.half, axis=1)

    def transformed(self, a_T_b: np.ndarray) -> Primitives:
        """The same solids with centres and rotations mapped by the 4x4 rigid transform a_T_b."""
        rotation = a_T_b[:3, :3]
        return Primitives(
            self.kind,
            self.centre @ rotation.T + a_T_b[:3, 3],
            np.einsum("ij,mjk->mik", rotation, self.rotation),
            self.half,
            self.class_id,
            self.instance_id,
            self.albedo,
            self.texture,
        )

    def corners(self) -> np.ndarray:
        """[M, 8, 3] corners of each solid's local bounding box, in the parent frame."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        local = signs[None] * self.half[:, None, :]
        return np.einsum("mij,mkj->mki", self.rotation, local) + self.centre[:, None, :]

    @staticmethod
    def concatenate(parts: list[Primitives]) -> Primitives:
        fields = ("kind", "centre", "rotation", "half", "class_id", "instance_id", "albedo", "texture")
        return Primitives(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def intersect(kind: int, o, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, h: np.ndarray) -> np.ndarray:
    """First entering hit t (inf: none) of rays o + t d (local frame) with one solid of `kind`.

    o: 3 scalars (one origin); dx, dy, dz: direction components, arrays of one shape (float32 is fine);
    returns t of that shape.
    """
    if kind == BOX:
        return _box(o, dx, dy, dz, h)
    if kind == CYLINDER:
        return _cylinder(o, dx, dy, dz, h)
    if kind == CONE:
        return _cone(o, dx, dy, dz, h)
    return _ellipsoid(o, dx, dy, dz, h)


def _box(o, dx, dy, dz, h):
    tmin = tmax = None
    with np.errstate(divide="ignore", invalid="ignore"):
        for oi, di, hi in zip(o, (dx, dy, dz), h):
            inv = 1.0 / di
            t1 = (-hi - oi) * inv
            t2 = (hi - oi) * inv
            lo, up = np.minimum(t1, t2), np.maximum(t1, t2)
            if abs(oi) <= hi:  # origin inside this slab: a parallel ray stays inside it
                lo = np.where(di == 0, -np.inf, lo)
                up = np.where(di == 0, np.inf, up)
            tmin = lo if tmin is None else np.maximum(tmin, lo)
            tmax = up if tmax is None else np.minimum(tmax, up)
    return np.where((tmax >= tmin) & (tmin > _EPS), tmin, np.inf)


def _cylinder(o, dx, dy, dz, h):
    ox, oy, oz = o[0] / h[0], o[1] / h[1], o[2]
    dx, dy = dx / h[0], dy / h[1]
    a = dx * dx + dy * dy
    b = 2 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - 1.0
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        t_side = (-b - np.sqrt(disc)) / (2 * a)
        z = oz + t_side * dz
        t_side = np.where((disc >= 0) & (a > 0) & (np.abs(z) <= h[2]) & (t_side > _EPS), t_side, np.inf)
        cap_z = np.where(dz < 0, h[2], -h[2])
        t_cap = (cap_z - oz) / dz
        x, y = ox + t_cap * dx, oy + t_cap * dy
        t_cap = np.where((x * x + y * y <= 1.0) & (t_cap > _EPS), t_cap, np.inf)
    return np.minimum(t_side, t_cap)


def _cone(o, dx, dy, dz, h):
    k2 = 1.0 / (2 * h[2]) ** 2
    ox, oy, oz = o[0] / h[0], o[1] / h[1], o[2]
    dx, dy = dx / h[0], dy / h[1]
    apex = h[2] - oz  # (hz - z) at the origin
    a = dx * dx + dy * dy - k2 * dz * dz
    b = 2 * (ox * dx + oy * dy) + 2 * k2 * apex * dz
    c = ox * ox + oy * oy - k2 * apex * apex
    disc = b * b - 4 * a * c
    best = np.full(np.shape(dx), np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(disc)
        for sign in (-1.0, 1.0):
            t = (-b + sign * root) / (2 * a)
            z = oz + t * dz
            ok = (disc >= 0) & (t > _EPS) & (z >= -h[2]) & (z <= h[2])
            best = np.where(ok & (t < best), t, best)
        t_base = (-h[2] - oz) / dz
        x, y = ox + t_base * dx, oy + t_base * dy
        ok = (dz > 0) & (x * x + y * y <= 1.0) & (t_base > _EPS)
    return np.where(ok & (t_base < best), t_base, best)


def _ellipsoid(o, dx, dy, dz, h):
    ox, oy, oz = o[0] / h[0], o[1] / h[1], o[2] / h[2]
    dx, dy, dz = dx / h[0], dy / h[1], dz / h[2]
    a = dx * dx + dy * dy + dz * dz
    b = 2 * (ox * dx + oy * dy + oz * dz)
    c = ox * ox + oy * oy + oz * oz - 1.0
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / (2 * a)
    return np.where((disc >= 0) & (t > _EPS), t, np.inf)


def normals_local(kind: int, p: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Outward (unnormalised) normals [N, 3] at surface points p [N, 3] (local frame) of solids of one
    kind with half extents h: [3] for one solid, or [N, 3] per point."""
    hx, hy, hz = h[..., 0], h[..., 1], h[..., 2]
    if kind == BOX:
        ratio = np.abs(p) / h
        axis = ratio.argmax(axis=1)
        n = np.zeros_like(p)
        n[np.arange(len(p)), axis] = np.sign(p[np.arange(len(p)), axis])
        return n
    if kind == CYLINDER:
        cap = np.abs(p[:, 2]) >= hz * (1 - 1e-4)
        n = np.stack([p[:, 0] / hx**2, p[:, 1] / hy**2, np.zeros(len(p))], axis=1)
        n[cap] = np.stack([np.zeros(cap.sum()), np.zeros(cap.sum()), np.sign(p[cap, 2])], axis=1)
        return n
    if kind == CONE:
        k2 = 1.0 / (2 * hz) ** 2
        n = np.stack([p[:, 0] / hx**2, p[:, 1] / hy**2, k2 * (hz - p[:, 2])], axis=1)
        base = p[:, 2] <= -hz * (1 - 1e-4)
        n[base] = (0.0, 0.0, -1.0)
        return n
    return p / h**2


def inside(kind: int, p: np.ndarray, h: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """[N] bool: local points p [N, 3] inside the solid grown by `margin` metres (negative: shrunk).

    Growing is conservative (a superset of the Minkowski sum with a ball), shrinking a subset of the
    eroded solid, which is what voxelization needs to decide full and empty voxels without sampling.
    """
    g = np.maximum(h + margin, 1e-6)
    if kind == BOX:
        return np.all(np.abs(p) <= g, axis=1)
    if kind == CYLINDER:
        return ((p[:, 0] / g[0]) ** 2 + (p[:, 1] / g[1]) ** 2 <= 1.0) & (np.abs(p[:, 2]) <= g[2])
    if kind == CONE:
        slant = np.sqrt(1 + (max(h[0], h[1]) / (2 * h[2])) ** 2)
        radius = (h[2] - p[:, 2]) / (2 * h[2]) + margin * slant / min(h[0], h[1])
        rho2 = (p[:, 0] / h[0]) ** 2 + (p[:, 1] / h[1]) ** 2
        return (radius > 0) & (rho2 <= radius * np.abs(radius)) & (np.abs(p[:, 2]) <= g[2])
    return np.einsum("ij,ij->i", p / g, p / g) <= 1.0


def rotate(vectors: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """vectors [..., 3] -> rotation @ v for each, without BLAS (2-D BLAS matmuls of [N, 3] x [3, 3]
    are slow when the cores are shared)."""
    return np.einsum("...j,kj->...k", vectors, np.asarray(rotation, dtype=vectors.dtype))


def dot(vectors: np.ndarray, direction) -> np.ndarray:
    """vectors [..., 3] . direction [3] -> [...]."""
    return np.einsum("...j,j->...", vectors, np.asarray(direction, dtype=vectors.dtype))
