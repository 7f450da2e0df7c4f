"""Object builders: each returns the parts of one object in its own frame (x forward, y left, z up,
origin on the ground below the footprint centre), with realistic size ranges drawn from `rng`."""

from __future__ import annotations

import numpy as np
from easyocc.runtime.contract.classes import CLASS_ID
from easyocc.training.synth.primitives import BOX, CONE, CYLINDER, ELLIPSOID, Primitives
from easyocc.training.synth.shading import TEXTURE

_AXIS_Y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # local z -> parent y (wheels)

CAR_COLOURS = np.array(
    [
        [0.8, 0.8, 0.82],
        [0.1, 0.1, 0.12],
        [0.55, 0.56, 0.6],
        [0.6, 0.08, 0.08],
        [0.1, 0.2, 0.5],
        [0.85, 0.85, 0.8],
        [0.3, 0.35, 0.3],
        [0.7, 0.55, 0.2],
        [0.2, 0.4, 0.6],
        [0.4, 0.1, 0.3],
    ]
)


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(pitch: float) -> np.ndarray:
    c, s = np.cos(pitch), np.sin(pitch)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


class Parts:
    """Accumulates parts: (kind, centre, rotation, half, albedo, texture) for one class."""

    def __init__(self, class_name: str):
        self.class_id = CLASS_ID[class_name]
        self.rows = []

    def add(self, kind, centre, half, albedo, texture, rotation=None, class_name=None):
        rotation = np.eye(3) if rotation is None else rotation
        class_id = CLASS_ID[class_name] if class_name else self.class_id
        self.rows.append((kind, centre, rotation, half, albedo, TEXTURE[texture], class_id))
        return self

    def build(self, instance_id: int = 0) -> Primitives:
        rows = self.rows
        return Primitives(
            np.array([r[0] for r in rows], np.int8),
            np.array([r[1] for r in rows], np.float64).reshape(-1, 3),
            np.array([r[2] for r in rows], np.float64).reshape(-1, 3, 3),
            np.array([r[3] for r in rows], np.float64).reshape(-1, 3),
            np.array([r[6] for r in rows], np.uint8),
            np.full(len(rows), instance_id, np.int32),
            np.clip(np.array([r[4] for r in rows], np.float64).reshape(-1, 3), 0, 1),
            np.array([r[5] for r in rows], np.int16),
        )


def _wheels(parts, rng, length, width, radius, axles, albedo=(0.06, 0.06, 0.07)):
    for x in axles:
        for side in (-1, 1):
            centre = (x * length / 2, side * (width / 2 - 0.14), radius)
            parts.add(CYLINDER, centre, (radius, radius, 0.13), albedo, "rubber", _AXIS_Y)


def car(rng) -> tuple[Parts, str]:
    length, width, height = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.95), rng.uniform(1.4, 1.7)
    colour = CAR_COLOURS[rng.integers(len(CAR_COLOURS))] * rng.uniform(0.85, 1.1)
    p = Parts("car")
    body = 0.42 * height
    p.add(BOX, (0, 0, 0.3 + body / 2), (length / 2, width / 2, body / 2), colour, "paint")
    cabin = height - 0.3 - body
    p.add(BOX, (-0.05 * length, 0, 0.3 + body + cabin / 2), (0.28 * length, 0.45 * width, cabin / 2), colour, "glass")
    _wheels(p, rng, length, width, 0.33, (-0.68, 0.68))
    return p, "vehicle.car"


def truck(rng) -> tuple[Parts, str]:
    length, width, height = rng.uniform(6.0, 10.0), rng.uniform(2.3, 2.55), rng.uniform(2.8, 3.8)
    p = Parts("truck")
    cab = 2.0
    p.add(
        BOX,
        (length / 2 - cab / 2, 0, 0.5 + (height - 0.7) / 2),
        (cab / 2, width / 2, (height - 0.7) / 2),
        rng.uniform(0.2, 0.9, 3),
        "glass",
    )
    p.add(
        BOX,
        (-cab / 2, 0, 0.6 + (height - 0.6) / 2),
        ((length - cab - 0.2) / 2, width / 2, (height - 0.6) / 2),
        rng.uniform(0.5, 0.95, 3),
        "panel",
    )
    _wheels(p, rng, length, width, 0.48, (-0.7, -0.45, 0.75))
    return p, "vehicle.truck"


def bus(rng) -> tuple[Parts, str]:
    length, width, height = rng.uniform(10.0, 12.5), 2.55, rng.uniform(3.0, 3.4)
    p = Parts("bus")
    colour = [(0.85, 0.2, 0.15), (0.9, 0.75, 0.1), (0.2, 0.45, 0.75), (0.9, 0.9, 0.9)][rng.integers(4)]
    p.add(BOX, (0, 0, 0.35 + (height - 0.35) / 2), (length / 2, width / 2, (height - 0.35) / 2), colour, "bus")
    _wheels(p, rng, length, width, 0.5, (-0.6, 0.65))
    return p, "vehicle.bus.rigid"


