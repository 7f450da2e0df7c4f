"""Message conversions: PointCloud2, OccupancyGrid, the dense grid Image, markers, images and stamps."""

from __future__ import annotations

import array
import json

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="the ROS 2 wheels are not installed")

from easyocc.ros_node import conversions  # noqa: E402
from easyocc.ros_node.images import (  # noqa: E402
    UNSUPPORTED_ENCODING,
    camera_image_from_compressed,
    camera_image_from_raw,
    encoded_to_compressed_msg,
    raw_to_rgb,
    rgb_to_raw_msg,
    set_array_field,
    stamp_to_us,
    us_to_stamp,
)
from easyocc.runtime.contract.classes import FREE, PALETTE  # noqa: E402
from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from easyocc.runtime.contract.frames import CORRUPT_IMAGE, IMAGE_SIZE, FrameError  # noqa: E402
from easyocc.runtime.contract.grid import GridSpec  # noqa: E402
from easyocc.runtime.postprocess import bev_occupancy, occupied_voxels  # noqa: E402

GRID = GridSpec((-4.0, -2.0, -1.0), (4.0, 2.0, 1.4), 0.4)  # 20 x 10 x 6: every axis differs


@pytest.fixture()
def semantics():
    rng = np.random.default_rng(0)
    sem = np.full(GRID.shape, FREE, np.uint8)
    mask = rng.random(GRID.shape) < 0.2
    sem[mask] = rng.integers(0, FREE, mask.sum())
    return sem, rng.random(GRID.shape).astype(np.float32)


def test_stamp_round_trip():
    stamp = us_to_stamp(1_533_151_603_512_404)
    assert (stamp.sec, stamp.nanosec) == (1_533_151_603, 512_404_000)
    assert stamp_to_us(stamp) == 1_533_151_603_512_404


def test_point_cloud_round_trip_is_exact(semantics):
    sem, conf = semantics
    voxels = occupied_voxels(sem, conf, GRID)
    msg = conversions.cloud_msg(voxels.xyz_ego, voxels.labels, voxels.confidence, conversions.make_header(5, "ego"))
    assert [f.name for f in msg.fields] == ["x", "y", "z", "label", "confidence", "rgb"]
    assert [f.datatype for f in msg.fields] == [7, 7, 7, 2, 7, 7]  # float32 x3, uint8, float32, rgb as float32
    assert msg.point_step == 24 and msg.width == len(voxels) and len(msg.data) == 24 * len(voxels)
    xyz, labels, confidence = conversions.cloud_to_arrays(msg)
    np.testing.assert_array_equal(labels, voxels.labels)
    np.testing.assert_array_equal(xyz, voxels.xyz_ego)
    np.testing.assert_array_equal(confidence, voxels.confidence)


def test_point_cloud_padding_is_zero_and_the_buffer_is_not_copied(semantics):
    sem, conf = semantics
    voxels = occupied_voxels(sem, conf, GRID)
    msg = conversions.cloud_msg(voxels.xyz_ego, voxels.labels, voxels.confidence, conversions.make_header(5, "ego"))
    raw = np.frombuffer(msg.data, np.uint8).reshape(len(voxels), 24)
    assert not raw[:, 13:16].any()  # the 3 bytes between label and confidence
    values = array.array("B", b"abc")
    set_array_field(msg, "data", values)
    assert msg.data is values  # stored as given (Jazzy's setter would copy it)
    assert bytes(msg.data) == b"abc"


