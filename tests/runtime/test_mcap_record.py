"""`easyocc stream --record run.mcap`: read back with the `mcap` reader, protobuf decoded from the
file's own schemas: schemas, topics, message counts, one decoded cloud, grid and transforms."""

from __future__ import annotations

import json

import numpy as np
import pytest
from easyocc.calibration import save_rig

from easyocc.cli import main as easyocc
from tests.runtime.stream_fixtures import (
    TINY_GRID,
    encode_jpeg,
    rig,  # noqa: F401  (pytest fixture)
    tiny_model,  # noqa: F401  (pytest fixture)
)

pytest.importorskip("foxglove", reason="foxglove-sdk (the record extra) is not installed")
mcap_reader = pytest.importorskip("mcap.reader", reason="mcap (the record extra) is not installed")


def _decoder(schema):
    """Message class of a protobuf schema, built from the FileDescriptorSet stored in the file."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    for proto in descriptor_pb2.FileDescriptorSet.FromString(schema.data).file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(schema.name))


def _read(path):
    with open(path, "rb") as handle:
        reader = mcap_reader.make_reader(handle)
        summary = reader.get_summary()
        messages = [(channel.topic, schema, message) for schema, channel, message in reader.iter_messages()]
    return summary, messages


def test_stream_record_writes_foxglove_mcap(tmp_path, rig, tiny_model):  # noqa: F811
    from easyocc.runtime.contract.classes import PALETTE
    from easyocc.runtime.postprocess import occupied_voxels

    rng = np.random.default_rng(0)
    for camera in rig:
        (tmp_path / "images" / camera.name).mkdir(parents=True)
        for i in range(3):
            image = rng.integers(0, 255, (camera.height, camera.width, 3), dtype=np.uint8)
            (tmp_path / "images" / camera.name / f"{1_000_000 + 100_000 * i}.jpg").write_bytes(encode_jpeg(image))
    save_rig(rig, tmp_path / "rig.yaml")
    out, record = tmp_path / "out", tmp_path / "run.mcap"
    args = ["stream", "--model", str(tiny_model), "--images", str(tmp_path / "images"), "--rig"]
    code = easyocc([*args, str(tmp_path / "rig.yaml"), "--out", str(out), "--record", str(record)])
    assert code == 0

    summary, messages = _read(record)
    schemas = {s.name: s.encoding for s in summary.schemas.values()}
    assert schemas == {
        "foxglove.CompressedImage": "protobuf",
        "foxglove.PointCloud": "protobuf",
        "foxglove.Grid": "protobuf",
        "foxglove.FrameTransforms": "protobuf",
        "easyocc.FrameLatency": "jsonschema",
    }
    counts = {summary.channels[i].topic: n for i, n in summary.statistics.channel_message_counts.items()}
    cameras = {f"/cameras/{name}/image/compressed": 3 for name in rig.names}
    assert counts == {**cameras, "/occupancy/points": 3, "/occupancy/bev": 3, "/tf": 3, "/easyocc/latency": 3}

    # the second frame's cloud, decoded, is the frame's occupied voxels coloured by the palette
    saved = np.load(out / "frames" / "000001.npz")
    clouds = [(s, m) for topic, s, m in messages if topic == "/occupancy/points"]
    schema, message = clouds[1]
    cloud = _decoder(schema).FromString(message.data)
    assert cloud.frame_id == "base_link" and cloud.point_stride == 24
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "red", "green", "blue", "alpha", "label", "confidence"]
    assert cloud.timestamp.seconds * 1_000_000 + cloud.timestamp.nanos // 1000 == int(saved["stamp_us"])
    grid = TINY_GRID
    expected = occupied_voxels(saved["semantics"], saved["confidence"].astype(np.float32), grid)
    dtype = np.dtype(
        {
            "names": ["xyz", "rgba", "label"],
            "formats": [("<f4", 3), ("u1", 4), "u1"],
            "offsets": [0, 12, 16],
            "itemsize": 24,
        }
    )
    points = np.frombuffer(cloud.data, dtype)
    assert len(points) == len(expected) > 0
    np.testing.assert_array_equal(points["label"], expected.labels)
    np.testing.assert_array_equal(points["xyz"], expected.xyz_ego)
    np.testing.assert_array_equal(points["rgba"][:, :3], PALETTE[expected.labels])
    assert (points["rgba"][:, 3] == 255).all()

    # the BEV grid carries the runtime's OccupancyGrid cells, row = y index, column = x index
    schema, message = [(s, m) for topic, s, m in messages if topic == "/occupancy/bev"][1]
    bev = _decoder(schema).FromString(message.data)
    size_x, size_y, _ = grid.shape
    assert bev.column_count == size_x and bev.cell_stride == 5 and bev.row_stride == 5 * size_x
    cells = np.frombuffer(bev.data, np.uint8).reshape(size_y, size_x, 5)
    np.testing.assert_array_equal(cells[:, :, 4].view(np.int8), saved["bev"])
    assert (bev.pose.position.x, bev.pose.position.y) == pytest.approx(tuple(grid.lower[:2]))

    # transforms: base_link -> each camera of the rig; the images are the files, unchanged
    schema, message = [(s, m) for topic, s, m in messages if topic == "/tf"][0]
    transforms = _decoder(schema).FromString(message.data).transforms
    assert {(t.parent_frame_id, t.child_frame_id) for t in transforms} == {
        ("base_link", name.lower()) for name in rig.names
    }
    front = next(t for t in transforms if t.child_frame_id == rig.names[0].lower())
    np.testing.assert_allclose(
        [front.translation.x, front.translation.y, front.translation.z], rig[rig.names[0]].ego_T_cam[:3, 3]
    )
    schema, message = [(s, m) for topic, s, m in messages if topic.startswith("/cameras/")][0]
    image = _decoder(schema).FromString(message.data)
    assert image.format == "jpeg" and image.data[:2] == b"\xff\xd8"
    latency = [json.loads(m.data) for topic, _, m in messages if topic == "/easyocc/latency"]
    assert [row["seq"] for row in latency] == [0, 1, 2] and latency[0]["stages_ms"]["infer"] > 0


def test_record_without_foxglove_sdk_is_one_line():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['foxglove'] = None\n"  # as if foxglove-sdk were not installed
        "from easyocc.runtime.mcap_sink import McapSink\n"
        "try:\n    McapSink('x.mcap')\nexcept Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "EasyOccError recording MCAP needs foxglove-sdk: pip install 'easyocc[record]'"