def trailer(rng) -> tuple[Parts, str]:
    length, width, height = rng.uniform(7.0, 12.0), 2.5, rng.uniform(3.6, 4.0)
    p = Parts("trailer")
    p.add(
        BOX,
        (0, 0, 1.2 + (height - 1.2) / 2),
        (length / 2, width / 2, (height - 1.2) / 2),
        rng.uniform(0.4, 0.95, 3),
        "panel",
    )
    _wheels(p, rng, length, width, 0.5, (-0.8, -0.62))
    for side in (-1, 1):
        p.add(BOX, (0.35 * length, side * (width / 2 - 0.3), 0.6), (0.08, 0.08, 0.6), (0.2, 0.2, 0.2), "metal")
    return p, "vehicle.trailer"


def construction_vehicle(rng) -> tuple[Parts, str]:
    length, width = rng.uniform(5.0, 8.0), rng.uniform(2.4, 3.0)
    yellow = (0.95, rng.uniform(0.6, 0.75), 0.05)
    p = Parts("construction_vehicle")
    p.add(BOX, (0, 0, 0.5), (length / 2, width / 2, 0.5), (0.12, 0.12, 0.12), "rubber")  # tracks
    p.add(BOX, (-0.1 * length, 0, 1.6), (0.35 * length, width / 2 - 0.1, 0.6), yellow, "panel")
    p.add(BOX, (-0.25 * length, 0, 2.9), (0.8, 0.8, 0.7), yellow, "glass")
    arm = rng.uniform(0.5, 0.9)
    p.add(BOX, (0.3 * length, 0, 2.6), (1.8, 0.2, 0.2), yellow, "panel", rot_y(arm))
    p.add(BOX, (0.5 * length, 0, 1.2), (0.5, 0.7, 0.4), (0.3, 0.3, 0.3), "metal")
    return p, "vehicle.construction"


def motorcycle(rng) -> tuple[Parts, str]:
    p = Parts("motorcycle")
    colour = rng.uniform(0.1, 0.9, 3)
    p.add(ELLIPSOID, (0, 0, 0.75), (0.8, 0.22, 0.3), colour, "paint")
    p.add(CYLINDER, (0.7, 0, 0.32), (0.32, 0.32, 0.07), (0.05, 0.05, 0.05), "rubber", _AXIS_Y)
    p.add(CYLINDER, (-0.7, 0, 0.32), (0.32, 0.32, 0.08), (0.05, 0.05, 0.05), "rubber", _AXIS_Y)
    if rng.random() < 0.5:  # rider
        p.add(ELLIPSOID, (-0.1, 0, 1.3), (0.25, 0.22, 0.38), rng.uniform(0.05, 0.6, 3), "cloth")
        p.add(ELLIPSOID, (-0.05, 0, 1.8), (0.14, 0.14, 0.15), (0.1, 0.1, 0.1), "paint")
    return p, "vehicle.motorcycle"


def bicycle(rng) -> tuple[Parts, str]:
    p = Parts("bicycle")
    colour = rng.uniform(0.1, 0.9, 3)
    for x in (-0.55, 0.55):
        p.add(CYLINDER, (x, 0, 0.35), (0.35, 0.35, 0.04), (0.08, 0.08, 0.08), "rubber", _AXIS_Y)
    p.add(BOX, (0, 0, 0.65), (0.45, 0.04, 0.2), colour, "metal")
    p.add(BOX, (-0.2, 0, 0.95), (0.14, 0.08, 0.05), (0.1, 0.1, 0.1), "rubber")
    return p, "vehicle.bicycle"


def pedestrian(rng) -> tuple[Parts, str]:
    height = rng.uniform(1.0, 1.35) if rng.random() < 0.15 else rng.uniform(1.55, 1.92)
    p = Parts("pedestrian")
    legs = 0.47 * height
    p.add(CYLINDER, (0, 0, legs / 2), (0.12, 0.19, legs / 2), rng.uniform(0.05, 0.5, 3), "cloth")
    torso = 0.33 * height
    p.add(ELLIPSOID, (0, 0, legs + torso / 2), (0.15, 0.24, torso / 2 + 0.04), rng.uniform(0.05, 0.95, 3), "cloth")
    skin = np.array([0.95, 0.75, 0.6]) * rng.uniform(0.4, 1.0)
    p.add(ELLIPSOID, (0, 0, height - 0.11), (0.1, 0.09, 0.12), skin, "skin")
    return p, "human.pedestrian.adult" if height > 1.4 else "human.pedestrian.child"


