"""Write a synthetic dataset in the nuScenes layout with Occ3D labels and per-image ground truth.

<out>/v1.0-synth/*.json, <out>/samples/<CHANNEL>/..., <out>/sweeps/<CHANNEL>/... (12 Hz camera
images that are not key frames), <out>/{depth,semantic,instance}/<CHANNEL>/..., <out>/gts/<scene>/<token>/labels.npz.
Each finished scene leaves <out>/.synth/<scene>.json with its table rows, so an interrupted run resumes
with the next scene; the tables are merged when every scene is done.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import cv2
import numpy as np
from easyocc.calibration.geometry import matrix_to_quaternion
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import write_bytes_atomic, write_json_atomic
from easyocc.runtime.dataset.labels import labels_path, write_labels
from easyocc.runtime.dataset.nuscenes import LIDAR_CHANNEL, aux_path
from easyocc.training.synth.config import SynthConfig
from easyocc.training.synth.synthetic import LIDAR_CALIBRATION, SyntheticWorld

VERSION = "v1.0-synth"
TABLES = (
    "scene",
    "sample",
    "sample_data",
    "ego_pose",
    "calibrated_sensor",
    "sensor",
    "sample_annotation",
    "instance",
    "category",
)
CONFIG_FILE = "synth_config.json"
DONE_DIR = ".synth"


def scene_name(index: int) -> str:
    return f"synth-{index:04d}"


def token(*parts) -> str:
    """Deterministic 32-hex token from its parts."""
    return hashlib.md5("/".join(str(p) for p in parts).encode()).hexdigest()


def _pose_record(tok: str, timestamp: int, pose: np.ndarray) -> dict:
    return {
        "token": tok,
        "timestamp": int(timestamp),
        "rotation": _quat(pose[:3, :3]),
        "translation": _vec(pose[:3, 3]),
    }


def _quat(rotation) -> list[float]:
    return [round(float(v), 12) for v in matrix_to_quaternion(rotation)]


def _vec(values) -> list[float]:
    return [round(float(v), 9) for v in values]


def _encode(ext: str, image: np.ndarray, params=()) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    if not ok:
        raise EasyOccError(f"could not encode a {ext} image")
    return data.tobytes()


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def check_output_dir(out_dir) -> Path:
    """Create `out_dir` if needed and make sure it is a writable folder; raise naming it otherwise."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EasyOccError(f"output {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EasyOccError(f"cannot create output folder {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise EasyOccError(f"output folder {out} is not writable")
    return out


def generate_dataset(
    out_dir, config: SynthConfig | None = None, progress: bool = True, threads: int | None = None
) -> Path:
    """Write `config.scenes` scenes into out_dir (resuming finished scenes); returns the dataset root.

    threads: rendering threads per key frame (default one per core); the files do not depend on it.

    Raises EasyOccError for an unwritable folder or one holding a dataset made with other settings.
    """
    config = config or SynthConfig()
    out = check_output_dir(out_dir)
    config_path = out / CONFIG_FILE
    if config_path.is_file():
        previous = json.loads(config_path.read_text())
        if previous != config.to_dict():
            changed = sorted(
                k for k in set(previous) | set(config.to_dict()) if previous.get(k) != config.to_dict().get(k)
            )
            raise EasyOccError(
                f"{out} holds a synthetic dataset made with other settings ({', '.join(changed)}); use an empty folder"
            )
    else:
        write_json_atomic(config_path, config.to_dict())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.scenes * config.frames, desc="synth", unit="key frame")
    for index in range(config.scenes):
        done = out / DONE_DIR / f"{scene_name(index)}.json"
        if not done.is_file():
            rows = write_scene(out, config, index, bar, threads)
            write_json_atomic(done, rows)
        elif bar is not None:
            bar.update(config.frames)
    if bar is not None:
        bar.close()
    tables = {name: [] for name in TABLES}
    for index in range(config.scenes):
        rows = json.loads((out / DONE_DIR / f"{scene_name(index)}.json").read_text())
        for name in TABLES:
            tables[name] += rows.get(name, [])
    for name in ("sensor", "category"):  # shared by all scenes
        unique = {row["token"]: row for row in tables[name]}
        tables[name] = sorted(unique.values(), key=lambda r: r["token"])
    for name in TABLES:
        write_json_atomic(out / VERSION / f"{name}.json", tables[name])
    return out


def write_scene(out: Path, config: SynthConfig, index: int, bar=None, threads: int | None = None) -> dict:
    """Render and write one scene; return its table rows."""
    world = SyntheticWorld(config, index, threads=threads)
    name = scene_name(index)
    seed = config.seed
    rows = {table: [] for table in TABLES}
    scene_tok = token(seed, name)
    channels = list(world.rig.names) + [LIDAR_CHANNEL]
    calib = {}
    for channel in channels:
        sensor_tok = token("sensor", channel)
        rows["sensor"].append(
            {"token": sensor_tok, "channel": channel, "modality": "lidar" if channel == LIDAR_CHANNEL else "camera"}
        )
        calib[channel] = token(seed, name, "calib", channel)
        if channel == LIDAR_CHANNEL:
            record = dict(LIDAR_CALIBRATION, camera_intrinsic=[])
        else:
            camera = world.rig[channel]
            record = {"translation": _vec(camera.ego_T_cam[:3, 3]), "rotation": _quat(camera.ego_T_cam[:3, :3]),
                      "camera_intrinsic": [[round(float(v), 9) for v in row] for row in camera.K]}  # fmt: skip
        rows["calibrated_sensor"].append({"token": calib[channel], "sensor_token": sensor_tok, **record})
    sample_toks = [token(seed, name, "sample", k) for k in range(config.frames)]
    last_data = dict.fromkeys(channels, "")
    instances: dict[int, dict] = {}
    last_ann: dict[int, str] = {}
    by_token: dict[str, dict] = {}  # sample_data, sample_annotation and category rows by token
    per_key = config.camera_frames_per_key
    for k in range(config.frames):
        key = world.key_frame(k)
        sample_tok = sample_toks[k]
        rows["sample"].append({"token": sample_tok, "timestamp": key.timestamp_us, "prev": sample_toks[k - 1] if k else "",
                               "next": sample_toks[k + 1] if k + 1 < config.frames else "", "scene_token": scene_tok})  # fmt: skip
        frames = [key.frame] + [world.render_frame(k * per_key + j) for j in range(1, per_key) if k + 1 < config.frames]
        for frame in frames:
            for channel, render_ in frame.cameras.items():
                stamp = frame.timestamp_us[channel]
                folder = "samples" if frame.is_key_frame else "sweeps"
                filename = f"{folder}/{channel}/{name}__{channel}__{stamp}.jpg"
                rgb_bgr = cv2.cvtColor(render_.rgb, cv2.COLOR_RGB2BGR)
                write_bytes_atomic(
                    out / filename, _encode(".jpg", rgb_bgr, (cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality))
                )
                if config.write_aux and frame.is_key_frame:
                    write_bytes_atomic(
                        aux_path(out, out / filename, "depth"), _npz_bytes(depth_m=render_.depth_m.astype(np.float16))
                    )
                    write_bytes_atomic(aux_path(out, out / filename, "semantic"), _encode(".png", render_.semantic))
                    write_bytes_atomic(aux_path(out, out / filename, "instance"), _encode(".png", render_.instance))
                data_tok = token(seed, name, channel, stamp)
                _add_data(rows, by_token, last_data, channel, data_tok, sample_tok, calib[channel], stamp, frame.global_T_ego[channel],
                          filename, "jpg", frame.is_key_frame, world.rig[channel].width, world.rig[channel].height)  # fmt: skip
        filename = f"samples/{LIDAR_CHANNEL}/{name}__{LIDAR_CHANNEL}__{key.timestamp_us}.pcd.bin"
        write_bytes_atomic(out / filename, key.lidar.points.astype(np.float32).tobytes())
        _add_data(rows, by_token, last_data, LIDAR_CHANNEL, token(seed, name, LIDAR_CHANNEL, key.timestamp_us), sample_tok,
                  calib[LIDAR_CHANNEL], key.timestamp_us, key.global_T_ego, filename, "pcd", True, 0, 0)  # fmt: skip
        write_labels(labels_path(out, name, sample_tok), key.labels)
        for box in key.boxes:
            inst_id = box["instance_id"]
            inst_tok = token(seed, name, "instance", inst_id)
            ann_tok = token(seed, name, "ann", inst_id, k)
            cat_tok = token("category", box["category"])
            if cat_tok not in by_token:
                by_token[cat_tok] = {"token": cat_tok, "name": box["category"], "description": ""}
                rows["category"].append(by_token[cat_tok])
            if inst_id not in instances:
                instances[inst_id] = {"token": inst_tok, "category_token": cat_tok, "nbr_annotations": 0,
                                      "first_annotation_token": ann_tok, "last_annotation_token": ann_tok}  # fmt: skip
                rows["instance"].append(instances[inst_id])
            instance = instances[inst_id]
            instance["nbr_annotations"] += 1
            instance["last_annotation_token"] = ann_tok
            prev = last_ann.get(inst_id, "")
            if prev:
                by_token[prev]["next"] = ann_tok
            rows["sample_annotation"].append(
                {"token": ann_tok, "sample_token": sample_tok, "instance_token": inst_tok, "visibility_token": "4",
                 "attribute_tokens": [], "translation": _vec(box["centre"]), "size": _vec(box["size_wlh"]),
                 "rotation": _quat(box["rotation"]), "velocity": _vec(box["velocity"]), "prev": prev, "next": "",
                 "num_lidar_pts": 0, "num_radar_pts": 0}
            )  # fmt: skip
            by_token[ann_tok] = rows["sample_annotation"][-1]
            last_ann[inst_id] = ann_tok
        if bar is not None:
            bar.update(1)
    rows["scene"].append({"token": scene_tok, "log_token": token(seed, name, "log"), "nbr_samples": config.frames,
                          "first_sample_token": sample_toks[0], "last_sample_token": sample_toks[-1], "name": name,
                          "description": f"synthetic world, seed {seed}, scene {index}"})  # fmt: skip
    return rows


def _add_data(
    rows, by_token, last, channel, tok, sample_tok, calib_tok, stamp, pose, filename, fmt, key, width, height
):
    pose_tok = tok
    rows["ego_pose"].append(_pose_record(pose_tok, stamp, pose))
    prev = last[channel]
    if prev:
        by_token[prev]["next"] = tok
    rows["sample_data"].append(
        {"token": tok, "sample_token": sample_tok, "ego_pose_token": pose_tok, "calibrated_sensor_token": calib_tok,
         "timestamp": int(stamp), "fileformat": fmt, "is_key_frame": bool(key), "height": int(height),
         "width": int(width), "filename": filename, "prev": prev, "next": ""}
    )  # fmt: skip
    by_token[tok] = rows["sample_data"][-1]
    last[channel] = tok
