"""Appearance: procedural textures per material, sun and sky light, fog, sensor noise.

Everything is a function of the hit point (world and solid-local coordinates, metres), so a surface
looks the same from every camera and frame, and classes differ by texture as well as colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEXTURE_NAMES = (
    "asphalt", "sidewalk", "terrain", "other_flat", "paint", "glass", "rubber", "panel", "bus", "metal", "cloth",
    "skin", "stripes", "cone", "wood", "facade", "wall", "fence", "bark", "leaves",
)  # fmt: skip
TEXTURE = {name: index for index, name in enumerate(TEXTURE_NAMES)}
GLASS = np.array([0.07, 0.09, 0.12])


@dataclass(frozen=True)
class Look:
    """Per-scene lighting and palette. Vectors are world-frame unit vectors; colours linear RGB 0-1."""

    sun_dir: np.ndarray
    sun_colour: np.ndarray
    ambient: np.ndarray
    sky_horizon: np.ndarray
    sky_zenith: np.ndarray
    fog_m: float
    exposure: float
    asphalt: np.ndarray
    grass: np.ndarray
    soil: np.ndarray
    paving: np.ndarray

    @classmethod
    def random(cls, rng) -> Look:
        elevation, azimuth = rng.uniform(0.3, 1.1), rng.uniform(-np.pi, np.pi)
        sun_dir = np.array(
            [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
        )
        warm = rng.uniform(0, 0.25)
        overcast = rng.uniform(0, 1)
        return cls(
            sun_dir=sun_dir,
            sun_colour=np.array([1.0, 1.0 - 0.3 * warm, 1.0 - 0.8 * warm]) * (1.1 - 0.7 * overcast),
            ambient=np.array([0.55, 0.6, 0.7]) * (0.45 + 0.35 * overcast),
            sky_horizon=np.array([0.75, 0.8, 0.85]) + rng.uniform(-0.1, 0.1, 3),
            sky_zenith=np.array([0.25, 0.45, 0.8]) * (1 - 0.5 * overcast)
            + 0.5 * overcast * np.array([0.7, 0.72, 0.75]),
            fog_m=float(rng.uniform(250, 900)),
            exposure=float(rng.uniform(0.85, 1.15)),
            asphalt=np.full(3, rng.uniform(0.22, 0.36)) + rng.uniform(-0.02, 0.02, 3),
            grass=np.array([0.3, 0.45, 0.15]) * rng.uniform(0.7, 1.2),
            soil=np.array([0.45, 0.36, 0.25]) * rng.uniform(0.8, 1.2),
            paving=np.array([0.62, 0.45, 0.35]) * rng.uniform(0.8, 1.15),
        )


def hash01(ix, iy, iz=0) -> np.ndarray:
    """Deterministic per-lattice-cell value in [0, 1) from integer coordinates (any broadcastable shapes)."""
    h = (
        (np.asarray(ix, np.int64) * 73856093)
        ^ (np.asarray(iy, np.int64) * 19349663)
        ^ (np.asarray(iz, np.int64) * 83492791)
    )
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return (h & 0xFFFF) / 65536.0


def cell_noise(p: np.ndarray, scale: float) -> np.ndarray:
    """Blocky value noise [N] in [0, 1) of points p [N, 3] on a lattice of `scale` metres."""
    q = np.floor(p / scale).astype(np.int64)
    return hash01(q[:, 0], q[:, 1], q[:, 2])


def _fbm(p: np.ndarray, scales=(2.0, 0.5, 0.12)) -> np.ndarray:
    return sum(cell_noise(p, s) for s in scales) / len(scales)


def sky(directions: np.ndarray, look: Look) -> np.ndarray:
    """Sky radiance [N, 3] for world ray directions [N, 3] (any length)."""
    d = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    up = np.sqrt(np.clip(d[:, 2], 0, 1))[:, None]
    colour = look.sky_horizon * (1 - up) + look.sky_zenith * up
    glow = np.clip(np.einsum("ij,j->i", d, look.sun_dir), 0, 1) ** 64
    return colour + glow[:, None] * look.sun_colour * 0.6


# Textures that read the local hit point and normal, and those that read the base noise n1 (the
# others, the ground among them, skip gathering what they do not use).
_USES_LOCAL = frozenset({"glass", "panel", "bus", "stripes", "cone", "wood", "facade", "fence"})
_USES_NOISE = frozenset({"asphalt", "sidewalk", "paint", "metal", "skin", "glass", "facade"})


def albedo_of(texture, albedo, p_world, p_local, n_local, road_sl, half, look: Look, markings) -> np.ndarray:
    """Surface colour [N, 3] from texture ids [N], base albedo [N, 3], hit points and normals [N, 3].

    road_sl: [N, 2] (s, l) road coordinates (used by ground textures); half: [N, 3] solid half extents;
    markings: callable (s, l) -> [N] paint mask in [0, 1] (lane lines).
    """
    colour = np.array(albedo, dtype=np.float64, copy=True)
    for tex in np.unique(texture):
        sel = np.nonzero(texture == tex)[0]
        name = TEXTURE_NAMES[int(tex)]
        pw = p_world[sel]
        if name in _USES_LOCAL:
            pl, nl = p_local[sel], n_local[sel]
        if name in _USES_NOISE:
            n1 = _fbm(pw)[:, None]
        if name == "asphalt":
            c = look.asphalt * (0.8 + 0.4 * n1) * (0.9 + 0.2 * cell_noise(pw, 0.03)[:, None])
            paint = markings(road_sl[sel, 0], road_sl[sel, 1])[:, None]
            c = c * (1 - paint) + paint * np.array([0.85, 0.85, 0.8])
        elif name == "sidewalk":
            s, l = road_sl[sel, 0], road_sl[sel, 1]
            grout = ((s / 0.6) % 1 < 0.06) | ((l / 0.6) % 1 < 0.06)
            c = np.array([0.58, 0.57, 0.55]) * (0.85 + 0.25 * n1) * np.where(grout, 0.7, 1.0)[:, None]
        elif name == "terrain":
            mix = np.clip(_fbm(pw, (6.0, 1.5)) * 1.6 - 0.4, 0, 1)[:, None]
            c = (look.grass * mix + look.soil * (1 - mix)) * (0.75 + 0.5 * cell_noise(pw, 0.05)[:, None])
        elif name == "other_flat":
            s, l = road_sl[sel, 0], road_sl[sel, 1]
            brick = hash01(np.floor(s / 0.4), np.floor(l / 0.2))[:, None]
            c = look.paving * (0.8 + 0.3 * brick)
        elif name in ("paint", "metal", "skin"):
            c = colour[sel] * (0.92 + 0.16 * n1)
        elif name == "glass":
            side = np.abs(nl[:, 2]) < 0.5
            c = np.where(side[:, None], GLASS + 0.1 * n1, colour[sel])
        elif name == "rubber":
            c = colour[sel] * (0.8 + 0.4 * cell_noise(pw, 0.05)[:, None])
        elif name == "panel":
            along = np.where(np.abs(nl[:, 0]) > 0.5, pl[:, 1], pl[:, 0])
            c = colour[sel] * (0.85 + 0.15 * (np.sin(along * 9) > 0))[:, None]
        elif name == "bus":
            rel = (pl[:, 2] + half[sel, 2]) / (2 * half[sel, 2])
            window = (rel > 0.5) & (rel < 0.88) & (np.abs(nl[:, 2]) < 0.5)
            c = np.where(window[:, None], GLASS, colour[sel])
        elif name == "cloth":
            c = colour[sel] * (0.8 + 0.4 * cell_noise(pw, 0.04)[:, None])
        elif name == "stripes":
            band = (np.floor((pl[:, 0] + pl[:, 1]) * 2.5) % 2) == 0
            c = np.where(band[:, None], np.array([0.9, 0.9, 0.9]), colour[sel])
        elif name == "cone":
            rel = (pl[:, 2] + half[sel, 2]) / (2 * half[sel, 2])
            c = np.where(((rel > 0.45) & (rel < 0.65))[:, None], np.array([0.95, 0.95, 0.95]), colour[sel])
        elif name == "wood":
            c = colour[sel] * (0.75 + 0.3 * ((pl[:, 2] * 6) % 1 > 0.1))[:, None]
        elif name == "facade":
            along = np.where(np.abs(nl[:, 0]) > 0.5, pl[:, 1], pl[:, 0])
            height = pl[:, 2] + half[sel, 2]
            window = ((along / 3.0) % 1 > 0.3) & ((along / 3.0) % 1 < 0.75) & ((height / 3.2) % 1 > 0.35)
            window &= ((height / 3.2) % 1 < 0.85) & (np.abs(nl[:, 2]) < 0.5)
            wall = colour[sel] * (0.85 + 0.2 * cell_noise(pw, 0.25)[:, None])
            c = np.where(window[:, None], GLASS * (0.8 + 0.8 * n1), wall)
        elif name == "wall":
            c = colour[sel] * (0.7 + 0.3 * _fbm(pw, (0.8, 0.2, 0.05))[:, None])
        elif name == "fence":
            along = np.where(np.abs(nl[:, 0]) > 0.5, pl[:, 1], pl[:, 0])
            c = colour[sel] * np.where((along / 0.15) % 1 < 0.2, 0.4, 1.0)[:, None]
        elif name == "bark":
            c = colour[sel] * (0.7 + 0.4 * cell_noise(pw * np.array([8.0, 8.0, 1.0]), 0.2)[:, None])
        else:  # leaves
            c = colour[sel] * (0.5 + 0.5 * _fbm(pw, (0.7, 0.25, 0.08))[:, None] + 0.3 * cell_noise(pw, 0.04)[:, None])
        colour[sel] = c
    return colour


def _normalised(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.sqrt(np.einsum("ij,ij->i", v, v)), 1e-9)[:, None]


def shade(colour, normal_world, points_world, eye_world, look: Look, shadow=None) -> np.ndarray:
    """Radiance [N, 3]: Lambert sun (times `shadow` [N] in 0-1) + hemispheric ambient + a little specular."""
    n = _normalised(normal_world)
    lambert = np.clip(np.einsum("ij,j->i", n, look.sun_dir), 0, 1)
    if shadow is not None:
        lambert = lambert * shadow
    hemi = 0.6 + 0.4 * n[:, 2]
    view = _normalised(eye_world - points_world)
    half_vec = _normalised(view + look.sun_dir)
    spec = np.clip(np.einsum("ij,ij->i", n, half_vec), 0, 1) ** 40 * 0.25
    light = look.ambient * hemi[:, None] + look.sun_colour * lambert[:, None]
    return colour * light + (spec * (lambert > 0))[:, None] * look.sun_colour


def finish(radiance: np.ndarray, depth_hw: np.ndarray, sky_rgb: np.ndarray, look: Look, rng) -> np.ndarray:
    """Fog, exposure, gamma, vignetting and sensor noise -> uint8 RGB [H, W, 3].

    radiance: [H, W, 3] surface radiance; sky_rgb: [S, 3] sky colour of the S pixels where depth is 0.
    """
    depth = depth_hw.astype(np.float32)
    fog = (1 - np.exp(-depth / np.float32(look.fog_m)))[..., None]
    image = (radiance * (1 - fog) + look.sky_horizon.astype(np.float32) * fog).astype(np.float32)
    image[depth_hw == 0] = sky_rgb
    h, w = depth_hw.shape
    yy = ((np.arange(h, dtype=np.float32) - h / 2) / (h / 2)) ** 2
    xx = ((np.arange(w, dtype=np.float32) - w / 2) / (w / 2)) ** 2
    gain = np.float32(look.exposure) * (1 - 0.15 * (yy[:, None] + xx[None, :]))
    image = np.clip(image * gain[..., None], 0, 1) ** np.float32(1 / 1.3)
    image = image * 255 + rng.standard_normal(image.shape, dtype=np.float32) * 2.0
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
