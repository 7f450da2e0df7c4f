"""Camera validation, projection, unprojection, distortion and resize/crop of intrinsics."""

import cv2
import numpy as np
import pytest
from easyocc.calibration import Camera, CameraRig, EasyOccError, default_rig, make_transform, quaternion_to_matrix

K = [[800.0, 0.0, 320.0], [0.0, 800.0, 240.0], [0.0, 0.0, 1.0]]
# Camera looking forward along ego x: camera z = ego x, camera x = -ego y, camera y = -ego z.
FORWARD = make_transform([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], [1.5, 0.0, 1.6])


def make_camera(**overrides):
    fields = dict(name="CAM_TEST", K=K, width=640, height=480, ego_T_cam=FORWARD)
    fields.update(overrides)
    return Camera(**fields)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            dict(ego_T_cam=make_transform(np.diag([1.0, 1.0, 2.0]), [0, 0, 0])),
            "CAM_TEST: ego_T_cam: rotation is not orthonormal",
        ),
        (
            dict(ego_T_cam=make_transform(np.diag([1.0, 1.0, -1.0]), [0, 0, 0])),
            "CAM_TEST: ego_T_cam: rotation has det -1",
        ),
        (dict(K=[[-800.0, 0, 320], [0, 800, 240], [0, 0, 1]]), "CAM_TEST: focal length must be positive"),
        (
            dict(K=[[800.0, 0, 700], [0, 800, 240], [0, 0, 1]]),
            "CAM_TEST: principal point (700.0, 240.0) is outside the 640x480 image",
        ),
        (dict(K=[[800.0, 0, np.nan], [0, 800, 240], [0, 0, 1]]), "CAM_TEST: K: contains NaN or inf"),
        (dict(ego_T_cam=np.where(np.eye(4) > 0, np.inf, 0.0)), "CAM_TEST: ego_T_cam: contains NaN or inf"),
        (dict(K=np.eye(4)), "CAM_TEST: K: expected shape (3, 3), got (4, 4)"),
        (dict(ego_T_cam=np.eye(3)), "CAM_TEST: ego_T_cam: expected shape (4, 4), got (3, 3)"),
        (dict(width=0), "CAM_TEST: width must be a positive integer"),
        (dict(dist=[0.1, 0.2, 0.3]), "CAM_TEST: dist must have 0, 4, 5 or 8 coefficients, got 3"),
        (dict(dist=[0.1, np.nan, 0, 0]), "CAM_TEST: dist contains NaN or inf"),
    ],
)
def test_validation_errors_name_camera_and_field(overrides, message):
    with pytest.raises(EasyOccError) as error:
        make_camera(**overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_duplicate_camera_names_rejected():
    with pytest.raises(EasyOccError, match="duplicate camera name CAM_TEST"):
        CameraRig([make_camera(), make_camera()])


def test_project_known_point():
    camera = make_camera()
    # 10 m ahead of the camera, 1 m to the left (ego +y) -> left of the principal point.
    uv, depth, inside = camera.project(np.array([[11.5, 1.0, 1.6]]))
    np.testing.assert_allclose(depth, [10.0])
    np.testing.assert_allclose(uv, [[320 - 80.0, 240.0]])
    assert inside.tolist() == [True]
    _, _, behind = camera.project(np.array([[-5.0, 0.0, 1.6]]))
    assert behind.tolist() == [False]


@pytest.mark.parametrize("dist", [[], [-0.3, 0.1, 0.001, -0.002, 0.01]])
def test_unproject_inverts_project(dist):
    rng = np.random.default_rng(0)
    camera = make_camera(dist=dist)
    points = np.column_stack([rng.uniform(5, 60, 500), rng.uniform(-8, 8, 500), rng.uniform(-1, 4, 500)])
    uv, depth, inside = camera.project(points)
    assert inside.mean() > 0.5
    back = camera.unproject(uv[inside], depth[inside])
    assert np.abs(back - points[inside]).max() < 1e-6


def test_distortion_matches_opencv():
    dist = np.array([-0.3, 0.1, 0.001, -0.002, 0.01])
    camera = make_camera(dist=dist)
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(5, 30, 50), rng.uniform(-3, 3, 50), rng.uniform(0, 3, 50)])
    uv, _, _ = camera.project(points)
    points_cam = (points - camera.ego_T_cam[:3, 3]) @ camera.ego_T_cam[:3, :3]
    expected, _ = cv2.projectPoints(points_cam, np.zeros(3), np.zeros(3), camera.K, dist)
    np.testing.assert_allclose(uv, expected.reshape(-1, 2), atol=1e-6)


def test_resize_and_crop_keep_projection_on_same_content():
    from easyocc.calibration import resize_and_crop

    camera = make_camera()
    # A synthetic image with one bright 9x9 square around a known projected point.
    point = np.array([[21.5, -2.0, 2.1]])
    ((u, v),) = np.round(camera.project(point)[0]).astype(int)
    image = np.zeros((480, 640, 3), np.uint8)
    image[v - 4 : v + 5, u - 4 : u + 5] = 255
    small, small_camera = resize_and_crop(image, camera, (320, 240), crop=(40, 20, 256, 200))
    assert small.shape == (200, 256, 3)
    # Same result as plain cv2.resize followed by slicing.
    expected = cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA)[20:220, 40:296]
    np.testing.assert_array_equal(small, expected)
    ((u2, v2),) = small_camera.project(point)[0]
    # The projected point is at the intensity centroid of the square in the resized, cropped image.
    ys, xs = np.nonzero(small[..., 0].astype(float) > 0)
    weights = small[ys, xs, 0].astype(float)
    assert abs(np.average(xs, weights=weights) - u2) < 0.3
    assert abs(np.average(ys, weights=weights) - v2) < 0.3


def test_quaternion_convention_wxyz():
    # 90 degrees about z: x axis -> y axis.
    rotation = quaternion_to_matrix([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])
    np.testing.assert_allclose(rotation @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_default_rig_is_the_nuscenes_rig():
    rig = default_rig()
    assert rig.names == (
        "CAM_FRONT",
        "CAM_FRONT_RIGHT",
        "CAM_FRONT_LEFT",
        "CAM_BACK",
        "CAM_BACK_LEFT",
        "CAM_BACK_RIGHT",
    )
    front = rig["CAM_FRONT"]
    assert (front.width, front.height) == (1600, 900)
    # CAM_FRONT looks along ego +x.
    assert front.ego_T_cam[:3, :3] @ [0, 0, 1] == pytest.approx([1, 0, 0], abs=0.02)
    small = rig.resized(704, 256)
    assert small["CAM_FRONT"].K[0, 0] == pytest.approx(front.K[0, 0] * 704 / 1600)
