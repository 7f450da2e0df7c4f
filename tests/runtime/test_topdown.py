"""The one top-down renderer: map orientation and colours, ego marker, scale bar, legend, panels."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.runtime.contract.classes import CLASS_ID, FREE, PALETTE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.topdown import (
    LEGEND_WIDTH,
    TOPDOWN_FREE,
    TOPDOWN_UNKNOWN,
    caption,
    render_topdown,
    side_by_side,
    topdown_image,
)

GRID = GridSpec((-2.0, -1.0, -1.0), (2.0, 1.0, 3.0), 1.0)  # X=4, Y=2, Z=4; z centres -0.5, 0.5, 1.5, 2.5
WIDE = GridSpec((-20.0, -20.0, -1.0), (20.0, 20.0, 1.0), 0.5)  # 80 x 80 x 4, ego at the centre


def empty(grid=GRID):
    return np.full(grid.shape, FREE, np.uint8)


def test_topdown_forward_up_left_left_and_highest_voxel_colour():
    sem = empty()
    sem[3, 1, 0] = CLASS_ID["car"]  # front-left corner, low
    sem[3, 1, 3] = CLASS_ID["vegetation"]  # same column, highest: this colour shows
    sem[0, 0, 2] = CLASS_ID["pedestrian"]  # rear-right corner
    observed = np.ones(GRID.shape, bool)
    observed[0, 1] = False
    image = topdown_image(sem, observed, scale=1)
    assert image.shape == (4, 2, 3)  # rows = x (front at the top), columns = y (left at the left)
    assert np.array_equal(image[0, 0], PALETTE[CLASS_ID["vegetation"]])  # top layer: full brightness
    assert image[3, 1].tolist() == [int(255 * (0.55 + 0.45 * 2 / 3)), 0, 0]  # pedestrian red, shaded by height
    assert np.array_equal(image[3, 0], TOPDOWN_UNKNOWN)  # x index 0, y index 1: unobserved
    assert np.array_equal(image[1, 0], TOPDOWN_FREE)
    assert topdown_image(sem, scale=3).shape == (12, 6, 3)


def test_render_draws_ego_scale_bar_legend_and_title():
    sem = empty(WIDE)
    sem[70:75, 10:15, 0] = CLASS_ID["car"]  # ahead (x index 70 -> 15 m) and to the right
    image = render_topdown(sem, WIDE, scale=2, title="frame 3")
    assert image.shape == (24 + 160, 160 + LEGEND_WIDTH, 3)  # title bar, map 80 x 2, legend
    body = image[24:]
    assert body[84, 80].tolist() == [255, 255, 255]  # just behind the ego origin (x = 0, y = 0): the marker
    assert body[60, 80].tolist() == TOPDOWN_FREE.tolist()  # 10 m ahead: free
    # the scale bar: 5 m (the longest of 1/2/5/10/20 m up to a fifth of 40 m) = 20 pixels, bottom left
    assert (body[154, 6:27] == 255).all() and body[154, 40].tolist() == TOPDOWN_FREE.tolist()
    # car columns: rows (79 - 74..70) * 2, columns (79 - 14..10) * 2, shaded for the lowest layer
    assert body[15, 135].tolist() == (PALETTE[CLASS_ID["car"]] * 0.55).astype(np.uint8).tolist()
    legend = body[:, 160:]
    assert legend[8, 8].tolist() == PALETTE[CLASS_ID["car"]].tolist()  # first swatch: the class present
    assert legend[21, 8].tolist() == TOPDOWN_FREE.tolist()  # then free; no "not observed" without a mask
    assert (legend[34:40, 4:14] == 20).all()


def test_legend_names_unobserved_columns_and_truncates_when_short():
    sem = empty()
    for k, name in enumerate(("car", "truck", "pedestrian", "vegetation")):
        sem[k, 0, 0] = CLASS_ID[name]
    observed = np.ones(GRID.shape[:2], bool)
    observed[0, 1] = False
    image = render_topdown(sem, GRID, observed, scale=10)  # 40 pixels tall: room for 2 legend rows
    assert image.shape == (40, 20 + LEGEND_WIDTH, 3)
    legend = image[:, 20:]
    assert legend[8, 8].tolist() == PALETTE[CLASS_ID["car"]].tolist()
    assert (legend[17:27, 4:14] == 20).all()  # second row: "+5 more" text, no swatch
    assert np.array_equal(topdown_image(sem, observed, 1)[3, 0], TOPDOWN_UNKNOWN)  # [X, Y] masks too


def test_render_errors_name_the_shapes():
    with pytest.raises(EasyOccError, match=r"semantics has shape \(4, 2, 3\), grid expects \(4, 2, 4\)"):
        render_topdown(np.zeros((4, 2, 3), np.uint8), GRID)
    with pytest.raises(EasyOccError, match=r"observed mask has shape \(2, 2\), semantics \(4, 2, 4\)"):
        topdown_image(empty(), np.ones((2, 2), bool))
    with pytest.raises(EasyOccError, match=r"semantics must be \[X, Y, Z\], got shape \(4, 2\)"):
        topdown_image(np.zeros((4, 2), np.uint8))


def test_panels_side_by_side_pad_to_the_tallest():
    a, b = np.zeros((10, 4, 3), np.uint8), np.zeros((6, 3, 3), np.uint8)
    panel = side_by_side([caption(a, "a"), b], gap=2)
    assert panel.shape == (34, 4 + 2 + 3, 3)
    assert (panel[:, 4:6] == 255).all() and (panel[6:, 6:] == 255).all() and (panel[:6, 6:] == 0).all()


def test_camera_thumbnails_three_per_row_with_aspect_kept():
    from easyocc.runtime.topdown import camera_thumbnails

    wide = np.full((90, 160, 3), 200, np.uint8)  # 16:9
    tall = np.full((160, 90, 3), 50, np.uint8)
    strip = camera_thumbnails([(f"CAM_{i}", wide) for i in range(5)] + [("CAM_T", tall)], width=300)
    assert strip.shape == (56 + 178, 300, 3)  # rows: 56 (16:9 at 100 px), then the tall one's 178
    assert strip[40, 50].tolist() == [200, 200, 200] and strip[40, 250].tolist() == [200, 200, 200]
    assert strip[56 + 100, 250].tolist() == [50, 50, 50]  # the sixth tile, second row, third column
    assert strip[56 + 30, 50].tolist() == [200, 200, 200] and strip[56 + 100, 50].tolist() == [0, 0, 0]
    with pytest.raises(EasyOccError, match="camera_thumbnails needs at least one image"):
        camera_thumbnails([], 300)