def barrier(rng) -> tuple[Parts, str]:
    p = Parts("barrier")
    length, height = rng.uniform(1.4, 2.2), rng.uniform(0.8, 1.05)
    colour = [(0.9, 0.9, 0.9), (0.85, 0.1, 0.05), (0.95, 0.55, 0.05)][rng.integers(3)]
    p.add(BOX, (0, 0, height / 2), (length / 2, rng.uniform(0.15, 0.3), height / 2), colour, "stripes")
    return p, "movable_object.barrier"


def traffic_cone(rng) -> tuple[Parts, str]:
    p = Parts("traffic_cone")
    height, radius = rng.uniform(0.5, 0.9), rng.uniform(0.14, 0.22)
    p.add(BOX, (0, 0, 0.025), (radius + 0.06, radius + 0.06, 0.025), (0.1, 0.1, 0.1), "rubber")
    p.add(CONE, (0, 0, 0.05 + height / 2), (radius, radius, height / 2), (1.0, 0.4, 0.05), "cone")
    return p, "movable_object.trafficcone"


def other_object(rng) -> tuple[Parts, str]:
    p = Parts("others")
    choice = rng.integers(3)
    if choice == 0:  # wheelie bin
        p.add(BOX, (0, 0, 0.55), (0.35, 0.3, 0.55), rng.uniform(0.1, 0.6, 3), "panel")
        return p, "movable_object.pushable_pullable"
    if choice == 1:  # crates / debris
        p.add(BOX, (0, 0, 0.4), (rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.6), 0.4), (0.6, 0.45, 0.25), "wood")
        return p, "movable_object.debris"
    p.add(CYLINDER, (0, 0, 0.5), (0.3, 0.3, 0.5), rng.uniform(0.2, 0.8, 3), "metal")  # barrel
    return p, "movable_object.pushable_pullable"


BUILDERS = {
    "car": car,
    "truck": truck,
    "bus": bus,
    "trailer": trailer,
    "construction_vehicle": construction_vehicle,
    "motorcycle": motorcycle,
    "bicycle": bicycle,
    "pedestrian": pedestrian,
    "barrier": barrier,
    "traffic_cone": traffic_cone,
    "others": other_object,
}


def building(rng, length, depth, height) -> Parts:
    p = Parts("manmade")
    p.add(BOX, (0, 0, height / 2), (length / 2, depth / 2, height / 2), rng.uniform(0.35, 0.85, 3), "facade")
    return p


def tree(rng) -> Parts:
    p = Parts("vegetation")
    trunk = rng.uniform(1.8, 3.5)
    p.add(CYLINDER, (0, 0, trunk / 2), (0.15, 0.15, trunk / 2), (0.35, 0.25, 0.15), "bark")
    radius = rng.uniform(1.5, 3.2)
    green = np.array([0.18, 0.42, 0.12]) * rng.uniform(0.7, 1.3)
    p.add(ELLIPSOID, (0, 0, trunk + radius * 0.8), (radius, radius, radius * rng.uniform(0.9, 1.3)), green, "leaves")
    return p


def bush(rng) -> Parts:
    p = Parts("vegetation")
    r = rng.uniform(0.5, 1.4)
    p.add(ELLIPSOID, (0, 0, r * 0.6), (r * rng.uniform(1, 2.5), r, r * 0.8), np.array([0.2, 0.45, 0.15]), "leaves")
    return p


def street_light(rng) -> Parts:
    p = Parts("manmade")
    height = rng.uniform(5.0, 8.0)
    p.add(CYLINDER, (0, 0, height / 2), (0.1, 0.1, height / 2), (0.45, 0.45, 0.48), "metal")
    p.add(BOX, (0, 0.6, height), (0.25, 0.7, 0.1), (0.3, 0.3, 0.3), "metal")
    return p


def sign(rng) -> Parts:
    p = Parts("manmade")
    p.add(CYLINDER, (0, 0, 1.25), (0.05, 0.05, 1.25), (0.5, 0.5, 0.5), "metal")
    colour = [(0.8, 0.1, 0.1), (0.1, 0.3, 0.8), (0.95, 0.8, 0.1)][rng.integers(3)]
    p.add(BOX, (0, 0, 2.7), (0.04, 0.35, 0.35), colour, "paint")
    return p


def fence(rng, length) -> Parts:
    p = Parts("manmade")
    height = rng.uniform(1.0, 2.2)
    thick = 0.15 if rng.random() < 0.5 else 0.3
    texture = "wall" if thick > 0.2 else "fence"
    p.add(BOX, (0, 0, height / 2), (length / 2, thick / 2, height / 2), rng.uniform(0.4, 0.8, 3), texture)
    return p
