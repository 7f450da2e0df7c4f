"""Recordings without ROS: an MCAP file in Foxglove's standard schemas, written by the Foxglove SDK
(`foxglove-sdk`, imported here lazily; the `record` extra). Openable in Foxglove without ROS.

Topics (log time = the frame's capture stamp):
- `/cameras/<CAM>/image/compressed` foxglove.CompressedImage: each camera's JPEG/PNG as the source gave it
  (decoded images are JPEG-encoded), frame_id `<cam>` (the camera name in lower case);
- `/occupancy/points` foxglove.PointCloud in `base_link`: occupied voxel centres x, y, z (float32),
  red, green, blue, alpha (uint8: the class palette), label (uint8), confidence (float32); stride 24;
- `/occupancy/bev` foxglove.Grid in `base_link`: one cell per voxel column, red/green/blue/alpha of the
  top-down renderer (the class of the highest occupied voxel, free dark grey, unobserved black) and
  `occupancy` (int8: 0 free, 100 occupied, -1 unknown, as nav_msgs/OccupancyGrid);
- `/tf` foxglove.FrameTransforms: `world` -> `base_link` (the ego pose, when the source knows it) and
  `base_link` -> `<cam>` for every camera of the rig;
- `/easyocc/latency` JSON: seq, stamp_us, the runtime's per-stage milliseconds and the missing cameras.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from easyocc.calibration.geometry import matrix_to_quaternion
from easyocc.runtime.contract.classes import PALETTE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.sinks import Sink
from easyocc.runtime.topdown import topdown_image

EGO_FRAME, WORLD_FRAME = "base_link", "world"
LATENCY_TOPIC = "/easyocc/latency"
LATENCY_SCHEMA_NAME = "easyocc.FrameLatency"
LATENCY_SCHEMA = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer"},
        "stamp_us": {"type": "integer"},
        "stages_ms": {"type": "object", "additionalProperties": {"type": "number"}},
        "missing_cameras": {"type": "array", "items": {"type": "string"}},
    },
}
# The cloud's bytes per point: x y z float32, r g b a uint8, label uint8 (+3 padding), confidence float32.
CLOUD_DTYPE = np.dtype(
    {
        "names": ["x", "y", "z", "rgba", "label", "confidence"],
        "formats": ["<f4", "<f4", "<f4", ("u1", 4), "u1", "<f4"],
        "offsets": [0, 4, 8, 12, 16, 20],
        "itemsize": 24,
    }
)


def import_foxglove():
    """The foxglove module, or EasyOccError saying how to get it."""
    try:
        import foxglove
    except ImportError:
        raise EasyOccError("recording MCAP needs foxglove-sdk: pip install 'easyocc[record]'") from None
    return foxglove


def camera_frame(name: str) -> str:
    """TF frame of a camera's images in the recording."""
    return name.lower()


