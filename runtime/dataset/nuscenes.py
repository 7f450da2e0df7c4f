"""Reader for the nuScenes layout (the table subset in ../shared/data, full v1.0, or the synthetic world).

No nuscenes-devkit dependency; the same conventions: quaternions [w, x, y, z], `calibrated_sensor`
maps sensor -> ego, `ego_pose` maps ego -> global at that sensor's own timestamp.

Scale (full v1.0-trainval: 850 scenes, 34k key frames, 1.17M annotations, 2.6M sample_data rows):
only key-frame sample_data rows and the ego poses they reference are kept (the sweeps between key
frames are never read); the annotation tables (sample_annotation, instance, category) are read on
the first `boxes()` call, so training never holds them; rows are indexed by token, key-frame data by
(sample, channel) and annotations by sample, each index built once, on first use, so every
per-sample lookup is O(1).
Measured in benchmarks/bench_nuscenes_tables.py (docs/results/nuscenes_tables.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from easyocc.calibration import NUSCENES_CAMERAS, CameraRig, camera_from_nuscenes, transform_from_nuscenes
from easyocc.runtime.contract.classes import class_from_nuscenes_category
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.labels import labels_path
from easyocc.runtime.dataset.nuscenes_schema import check_references, check_rows

LIDAR_CHANNEL = "LIDAR_TOP"
REQUIRED_TABLES = ("scene", "sample", "sample_data", "ego_pose", "calibrated_sensor", "sensor")
OPTIONAL_TABLES = ("sample_annotation", "instance", "category")


@dataclass(frozen=True)
class SensorFrame:
    """One sensor reading: file, timestamp (microseconds), ego pose at that time, sensor extrinsic."""

    channel: str
    path: Path
    timestamp_us: int
    global_T_ego: np.ndarray
    ego_T_sensor: np.ndarray
    calibrated_sensor: dict
    width: int
    height: int
    token: str


@dataclass(frozen=True)
class Box:
    """A 3-D box in the global frame: centre (m), size (width, length, height) m, rotation 3x3."""

    centre_global: np.ndarray
    size_wlh: np.ndarray
    rotation_global: np.ndarray
    category: str
    instance_token: str
    class_id: int

    def corners_global(self) -> np.ndarray:
        """[8, 3] corners. Box axes: x along length, y along width, z up."""
        w, l, h = self.size_wlh
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        local = signs * np.array([l, w, h]) / 2
        return local @ self.rotation_global.T + self.centre_global


@dataclass(frozen=True)
class Sample:
    """A key frame: its cameras (in NUSCENES_CAMERAS order where present) and its lidar."""

    token: str
    timestamp_us: int
    scene_name: str
    index: int
    cameras: dict
    lidar: SensorFrame | None


class NuScenesDataset:
    """Read-only view of a nuScenes-layout folder: <root>/<version>/*.json and <root>/samples/..."""

    def __init__(self, root, version: str | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise EasyOccError(f"dataset folder not found: {self.root}")
        self.version = version or self._find_version()
        self._tables = _LazyTables(self._read_table)
        for name in REQUIRED_TABLES:  # read now: a missing or broken required table is refused at once
            self._tables.setdefault(name, self._read_table(name))
        check_references(self.version, self._tables, REQUIRED_TABLES)
        self._by_token = _TokenIndex(self._tables)

    def _read_table(self, name: str) -> list:
        """Rows of <root>/<version>/<name>.json; an optional table that is absent has none."""
        path = self.root / self.version / f"{name}.json"
        if not path.is_file():
            if name in REQUIRED_TABLES:
                raise EasyOccError(f"dataset {self.root}: table {self.version}/{name}.json is missing")
            return []
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise EasyOccError(f"dataset table {path}: invalid JSON ({exc.msg})") from None
        if not isinstance(rows, list):
            raise EasyOccError(f"dataset table {path}: expected a list of rows, got {type(rows).__name__}")
        if name == "sample_data":  # only key frames are read, so only they are checked
            rows = [r for r in rows if not isinstance(r, dict) or r.get("is_key_frame", True)]
        elif name == "ego_pose":
            used = {r["ego_pose_token"] for r in self._tables["sample_data"]}
            rows = [r for r in rows if not isinstance(r, dict) or r.get("token") in used]
        if name in ("sample_data", "ego_pose"):
            # Fresh copies of the rows kept: they sat between the dropped sweeps' rows, whose freed memory
            # the allocator cannot return while a kept row pins it (trainval: ~1.8 GB more RSS otherwise).
            rows = json.loads(json.dumps(rows))
        check_rows(f"{self.version}/{name}.json", name, rows)
        return rows

    @cached_property
    def _key_data(self) -> dict:
        """(sample token, channel) -> key-frame sample_data row."""
        sensor_channel = {r["token"]: r["channel"] for r in self._tables["sensor"]}
        calibrated = self._by_token["calibrated_sensor"]
        return {
            (r["sample_token"], sensor_channel.get(calibrated[r["calibrated_sensor_token"]]["sensor_token"])): r
            for r in self._tables["sample_data"]
        }

    @cached_property
    def _annotations(self) -> dict:
        """sample token -> its sample_annotation rows."""
        names = ("sample_annotation", "instance", "category")
        check_references(self.version, {n: self._tables[n] for n in (*names, "sample")}, names)
        by_sample: dict[str, list] = {}
        for ann in self._tables["sample_annotation"]:
            by_sample.setdefault(ann["sample_token"], []).append(ann)
        return by_sample

    @cached_property
    def _scenes_by_name(self) -> dict:
        return {scene["name"]: scene for scene in self._tables["scene"]}

    def _find_version(self) -> str:
        candidates = sorted(p.name for p in self.root.iterdir() if p.is_dir() and (p / "sample.json").is_file())
        if not candidates:
            raise EasyOccError(f"dataset {self.root}: no table folder (e.g. v1.0-mini/) with sample.json")
        return candidates[0]

    @property
    def scene_names(self) -> list[str]:
        return [scene["name"] for scene in self._tables["scene"]]

    def _scene(self, name: str) -> dict:
        if name in self._scenes_by_name:
            return self._scenes_by_name[name]
        raise EasyOccError(f"dataset {self.root}: no scene named '{name}'; it has {', '.join(self.scene_names)}")

    def samples(self, scene_name: str | None = None) -> list[Sample]:
        """Key frames of one scene (or of all scenes) in temporal order."""
        names = [scene_name] if scene_name else self.scene_names
        return [sample for name in names for sample in self._scene_samples(name)]

    def sample_tokens(self, scene_name: str) -> list[str]:
        tokens, token = [], self._scene(scene_name)["first_sample_token"]
        while token:
            if token not in self._by_token["sample"]:
                raise EasyOccError(f"scene {scene_name}: sample {token} is missing from sample.json")
            tokens.append(token)
            token = self._by_token["sample"][token]["next"]
        return tokens

    def _scene_samples(self, scene_name: str) -> list[Sample]:
        return [self._make_sample(token, scene_name, i) for i, token in enumerate(self.sample_tokens(scene_name))]

    def sample(self, token: str) -> Sample:
        record = self._by_token["sample"].get(token)
        if record is None:
            raise EasyOccError(f"dataset {self.root}: unknown sample token {token}")
        scene = self._by_token["scene"][record["scene_token"]]
        return self._make_sample(token, scene["name"], self.sample_tokens(scene["name"]).index(token))

    def _make_sample(self, token: str, scene_name: str, index: int) -> Sample:
        record = self._by_token["sample"][token]
        cameras = {}
        for channel in self.camera_channels:
            data = self._key_data.get((token, channel))
            if data is not None:
                cameras[channel] = self._sensor_frame(channel, data)
        lidar_data = self._key_data.get((token, LIDAR_CHANNEL))
        lidar = self._sensor_frame(LIDAR_CHANNEL, lidar_data) if lidar_data else None
        return Sample(token, int(record["timestamp"]), scene_name, index, cameras, lidar)

    @cached_property
    def camera_channels(self) -> tuple[str, ...]:
        """Camera channels present, in the nuScenes order, then any others alphabetically."""
        present = {r["channel"] for r in self._tables["sensor"] if r.get("modality") == "camera"}
        ordered = [c for c in NUSCENES_CAMERAS if c in present]
        return tuple(ordered + sorted(present - set(ordered)))

    def _sensor_frame(self, channel: str, data: dict) -> SensorFrame:
        calibrated = self._by_token["calibrated_sensor"][data["calibrated_sensor_token"]]
        pose = self._by_token["ego_pose"].get(data["ego_pose_token"])
        if pose is None:
            raise EasyOccError(f"sample_data {data['token']}: ego_pose {data['ego_pose_token']} is missing")
        return SensorFrame(
            channel=channel,
            path=self.root / data["filename"],
            timestamp_us=int(data["timestamp"]),
            global_T_ego=transform_from_nuscenes(pose),
            ego_T_sensor=transform_from_nuscenes(calibrated),
            calibrated_sensor=calibrated,
            width=int(data.get("width") or 0),
            height=int(data.get("height") or 0),
            token=data["token"],
        )

    def rig(self, sample: Sample) -> CameraRig:
        """The camera rig of a sample, cameras in `camera_channels` order, at the stored image size."""
        cameras = []
        for channel, frame in sample.cameras.items():
            width, height = frame.width, frame.height
            if not width or not height:
                width, height = _image_size(frame.path)
            cameras.append(camera_from_nuscenes(channel, frame.calibrated_sensor, width, height))
        return CameraRig(cameras)

    def boxes(self, sample: Sample) -> list[Box]:
        """3-D boxes of the sample (global frame) with category, instance and Occ3D class."""
        from easyocc.calibration import quaternion_to_matrix

        boxes = []
        instances = self._by_token["instance"]
        categories = self._by_token["category"]
        for ann in self._annotations.get(sample.token, ()):
            instance = instances.get(ann["instance_token"], {})
            category = categories.get(instance.get("category_token"), {}).get("name", "unknown")
            boxes.append(
                Box(
                    np.asarray(ann["translation"], dtype=np.float64),
                    np.asarray(ann["size"], dtype=np.float64),
                    quaternion_to_matrix(ann["rotation"]),
                    category,
                    ann["instance_token"],
                    class_from_nuscenes_category(category),
                )
            )
        return boxes

    def labels_path(self, sample: Sample, labels_root=None) -> Path:
        """Occ3D labels of a sample: <labels_root or dataset root>/gts/<scene>/<token>/labels.npz."""
        return labels_path(labels_root or self.root, sample.scene_name, sample.token)


class _LazyTables(dict):
    """table name -> rows; a table not read yet (the annotation tables) is read on first access."""

    def __init__(self, read):
        super().__init__()
        self._read = read

    def __missing__(self, name: str) -> list:
        rows = self[name] = self._read(name)
        return rows


class _TokenIndex(dict):
    """table name -> {token: row}; each table is indexed on its first lookup."""

    def __init__(self, tables: dict):
        super().__init__()
        self._tables = tables

    def __missing__(self, name: str) -> dict:
        index = self[name] = {row["token"]: row for row in self._tables[name]}
        return index


def load_dataset(root, version: str | None = None) -> NuScenesDataset:
    """A reader shared by every caller in the process (the trainer, its evaluations, the labeller):
    full trainval takes tens of seconds and GBs to load. Reloaded when a table file changes."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise EasyOccError(f"dataset folder not found: {root}")
    # table folders only (they hold sample.json): other JSON under the root (stats/ of the labels) may change freely
    tables = sorted(p for p in root.glob(f"{version or '*'}/*.json") if (p.parent / "sample.json").is_file())
    return _load_cached(root, version, tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in tables))


@lru_cache(maxsize=2)
def _load_cached(root: Path, version: str | None, _stamp: tuple) -> NuScenesDataset:
    return NuScenesDataset(root, version)


def load_lidar(path) -> np.ndarray:
    """float32 [N, 5] (x, y, z, intensity, ring) from a nuScenes .pcd.bin, in the lidar frame."""
    path = Path(path)
    if not path.is_file():
        raise EasyOccError(f"lidar file not found: {path}")
    size = path.stat().st_size
    row = 5 * np.dtype(np.float32).itemsize
    if size % row:
        raise EasyOccError(
            f"lidar file {path}: {size} bytes is not a multiple of the {row}-byte point row "
            f"(x, y, z, intensity, ring float32); the file is truncated or not a nuScenes .pcd.bin"
        )
    return np.fromfile(path, dtype=np.float32).reshape(-1, 5)


def _image_size(path: Path) -> tuple[int, int]:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise EasyOccError(f"image not readable: {path}")
    return image.shape[1], image.shape[0]


# Ground truth that the synthetic world writes beside samples/ (absent in real nuScenes):
#   depth/<CHANNEL>/<stem>.npz     key 'depth_m': float16 [H, W] camera z-depth in metres, 0 = no hit (sky)
#   semantic/<CHANNEL>/<stem>.png  uint8 [H, W] Occ3D class id, 17 (free) = sky
#   instance/<CHANNEL>/<stem>.png  uint16 [H, W] instance id, 0 = none
AUX_KINDS = {"depth": ".npz", "semantic": ".png", "instance": ".png"}


def aux_path(dataset_root, image_path, kind: str) -> Path:
    """Path of per-image ground truth of `kind` for a camera image under <root>/samples/<CHANNEL>/."""
    if kind not in AUX_KINDS:
        raise EasyOccError(f"unknown per-image ground truth '{kind}' ({', '.join(AUX_KINDS)})")
    image_path = Path(image_path)
    name = image_path.name.split(".")[0] + AUX_KINDS[kind]
    return Path(dataset_root) / kind / image_path.parent.name / name
