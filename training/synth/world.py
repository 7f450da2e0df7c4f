"""A procedural scene: a curved road with lanes, sidewalks and terrain, scenery beside it, parked and
moving objects, and the ego car driving its lane. World frame: z up, ground at z = 0."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from easyocc.runtime.contract.classes import CLASS_ID
from easyocc.training.synth import objects
from easyocc.training.synth.objects import rot_z
from easyocc.training.synth.primitives import Primitives
from easyocc.training.synth.shading import TEXTURE, Look

DRIVEABLE, OTHER_FLAT, SIDEWALK, TERRAIN = (
    CLASS_ID[n] for n in ("driveable_surface", "other_flat", "sidewalk", "terrain")
)
GROUND_TEXTURE = {DRIVEABLE: TEXTURE["asphalt"], OTHER_FLAT: TEXTURE["other_flat"], SIDEWALK: TEXTURE["sidewalk"],
                  TERRAIN: TEXTURE["terrain"]}  # fmt: skip


@dataclass(frozen=True)
class Road:
    """Centreline: a circular arc of signed curvature `kappa` (1/m) from `start` [2] with heading `heading`.

    Road coordinates: s (m along the centreline), l (m to the left). Lanes are `lane_width` m wide,
    `lanes` per direction, traffic on the right; a parking strip and a sidewalk on each side.
    """

    start: np.ndarray
    heading: float
    kappa: float
    lanes: int
    lane_width: float
    parking: float
    sidewalk: float

    @property
    def carriageway(self) -> float:
        """Half width (m) of the lanes."""
        return self.lanes * self.lane_width

    @property
    def half_width(self) -> float:
        """Half width (m) of the driveable surface (lanes and parking strip)."""
        return self.carriageway + self.parking

    def lane_centre(self, lane: int) -> float:
        """l of a lane: lane 0 is the ego side's inner lane (negative l), negative lanes go the other way."""
        if lane >= 0:
            return -(lane + 0.5) * self.lane_width
        return (-lane - 0.5) * self.lane_width

    def to_world(self, s, l):
        """(s, l) arrays -> (xy [..., 2] world metres, heading [...] rad)."""
        s, l = np.asarray(s, np.float64), np.asarray(l, np.float64)
        theta = self.heading + self.kappa * s
        sx = (np.sin(theta) - np.sin(self.heading)) / self.kappa
        sy = -(np.cos(theta) - np.cos(self.heading)) / self.kappa
        x = self.start[0] + sx - l * np.sin(theta)
        y = self.start[1] + sy + l * np.cos(theta)
        return np.stack([x, y], axis=-1), theta

    def to_road(self, xy: np.ndarray) -> np.ndarray:
        """World xy [N, 2] -> road coordinates [N, 2] (s, l)."""
        normal0 = np.array([-np.sin(self.heading), np.cos(self.heading)])
        centre = self.start + normal0 / self.kappa
        v = xy - centre
        r = np.hypot(v[:, 0], v[:, 1])
        sign = np.sign(self.kappa)
        l = 1.0 / self.kappa - sign * r
        nx, ny = -sign * v[:, 0] / r, -sign * v[:, 1] / r
        theta = np.arctan2(-nx, ny)
        dtheta = (theta - self.heading + np.pi) % (2 * np.pi) - np.pi
        return np.stack([dtheta / self.kappa, l], axis=1)


@dataclass
class Actor:
    """One object: parts in its own frame, a category (None for scenery) and a motion along the road."""

    parts: Primitives
    category: str | None
    s0: float
    l: float
    speed: float = 0.0
    yaw_offset: float = 0.0
    static_xy: np.ndarray | None = None
    static_yaw: float = 0.0