class McapSink(Sink):
    """Writes every result (and its camera images) into one MCAP file; see the module docstring."""

    def __init__(self, path, rig=None, overwrite: bool = True):
        foxglove = import_foxglove()
        from foxglove import channels

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fg = foxglove
        self._messages = foxglove.messages
        self._context = foxglove.Context()  # its own: channels of other recordings never mix in
        self._writer = foxglove.open_mcap(self.path, allow_overwrite=overwrite, context=self._context)
        self._rig = rig
        self._cameras: dict = {}
        self._cloud = channels.PointCloudChannel("/occupancy/points", context=self._context)
        self._bev = channels.GridChannel("/occupancy/bev", context=self._context)
        self._tf = channels.FrameTransformsChannel("/tf", context=self._context)
        schema = foxglove.Schema(
            name=LATENCY_SCHEMA_NAME, encoding="jsonschema", data=json.dumps(LATENCY_SCHEMA).encode()
        )
        self._latency = foxglove.Channel(LATENCY_TOPIC, schema=schema, message_encoding="json", context=self._context)
        self.count = 0

    def _camera_channel(self, name: str):
        if name not in self._cameras:
            from foxglove.channels import CompressedImageChannel

            self._cameras[name] = CompressedImageChannel(f"/cameras/{name}/image/compressed", context=self._context)
        return self._cameras[name]

    def _time(self, stamp_us: int):
        return self._messages.Timestamp(int(stamp_us) // 1_000_000, (int(stamp_us) % 1_000_000) * 1000)

    def write(self, result) -> None:
        log_time = int(result.stamp_us) * 1000
        stamp = self._time(result.stamp_us)
        for name, image in sorted(result.images.items()):
            data, fmt = _encoded(image)
            msg = self._messages.CompressedImage(timestamp=stamp, frame_id=camera_frame(name), data=data, format=fmt)
            self._camera_channel(name).log(msg, log_time=log_time)
        self._cloud.log(self._cloud_msg(result, stamp), log_time=log_time)
        self._bev.log(self._grid_msg(result, stamp), log_time=log_time)
        self._tf.log(self._transforms(result, stamp), log_time=log_time)
        self._latency.log(
            {
                "seq": int(result.seq),
                "stamp_us": int(result.stamp_us),
                "stages_ms": {k: round(float(v), 3) for k, v in result.timing.items()},
                "missing_cameras": list(result.missing_cameras),
            },
            log_time=log_time,
        )
        self.count += 1

    def _cloud_msg(self, result, stamp):
        m = self._messages
        voxels = result.voxels
        points = np.zeros(len(voxels), CLOUD_DTYPE)
        points["x"], points["y"], points["z"] = voxels.xyz_ego[:, 0], voxels.xyz_ego[:, 1], voxels.xyz_ego[:, 2]
        points["rgba"][:, :3] = PALETTE[voxels.labels]
        points["rgba"][:, 3] = 255
        points["label"], points["confidence"] = voxels.labels, voxels.confidence
        fields = _packed_fields(
            m,
            ("x", 0, "Float32"),
            ("y", 4, "Float32"),
            ("z", 8, "Float32"),
            ("red", 12, "Uint8"),
            ("green", 13, "Uint8"),
            ("blue", 14, "Uint8"),
            ("alpha", 15, "Uint8"),
            ("label", 16, "Uint8"),
            ("confidence", 20, "Float32"),
        )
        return m.PointCloud(
            timestamp=stamp,
            frame_id=EGO_FRAME,
            pose=_pose(np.eye(4)),
            point_stride=CLOUD_DTYPE.itemsize,
            fields=fields,
            data=points.tobytes(),
        )

    def _grid_msg(self, result, stamp):
        m = self._messages
        grid = result.grid
        size_x, size_y, _ = grid.shape
        colours = topdown_image(result.semantics, result.observed, scale=1)[::-1, ::-1]  # back to [X, Y, 3]
        cells = np.zeros((size_y, size_x, 5), np.uint8)  # row = y index, column = x index, as the BEV
        cells[:, :, :3] = colours.transpose(1, 0, 2)
        cells[:, :, 3] = 255
        cells[:, :, 4] = result.bev.view(np.uint8)
        fields = _packed_fields(
            m,
            ("red", 0, "Uint8"),
            ("green", 1, "Uint8"),
            ("blue", 2, "Uint8"),
            ("alpha", 3, "Uint8"),
            ("occupancy", 4, "Int8"),
        )
        corner = np.eye(4)
        corner[:3, 3] = (grid.lower[0], grid.lower[1], 0.0)
        return m.Grid(
            timestamp=stamp,
            frame_id=EGO_FRAME,
            pose=_pose(corner),
            column_count=size_x,
            cell_size=m.Vector2(x=float(grid.voxel_size), y=float(grid.voxel_size)),
            row_stride=size_x * 5,
            cell_stride=5,
            fields=fields,
            data=cells.tobytes(),
        )

    def _transforms(self, result, stamp):
        m = self._messages
        pairs = []
        world_T_ego = result.meta.get("global_T_ego")
        if world_T_ego is not None:
            pairs.append((WORLD_FRAME, EGO_FRAME, np.asarray(world_T_ego, np.float64)))
        for camera in self._rig or ():
            pairs.append((EGO_FRAME, camera_frame(camera.name), camera.ego_T_cam))
        return m.FrameTransforms(
            transforms=[
                m.FrameTransform(
                    timestamp=stamp,
                    parent_frame_id=parent,
                    child_frame_id=child,
                    translation=_vector(transform[:3, 3]),
                    rotation=_quaternion(transform[:3, :3]),
                )
                for parent, child, transform in pairs
            ]
        )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _encoded(image) -> tuple[bytes, str]:
    """(bytes, 'jpeg' | 'png') of a CameraImage: its own encoding, or the decoded image as JPEG."""
    if image.data is not None:
        data = bytes(image.data)
        return data, "png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "jpeg"
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise EasyOccError(f"camera {image.camera}: could not encode its image as JPEG for the recording")
    return encoded.tobytes(), "jpeg"


def _vector(values):
    from foxglove.messages import Vector3

    x, y, z = (float(v) for v in values)
    return Vector3(x=x, y=y, z=z)


def _quaternion(rotation):
    from foxglove.messages import Quaternion

    w, x, y, z = (float(v) for v in matrix_to_quaternion(rotation))
    return Quaternion(x=x, y=y, z=z, w=w)


def _pose(transform):
    from foxglove.messages import Pose

    return Pose(position=_vector(transform[:3, 3]), orientation=_quaternion(transform[:3, :3]))


def _packed_fields(messages, *layout: tuple[str, int, str]) -> list:
    """Foxglove PackedElementField list from (name, byte offset, numeric type name) rows."""
    kind = messages.PackedElementFieldNumericType
    return [
        messages.PackedElementField(name=name, offset=offset, type=getattr(kind, type_name))
        for name, offset, type_name in layout
    ]
