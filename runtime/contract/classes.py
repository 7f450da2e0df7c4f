"""The Occ3D-nuScenes class taxonomy: ids, names, palette, dynamic classes, nuScenes category map."""

from __future__ import annotations

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError

CLASS_NAMES: tuple[str, ...] = (
    "others",
    "barrier",
    "bicycle",
    "bus",
    "car",
    "construction_vehicle",
    "motorcycle",
    "pedestrian",
    "traffic_cone",
    "trailer",
    "truck",
    "driveable_surface",
    "other_flat",
    "sidewalk",
    "terrain",
    "manmade",
    "vegetation",
    "free",
)
NUM_CLASSES = len(CLASS_NAMES)
CLASS_ID = {name: index for index, name in enumerate(CLASS_NAMES)}
FREE = CLASS_ID["free"]
OTHERS = CLASS_ID["others"]
OTHER_FLAT = CLASS_ID["other_flat"]
# Classes whose objects move: taken only from the current frame when densifying over time.
DYNAMIC_CLASSES: frozenset[int] = frozenset(
    CLASS_ID[name]
    for name in ("bicycle", "bus", "car", "construction_vehicle", "motorcycle", "pedestrian", "trailer", "truck")
)
# Semantic classes scored by mIoU (0-16) and by mIoU* (without others and other_flat).
MIOU_CLASSES: tuple[int, ...] = tuple(range(FREE))
MIOU_STAR_CLASSES: tuple[int, ...] = tuple(c for c in MIOU_CLASSES if c not in (OTHERS, OTHER_FLAT))

# RGB, one colour per class; free is white but is normally not drawn.
PALETTE = np.array(
    [
        (112, 128, 144),
        (255, 120, 50),
        (255, 192, 203),
        (255, 255, 0),
        (0, 150, 245),
        (0, 255, 255),
        (200, 180, 0),
        (255, 0, 0),
        (255, 240, 150),
        (135, 60, 0),
        (160, 32, 240),
        (255, 0, 255),
        (139, 137, 137),
        (75, 0, 75),
        (150, 240, 80),
        (230, 230, 250),
        (0, 175, 0),
        (255, 255, 255),
    ],
    dtype=np.uint8,
)

# nuScenes detection categories (prefixes) -> Occ3D class, as Occ3D maps them.
_NUSCENES_CATEGORY_PREFIXES = (
    ("vehicle.car", "car"),
    ("vehicle.emergency", "car"),
    ("vehicle.bus", "bus"),
    ("vehicle.truck", "truck"),
    ("vehicle.trailer", "trailer"),
    ("vehicle.construction", "construction_vehicle"),
    ("vehicle.motorcycle", "motorcycle"),
    ("vehicle.bicycle", "bicycle"),
    ("human.pedestrian", "pedestrian"),
    ("movable_object.barrier", "barrier"),
    ("movable_object.trafficcone", "traffic_cone"),
)


def class_id(name: str) -> int:
    """Occ3D id of a class name; raises naming the unknown class."""
    if name not in CLASS_ID:
        raise EasyOccError(f"unknown Occ3D class '{name}'; known: {', '.join(CLASS_NAMES)}")
    return CLASS_ID[name]


def class_from_nuscenes_category(category: str) -> int:
    """Occ3D class of a nuScenes category name ('vehicle.car', 'human.pedestrian.adult', ...)."""
    for prefix, name in _NUSCENES_CATEGORY_PREFIXES:
        if category.startswith(prefix):
            return CLASS_ID[name]
    return OTHERS