def test_point_cloud_rgb_is_the_palette_packed_as_rviz_reads_it(semantics):
    sem, conf = semantics
    voxels = occupied_voxels(sem, conf, GRID)
    msg = conversions.cloud_msg(voxels.xyz_ego, voxels.labels, voxels.confidence, conversions.make_header(5, "ego"))
    rgb = conversions.cloud_rgb(msg)
    # RViz's RGB8 transformer: the float32 field's bytes as uint32, red = bits 16-23, green 8-15, blue 0-7
    unpacked = np.stack([(rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255], axis=1)
    np.testing.assert_array_equal(unpacked, PALETTE[voxels.labels])
    assert not (rgb >> 24).any()
    car = int(np.flatnonzero(voxels.labels == 4)[0])  # car (0, 150, 245) -> 0x0096F5
    assert rgb[car] == 0x0096F5
    raw = np.frombuffer(msg.data, np.uint8).reshape(len(voxels), 24)
    assert bytes(raw[car, 20:24]) == bytes([0xF5, 0x96, 0x00, 0x00])  # little-endian float32 bytes
    msg.fields = [f for f in msg.fields if f.name != "rgb"]
    with pytest.raises(EasyOccError, match="field 'rgb' is missing"):
        conversions.cloud_rgb(msg)


def test_point_cloud_rejects_mismatched_arrays():
    with pytest.raises(EasyOccError, match="disagree"):
        conversions.cloud_msg(
            np.zeros((3, 3), np.float32),
            np.zeros(2, np.uint8),
            np.zeros(3, np.float32),
            conversions.make_header(0, "ego"),
        )


def test_occupancy_grid_geometry_and_cells(semantics):
    sem, _ = semantics
    bev = bev_occupancy(sem, GRID)
    msg = conversions.bev_msg(bev, GRID, conversions.make_header(7, "ego"))
    assert (msg.info.width, msg.info.height) == (20, 10)  # width = X cells, height = Y cells
    assert msg.info.resolution == pytest.approx(0.4)
    assert (msg.info.origin.position.x, msg.info.origin.position.y) == (-4.0, -2.0)
    assert set(np.unique(conversions.bev_from_msg(msg))) <= {0, 100, -1}
    np.testing.assert_array_equal(conversions.bev_from_msg(msg), bev)


def test_dense_grid_montage_layout(semantics):
    sem, _ = semantics
    msg = conversions.dense_grid_msg(sem, GRID, conversions.make_header(9, "ego"))
    assert (msg.width, msg.height, msg.encoding, msg.step) == (20, 6 * 10, "mono8", 20)
    image = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width)
    # pixel (k*Y + j, i) is voxel (i, j, k): each block of Y rows is one height layer seen from above
    assert image[3 * 10 + 7, 12] == sem[12, 7, 3]
    np.testing.assert_array_equal(conversions.dense_grid_from_msg(msg, GRID), sem)
    info = conversions.grid_info_json(GRID, "ego")
    assert conversions.grid_from_info(info) == GRID
    with pytest.raises(EasyOccError, match="does not match grid"):
        conversions.dense_grid_from_msg(msg, GridSpec())


def test_dense_grid_marks_unobserved_voxels_and_the_colour_grid_matches(semantics):
    sem, _ = semantics
    observed = np.zeros(GRID.shape, bool)
    observed[:12] = True  # the first 12 x slices seen by some camera
    header = conversions.make_header(9, "ego")
    dense = conversions.dense_grid_from_msg(conversions.dense_grid_msg(sem, GRID, header, observed), GRID)
    np.testing.assert_array_equal(dense[:12], sem[:12])
    assert (dense[12:] == conversions.UNOBSERVED).all()
    colour = conversions.colour_grid_msg(sem, GRID, header, observed)
    assert (colour.width, colour.height, colour.encoding, colour.step) == (20, 60, "rgb8", 60)
    pixels = np.frombuffer(colour.data, np.uint8).reshape(60, 20, 3)
    montage = np.where(observed, sem, 255).transpose(2, 1, 0).reshape(60, 20)
    np.testing.assert_array_equal(pixels, conversions.GRID_COLOURS[montage])
    k, j, i = 2, 4, 3  # an observed voxel keeps its class colour, an unobserved one is black
    assert tuple(pixels[k * 10 + j, i]) == tuple(conversions.GRID_COLOURS[sem[i, j, k]])
    assert tuple(pixels[k * 10 + j, 15]) == (0, 0, 0)
    info = json.loads(conversions.grid_info_json(GRID, "ego"))
    assert info["unobserved_value"] == 255 and info["free_class"] == FREE
    with pytest.raises(EasyOccError, match="observed mask has shape"):
        conversions.dense_grid_msg(sem, GRID, header, observed[:5])


def test_bev_in_another_frame_carries_the_transform_in_its_origin(semantics):
    from easyocc.ros_node.rig_source import transform_from_tf

    sem, _ = semantics
    bev = bev_occupancy(sem, GRID)
    yaw = np.pi / 2  # the vehicle faces +y of odom, 10 m east and 5 m north of its origin
    odom_T_ego = transform_from_tf([10.0, 5.0, 0.0], [0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])
    msg = conversions.bev_msg(bev, GRID, conversions.make_header(7, "odom"), z_m=-0.2, target_T_ego=odom_T_ego)
    # the grid's lower corner (-4, -2) in ego is (10 + 2, 5 - 4) in odom
    origin = msg.info.origin
    assert (origin.position.x, origin.position.y, origin.position.z) == pytest.approx((12.0, 1.0, -0.2))
    assert (origin.orientation.z, origin.orientation.w) == pytest.approx((np.sin(yaw / 2), np.cos(yaw / 2)))
    np.testing.assert_array_equal(conversions.bev_from_msg(msg), bev)
    with pytest.raises(EasyOccError, match="finite 4x4"):
        conversions.bev_msg(bev, GRID, conversions.make_header(7, "odom"), target_T_ego=np.eye(3))