class Scene:
    """One procedural world drawn from `rng`; `duration_s` of ego driving starting at t = 0."""

    def __init__(self, rng: np.random.Generator, duration_s: float, density: float = 1.0):
        self.rng = rng
        self.look = Look.random(rng)
        kappa = rng.choice([-1, 1]) / rng.uniform(120, 600) if rng.random() < 0.7 else rng.choice([-1, 1]) / 5000.0
        lanes = int(rng.integers(1, 3))
        self.road = Road(
            start=rng.uniform(200, 1800, 2), heading=float(rng.uniform(-np.pi, np.pi)), kappa=float(kappa),
            lanes=lanes, lane_width=float(rng.uniform(3.2, 3.7)), parking=float(rng.uniform(2.2, 2.8)),
            sidewalk=float(rng.uniform(2.0, 4.0)),
        )  # fmt: skip
        self.ego_lane = int(rng.integers(0, lanes))
        self.ego_speed = float(rng.uniform(3.0, 9.0))
        self.ego_amp = float(rng.uniform(0.0, 0.35)) * self.ego_speed
        self.ego_period = float(rng.uniform(8, 20))
        self.ego_phase = float(rng.uniform(0, 2 * np.pi))
        self.s_end = float(self.ego_s(duration_s))
        self.s_range = (-70.0, self.s_end + 70.0)
        self.patches: list[tuple[float, float, float, float, int]] = []
        self.actors: list[Actor] = []
        self._populate(density)
        self._static = self._static_primitives()

    # ego -----------------------------------------------------------------------------------------
    def ego_s(self, t):
        w = 2 * np.pi / self.ego_period
        return self.ego_speed * t - self.ego_amp / w * (np.cos(w * t + self.ego_phase) - np.cos(self.ego_phase))

    def ego_pose(self, t: float) -> np.ndarray:
        """global_T_ego 4x4 at time t (s): on the lane centre with a gentle weave, z = 0."""
        s = float(self.ego_s(t))
        weave_w = 2 * np.pi / 11.0
        l = self.road.lane_centre(self.ego_lane) + 0.25 * np.sin(weave_w * t)
        speed = self.ego_speed + self.ego_amp * np.sin(2 * np.pi / self.ego_period * t + self.ego_phase)
        (xy,), (theta,) = self.road.to_world([s], [l])
        yaw = theta + np.arctan2(0.25 * weave_w * np.cos(weave_w * t), max(speed, 0.1))
        pose = np.eye(4)
        pose[:3, :3] = rot_z(yaw)
        pose[:2, 3] = xy
        return pose

    # ground --------------------------------------------------------------------------------------
    def ground_class(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Occ3D class [N] (uint8) of the ground at world xy [N, 2], and road coordinates [N, 2]."""
        sl = self.road.to_road(xy)
        al = np.abs(sl[:, 1])
        cls = np.where(
            al <= self.road.half_width,
            DRIVEABLE,
            np.where(al <= self.road.half_width + self.road.sidewalk, SIDEWALK, TERRAIN),
        )
        for s0, s1, l0, l1, patch_class in self.patches:
            inside = (sl[:, 0] >= s0) & (sl[:, 0] <= s1) & (sl[:, 1] >= l0) & (sl[:, 1] <= l1)
            cls = np.where(inside, patch_class, cls)
        return cls.astype(np.uint8), sl

    def markings(self, s: np.ndarray, l: np.ndarray) -> np.ndarray:
        """Lane paint [N] in {0, 1}: centre line, dashed lane dividers, edge lines."""
        width = self.road.lane_width
        paint = np.abs(np.abs(l) - 0.0) < 0.08
        for k in range(1, self.road.lanes):
            paint |= (np.abs(np.abs(l) - k * width) < 0.07) & ((s % 9.0) < 3.0)
        paint |= np.abs(np.abs(l) - self.road.carriageway) < 0.08
        return paint.astype(np.float64)

    # population ----------------------------------------------------------------------------------
    def _add(self, parts, category, s0, l, speed=0.0, yaw_offset=0.0):
        instance = len(self.actors) + 1
        self.actors.append(Actor(parts.build(instance), category, float(s0), float(l), float(speed), float(yaw_offset)))

    def _populate(self, density: float):
        rng, road = self.rng, self.road
        s_lo, s_hi = self.s_range
        near_lo, near_hi = -20.0, self.s_end + 40.0  # guaranteed objects go where the ego will see them
        side_edge = road.half_width + road.sidewalk
        # other_flat: parking lots behind the sidewalk, traffic islands in the parking strip
        for _ in range(int(rng.integers(1, 4))):
            s0, side = rng.uniform(near_lo, near_hi), rng.choice([-1, 1])
            length, depth = rng.uniform(15, 35), rng.uniform(10, 20)
            l0, l1 = sorted([side * side_edge, side * (side_edge + depth)])
            self.patches.append((s0, s0 + length, l0, l1, OTHER_FLAT))
            for k in range(int(rng.integers(1, 4))):
                parts, cat = objects.car(rng)
                self._add(parts, cat, s0 + 3 + 5.5 * k, side * (side_edge + rng.uniform(3, depth - 3)), 0.0, np.pi / 2)
        islands = []
        for _ in range(int(rng.integers(1, 3))):
            s0, side = rng.uniform(near_lo, near_hi), rng.choice([-1, 1])
            inner, outer = road.carriageway + 0.3, road.half_width
            self.patches.append(
                (
                    s0,
                    s0 + rng.uniform(6, 14),
                    min(side * inner, side * outer),
                    max(side * inner, side * outer),
                    OTHER_FLAT,
                )
            )
            islands.append((s0 - 6, s0 + 20))
        # scenery along both sides
        for side in (-1, 1):
            s = s_lo
            while s < s_hi:
                if rng.random() < 0.65:
                    length, depth, height = rng.uniform(8, 30), rng.uniform(6, 16), rng.uniform(4, 25)
                    setback = rng.uniform(1.5, 12)
                    l = side * (side_edge + setback + depth / 2)
                    if not self._in_patch(s + length / 2, l):
                        self._add_static(objects.building(rng, length, depth, height), s + length / 2, l)
                    s += length + rng.uniform(1, 8)
                else:
                    gap = rng.uniform(10, 30)
                    for _ in range(int(rng.integers(1, 4))):
                        l = side * (side_edge + rng.uniform(1.5, 10))
                        builder = objects.tree if rng.random() < 0.6 else objects.bush
                        self._add_static(builder(rng), s + rng.uniform(0, gap), l)
                    if rng.random() < 0.5:
                        flen = min(gap, rng.uniform(5, 20))
                        self._add_static(objects.fence(rng, flen), s + flen / 2, side * (side_edge + 0.8), 0.0)
                    s += gap
            for s in np.arange(s_lo, s_hi, rng.uniform(18, 35)):  # street lights, signs, kerb trees
                self._add_static(
                    objects.street_light(rng), s, side * (road.half_width + 0.4), np.pi / 2 * (side > 0) - np.pi / 4 * 0
                )
                if rng.random() < 0.3:
                    self._add_static(objects.sign(rng), s + 5, side * (road.half_width + 0.5))
                if rng.random() < 0.5:
                    self._add_static(objects.tree(rng), s + 10, side * (road.half_width + road.sidewalk - 0.8))
        # parked vehicles in the parking strips
        parking_l = road.carriageway + road.parking / 2
        for side in (-1, 1):
            s = s_lo + rng.uniform(0, 10)
            while s < s_hi:
                if rng.random() < 0.55 * density and not any(a <= s <= b for a, b in islands):
                    kind = rng.choice(["car", "car", "car", "car", "truck", "trailer", "motorcycle", "bicycle"])
                    parts, cat = objects.BUILDERS[kind](rng)
                    length = float(np.ptp(parts.build().corners()[..., 0]))
                    self._add(parts, cat, s + length / 2, side * parking_l, 0.0, np.pi * (side > 0))
                    s += length + rng.uniform(1, 4)
                else:
                    s += rng.uniform(4, 12)
        # moving traffic in the other lanes, one speed per lane so nobody collides
        for lane in [k for k in range(-road.lanes, road.lanes) if k != self.ego_lane]:
            direction = 1.0 if lane >= 0 else -1.0
            speed = direction * rng.uniform(4, 13)
            s = s_lo - 80 + rng.uniform(0, 20)
            while s < s_hi + 80:
                kind = rng.choice(["car"] * 10 + ["truck", "bus", "motorcycle", "bicycle"] * 1)
                parts, cat = objects.BUILDERS[kind](rng)
                self._add(parts, cat, s, road.lane_centre(lane), speed, 0.0 if direction > 0 else np.pi)
                s += rng.uniform(15, 45) / density
        # pedestrians on the sidewalks, walking or standing
        walk_l = road.half_width + road.sidewalk / 2
        for _ in range(int(rng.poisson(density * (s_hi - s_lo) / 12))):
            side = rng.choice([-1, 1])
            speed = rng.choice([0.0, rng.uniform(0.8, 1.7)]) * rng.choice([-1, 1])
            parts, cat = objects.pedestrian(rng)
            self._add(parts, cat, rng.uniform(s_lo, s_hi), side * (walk_l + rng.uniform(-0.6, 0.6)), speed,
                      0.0 if speed >= 0 else np.pi)  # fmt: skip
        # clutter and a construction site: every class is guaranteed near the ego path
        for _ in range(int(rng.integers(3, 9))):
            parts, cat = objects.other_object(rng)
            self._add(
                parts,
                cat,
                rng.uniform(near_lo, near_hi),
                rng.choice([-1, 1]) * (road.half_width + 0.6),
                0.0,
                rng.uniform(0, 6.3),
            )
        self._construction_site(rng, near_lo, near_hi)
        for kind in ("bus", "trailer", "motorcycle", "bicycle", "truck"):  # parked on a lot or verge
            parts, cat = objects.BUILDERS[kind](rng)
            side = rng.choice([-1, 1])
            self._add(
                parts,
                cat,
                rng.uniform(near_lo, near_hi),
                side * (side_edge + rng.uniform(2.5, 5)),
                0.0,
                np.pi * (side > 0),
            )

    def _construction_site(self, rng, near_lo, near_hi):
        road = self.road
        side = rng.choice([-1, 1])
        s0 = rng.uniform(near_lo + 10, near_hi - 10)
        edge = road.half_width + road.sidewalk
        self.patches.append(
            (s0 - 12, s0 + 12, min(side * edge, side * (edge + 14)), max(side * edge, side * (edge + 14)), TERRAIN)
        )
        parts, cat = objects.construction_vehicle(rng)
        self._add(parts, cat, s0, side * (edge + 7), 0.0, rng.uniform(0, 6.3))
        for k in range(int(rng.integers(4, 9))):
            parts, cat = objects.barrier(rng)
            self._add(parts, cat, s0 - 10 + 2.2 * k, side * (edge + 1.2), 0.0, 0.0)
        for k in range(int(rng.integers(4, 10))):
            parts, cat = objects.traffic_cone(rng)
            self._add(parts, cat, s0 - 15 + 3 * k, side * (road.carriageway + 0.6), 0.0, 0.0)

    def _in_patch(self, s, l) -> bool:
        return any(s0 - 15 <= s <= s1 + 15 and l0 - 8 <= l <= l1 + 8 for s0, s1, l0, l1, _ in self.patches)

    def _add_static(self, parts, s, l, yaw_offset=0.0):
        self._add(parts, None, s, l, 0.0, yaw_offset)

    # assembly --------------------------------------------------------------------------------------
    def actor_pose(self, actor: Actor, t: float) -> np.ndarray:
        """global_T_actor 4x4 at time t."""
        (xy,), (theta,) = self.road.to_world([actor.s0 + actor.speed * t], [actor.l])
        pose = np.eye(4)
        pose[:3, :3] = rot_z(theta + actor.yaw_offset)
        pose[:2, 3] = xy
        return pose

    def _static_primitives(self) -> Primitives:
        parts = [a.parts.transformed(self.actor_pose(a, 0.0)) for a in self.actors if a.speed == 0.0]
        return Primitives.concatenate(parts)

    def primitives_at(self, t: float) -> Primitives:
        """All solids in the world frame at time t (static ones first)."""
        moving = [a.parts.transformed(self.actor_pose(a, t)) for a in self.actors if a.speed != 0.0]
        return Primitives.concatenate([self._static] + moving)

    def annotations_at(self, t: float) -> list[dict]:
        """Boxes of annotated objects at time t: category, instance id, centre [3], size wlh [3], rotation 3x3, velocity [3]."""
        boxes = []
        for actor in self.actors:
            if actor.category is None:
                continue
            corners = actor.parts.corners().reshape(-1, 3)
            lo, hi = corners.min(axis=0), corners.max(axis=0)
            lo[2] = 0.0
            pose = self.actor_pose(actor, t)
            centre = pose[:3, :3] @ ((lo + hi) / 2) + pose[:3, 3]
            _, heading = self.road.to_world([actor.s0 + actor.speed * t], [actor.l])
            velocity = actor.speed * np.array([np.cos(heading[0]), np.sin(heading[0]), 0.0])
            boxes.append(
                {"category": actor.category, "instance_id": int(actor.parts.instance_id[0]), "centre": centre,
                 "size_wlh": np.array([hi[1] - lo[1], hi[0] - lo[0], hi[2] - lo[2]]), "rotation": pose[:3, :3],
                 "velocity": velocity}
            )  # fmt: skip
        return boxes
