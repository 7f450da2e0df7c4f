"""What the nuScenes reader needs of each table, checked when the table is read.

Every field the reader uses, with its type; poses finite, rotations unit quaternions [w, x, y, z]
within QUATERNION_TOLERANCE; tokens that resolve to a row of the table they name. A broken row is
refused with one line naming the table, the row's token and the field, so a hand-edited or truncated
table never surfaces as a KeyError or a silently wrong pose.
"""

from __future__ import annotations

import math

from easyocc.runtime.contract.errors import EasyOccError

QUATERNION_TOLERANCE = 1e-3  # |norm - 1|; the nuScenes tables hold unit quaternions to ~1e-15

# kinds: 'str', 'int' (not bool), 'vec3' / 'quat' (finite numbers; quat of unit norm), 'list'
SCHEMA: dict[str, dict[str, str]] = {
    "scene": {"token": "str", "name": "str", "first_sample_token": "str"},
    "sample": {"token": "str", "timestamp": "int", "scene_token": "str", "next": "str"},
    "sample_data": {
        "token": "str",
        "sample_token": "str",
        "ego_pose_token": "str",
        "calibrated_sensor_token": "str",
        "timestamp": "int",
        "filename": "str",
    },
    "ego_pose": {"token": "str", "translation": "vec3", "rotation": "quat"},
    "calibrated_sensor": {"token": "str", "sensor_token": "str", "translation": "vec3", "rotation": "quat"},
    "sensor": {"token": "str", "channel": "str"},
    "sample_annotation": {
        "token": "str",
        "sample_token": "str",
        "instance_token": "str",
        "translation": "vec3",
        "size": "vec3",
        "rotation": "quat",
    },
    "instance": {"token": "str", "category_token": "str"},
    "category": {"token": "str", "name": "str"},
}
OPTIONAL_FIELDS = {"sample_data": {"width": "int", "height": "int"}, "calibrated_sensor": {"camera_intrinsic": "list"}}

# (table, field) -> table its token must name; '' (the empty token) allowed where the field says so.
REFERENCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("scene", "first_sample_token"): ("sample", False),
    ("sample", "scene_token"): ("scene", False),
    ("sample", "next"): ("sample", True),
    ("sample_data", "sample_token"): ("sample", False),
    ("sample_data", "calibrated_sensor_token"): ("calibrated_sensor", False),
    ("sample_data", "ego_pose_token"): ("ego_pose", False),
    ("calibrated_sensor", "sensor_token"): ("sensor", False),
    ("sample_annotation", "sample_token"): ("sample", False),
    ("sample_annotation", "instance_token"): ("instance", False),
    ("instance", "category_token"): ("category", False),
}


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(value, kind: str) -> str | None:
    """Why `value` is not of `kind`, or None when it is."""
    if kind == "str":
        return None if isinstance(value, str) else "expected a string"
    if kind == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected an integer"
    if kind == "list":
        return None if isinstance(value, list) else "expected a list"
    size = 4 if kind == "quat" else 3
    if not isinstance(value, list) or len(value) != size:
        return f"expected a list of {size} numbers"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return f"expected {size} finite numbers"
    if kind == "quat":
        norm = math.sqrt(sum(v * v for v in value))
        if abs(norm - 1.0) > QUATERNION_TOLERANCE:
            return f"expected a unit quaternion [w, x, y, z] (norm {norm:.4g}, tolerance {QUATERNION_TOLERANCE:g})"
    return None


def check_rows(where: str, name: str, rows) -> None:
    """Refuse the first row of table `name` (file `where`) that lacks a field or holds a wrong type."""
    if not isinstance(rows, list):
        raise EasyOccError(f"dataset table {where}: expected a list of rows, got {type(rows).__name__}")
    fields = SCHEMA.get(name, {})
    optional = OPTIONAL_FIELDS.get(name, {})
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise EasyOccError(f"dataset table {where}: row {index} is {_short(row)}, expected an object")
        token = row.get("token")
        label = f"token {token}" if isinstance(token, str) else f"row {index}"
        for field, kind in fields.items():
            if field not in row:
                raise EasyOccError(f"dataset table {where}: {label}: field '{field}' is missing")
            why = _problem(row[field], kind)
            if why:
                raise EasyOccError(f"dataset table {where}: {label}: field '{field}' is {_short(row[field])}, {why}")
        for field, kind in optional.items():
            if row.get(field) is not None and _problem(row[field], kind):
                why = _problem(row[field], kind)
                raise EasyOccError(f"dataset table {where}: {label}: field '{field}' is {_short(row[field])}, {why}")


def check_references(folder: str, tables: dict, names) -> None:
    """Refuse the first token of tables `names` that names no row of the table it refers to; `tables`:
    name -> rows (only tables present are checked; ego_pose holds only the rows key frames use)."""
    index: dict[str, set] = {}
    for (name, field), (target, empty_ok) in REFERENCES.items():
        if name not in names or name not in tables or target not in tables:
            continue
        if target not in index:
            index[target] = {row["token"] for row in tables[target]}
        tokens = index[target]
        for row in tables[name]:
            value = row[field]
            if value in tokens or (empty_ok and value == ""):
                continue
            raise EasyOccError(
                f"dataset table {folder}/{name}.json: token {row['token']}: field '{field}' names "
                f"{target} {value!r}, which is not in {target}.json"
            )