def test_markers_one_cube_list_per_class(semantics):
    sem, conf = semantics
    voxels = occupied_voxels(sem, conf, GRID)
    msg = conversions.markers_msg(voxels.xyz_ego, voxels.labels, GRID, conversions.make_header(1, "ego"))
    assert msg.markers[0].action == 3  # DELETEALL first
    cubes = msg.markers[1:]
    assert {m.id for m in cubes} == set(np.unique(voxels.labels).tolist())
    assert all(m.type == 6 and m.scale.x == pytest.approx(0.4) for m in cubes)  # CUBE_LIST
    assert sum(len(m.points) for m in cubes) == len(voxels)


@pytest.mark.parametrize("frame_id", ["ego", "a_much_longer_frame_name"])  # other string lengths, other padding
def test_marker_bytes_deserialise_to_the_python_built_markers(semantics, frame_id):
    from rclpy.serialization import deserialize_message, serialize_message
    from visualization_msgs.msg import MarkerArray

    sem, conf = semantics
    voxels = occupied_voxels(sem, conf, GRID)
    header = conversions.make_header(1, frame_id)
    data = conversions.markers_bytes(voxels.xyz_ego, voxels.labels, GRID, header)
    assert isinstance(data, bytes)
    expected = conversions.markers_msg(voxels.xyz_ego, voxels.labels, GRID, header)
    decoded = deserialize_message(data, MarkerArray)
    # through rclpy's own serialiser (float32 colours rounded the same way): every field, every point in order
    assert decoded == deserialize_message(serialize_message(expected), MarkerArray)
    assert sum(len(m.points) for m in decoded.markers) == len(voxels)
    empty = deserialize_message(
        conversions.markers_bytes(voxels.xyz_ego[:0], voxels.labels[:0], GRID, header), MarkerArray
    )
    assert len(empty.markers) == 1 and empty.markers[0].action == 3  # only the DELETEALL


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_raw_image_round_trip(encoding):
    rgb = np.random.default_rng(1).integers(0, 255, (9, 16, 3), dtype=np.uint8)
    msg = rgb_to_raw_msg(rgb, 123, "cam", encoding)
    image = camera_image_from_raw(msg, "CAM", (16, 9))
    assert image.stamp_us == 123
    np.testing.assert_array_equal(image.image, rgb)


def test_raw_image_with_row_padding_and_alpha():
    rgba = np.random.default_rng(2).integers(0, 255, (4, 5, 4), dtype=np.uint8)
    msg = rgb_to_raw_msg(rgba[:, :, :3], 0, "cam")
    msg.encoding, msg.step = "rgba8", 24  # 5 * 4 bytes + 4 bytes padding per row
    padded = np.zeros((4, 24), np.uint8)
    padded[:, :20] = rgba.reshape(4, 20)
    msg.data = padded.tobytes()
    np.testing.assert_array_equal(raw_to_rgb(msg, "CAM"), rgba[:, :, :3])


def test_raw_image_errors_name_reason_and_camera():
    msg = rgb_to_raw_msg(np.zeros((9, 16, 3), np.uint8), 0, "cam")
    with pytest.raises(FrameError, match="CAM_X: image is 16x9, the rig expects 32x18") as info:
        raw_to_rgb(msg, "CAM_X", (32, 18))
    assert info.value.reason == IMAGE_SIZE
    msg.encoding = "yuv422"
    with pytest.raises(FrameError, match="encoding 'yuv422' is not supported") as info:
        raw_to_rgb(msg, "CAM_X")
    assert info.value.reason == UNSUPPORTED_ENCODING
    msg.encoding, msg.data = "rgb8", bytes(10)
    with pytest.raises(FrameError, match="10 bytes") as info:
        raw_to_rgb(msg, "CAM_X")
    assert info.value.reason == CORRUPT_IMAGE


def test_compressed_image_keeps_bytes():
    msg = encoded_to_compressed_msg(b"\xff\xd8abc", 42, "cam")
    image = camera_image_from_compressed(msg, "CAM")
    assert image.data == b"\xff\xd8abc" and image.stamp_us == 42
    msg.format = "theora"
    with pytest.raises(FrameError, match="not JPEG or PNG"):
        camera_image_from_compressed(msg, "CAM")
