"""The one top-down renderer: a semantic grid seen from above, with a class legend, an ego marker and a
scale bar. Used by the demo, the stream preview (`PreviewSink`), evaluation panels and the synthetic
world's preview. numpy + OpenCV only.

Image axes: x (forward) points up, y (left) points left, so row 0 is the largest x and column 0 the
largest y; one voxel column is `scale` x `scale` pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
from easyocc.runtime.contract.classes import CLASS_NAMES, FREE, PALETTE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec

# Colours (RGB) for columns with nothing occupied: observed, and never observed.
TOPDOWN_FREE = np.array((40, 40, 40), np.uint8)
TOPDOWN_UNKNOWN = np.array((0, 0, 0), np.uint8)
LEGEND_WIDTH = 118
_ROW = 13  # legend row height, pixels
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)


def topdown_image(semantics: np.ndarray, observed: np.ndarray | None = None, scale: int = 2) -> np.ndarray:
    """RGB uint8 [X*scale, Y*scale, 3]: each column in the colour (PALETTE) of its highest non-free voxel,
    shaded by height; empty columns TOPDOWN_FREE, columns never observed (`observed` bool [X, Y, Z] or
    [X, Y]) TOPDOWN_UNKNOWN. The bare map; `render_topdown` adds the legend, ego marker and scale bar."""
    if semantics.ndim != 3:
        raise EasyOccError(f"semantics must be [X, Y, Z], got shape {semantics.shape}")
    size_z = semantics.shape[2]
    occupied = semantics != FREE
    top = size_z - 1 - np.argmax(occupied[:, :, ::-1], axis=2)  # highest occupied layer per column
    label = np.take_along_axis(semantics, top[:, :, None], axis=2)[:, :, 0]
    shade = 0.55 + 0.45 * (top.astype(np.float32) / max(size_z - 1, 1))
    image = (PALETTE[np.minimum(label, FREE)].astype(np.float32) * shade[:, :, None]).astype(np.uint8)
    has_any = occupied.any(axis=2)
    image[~has_any] = TOPDOWN_FREE
    if observed is not None:
        columns = observed.astype(bool)
        columns = columns.any(axis=2) if columns.ndim == 3 else columns
        if columns.shape != has_any.shape:
            raise EasyOccError(f"observed mask has shape {observed.shape}, semantics {semantics.shape}")
        image[~has_any & ~columns] = TOPDOWN_UNKNOWN
    image = image[::-1, ::-1]  # row 0 = largest x (front), column 0 = largest y (left)
    if scale > 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(image)


def render_topdown(
    semantics: np.ndarray,
    grid: GridSpec,
    observed: np.ndarray | None = None,
    scale: int = 2,
    title: str | None = None,
    legend: bool = True,
) -> np.ndarray:
    """RGB uint8 image: the top-down map of `semantics` (uint8 [X, Y, Z] on `grid`) with the ego vehicle
    (a triangle pointing forward at the ego origin), a scale bar, a legend of the classes shown
    (LEGEND_WIDTH pixels on the right) and an optional title bar above."""
    if semantics.shape != grid.shape:
        raise EasyOccError(f"semantics has shape {semantics.shape}, grid expects {grid.shape}")
    image = topdown_image(semantics, observed, scale)
    _draw_ego(image, grid, scale)
    _draw_scale_bar(image, grid, scale)
    if legend:
        present = np.unique(semantics)
        image = np.concatenate([image, _legend(image.shape[0], present, observed is not None)], axis=1)
    return caption(image, title) if title else image


def caption(image: np.ndarray, text: str) -> np.ndarray:
    """RGB image with a white caption bar (24 pixels) above it."""
    bar = np.full((24, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 17), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


def camera_thumbnails(images: list[tuple[str, np.ndarray]], width: int, columns: int = 3) -> np.ndarray:
    """RGB strip of camera images (name, RGB [H, W, 3]) in their order, `columns` per row, each scaled to
    width // columns pixels wide (aspect kept; a row is as tall as its tallest), its name in the corner."""
    if not images:
        raise EasyOccError("camera_thumbnails needs at least one image")
    tile_width = max(1, width // columns)
    tiles = []
    for name, image in images:
        height = max(1, round(image.shape[0] * tile_width / image.shape[1]))
        tile = cv2.resize(image, (tile_width, height), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, name, (3, 11), _FONT, 0.33, _WHITE, 1, cv2.LINE_AA)
        tiles.append(tile)
    rows = []
    for start in range(0, len(tiles), columns):
        row = tiles[start : start + columns]
        height = max(tile.shape[0] for tile in row)
        strip = np.zeros((height, width, 3), np.uint8)
        for index, tile in enumerate(row):
            strip[: tile.shape[0], index * tile_width : (index + 1) * tile_width] = tile
        rows.append(strip)
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def side_by_side(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """RGB images left to right, white gaps between, bottoms padded white to the tallest."""
    height = max(image.shape[0] for image in images)
    tiles = []
    for image in images:
        pad = np.full((height - image.shape[0], image.shape[1], 3), 255, np.uint8)
        tiles += [np.concatenate([image, pad], axis=0), np.full((height, gap, 3), 255, np.uint8)]
    return np.ascontiguousarray(np.concatenate(tiles[:-1], axis=1))


def _pixel(grid: GridSpec, scale: int, x_m: float, y_m: float) -> tuple[int, int]:
    """(column, row) of the ego-frame point (x_m, y_m) in the map."""
    return int(round((grid.upper[1] - y_m) / grid.voxel_size * scale)), int(
        round((grid.upper[0] - x_m) / grid.voxel_size * scale)
    )


def _draw_ego(image: np.ndarray, grid: GridSpec, scale: int) -> None:
    """A white triangle with a black outline at the ego origin, pointing forward (up); 4.5 m long."""
    half_length = max(2.25 / grid.voxel_size * scale, 4.0)
    half_width = max(0.9 / grid.voxel_size * scale, 3.0)
    col, row = _pixel(grid, scale, 0.0, 0.0)
    points = np.array(
        [[col, row - half_length], [col - half_width, row + half_length], [col + half_width, row + half_length]],
        np.int32,
    )
    cv2.fillPoly(image, [points], _WHITE)
    cv2.polylines(image, [points], True, (0, 0, 0), 1)


def _draw_scale_bar(image: np.ndarray, grid: GridSpec, scale: int) -> None:
    """A bar of 1, 2, 5, 10 or 20 m (the longest up to a fifth of the map's width), bottom left."""
    width_m = (grid.upper[1] - grid.lower[1]) / 5
    length_m = max((m for m in (1, 2, 5, 10, 20) if m <= width_m), default=1)
    pixels = int(round(length_m / grid.voxel_size * scale))
    height, width = image.shape[:2]
    x0, y0 = 6, height - 6
    if pixels + 12 > width or height < 24:
        return  # too small a map for a readable bar
    cv2.line(image, (x0, y0), (x0 + pixels, y0), _WHITE, 2)
    for x in (x0, x0 + pixels):
        cv2.line(image, (x, y0 - 4), (x, y0), _WHITE, 1)
    cv2.putText(image, f"{length_m} m", (x0, y0 - 7), _FONT, 0.35, _WHITE, 1, cv2.LINE_AA)


def _legend(height: int, present: np.ndarray, with_unknown: bool) -> np.ndarray:
    """A dark panel LEGEND_WIDTH wide: a swatch and the name of each class present, then free/unobserved."""
    entries = [(CLASS_NAMES[c], PALETTE[c]) for c in present.tolist() if c != FREE]
    entries.append(("free", TOPDOWN_FREE))
    if with_unknown:
        entries.append(("not observed", TOPDOWN_UNKNOWN))
    panel = np.full((height, LEGEND_WIDTH, 3), 20, np.uint8)
    rows = max((height - 4) // _ROW, 0)
    if len(entries) > rows:
        entries = entries[: max(rows - 1, 0)] + [(f"+{len(entries) - rows + 1} more", None)]
    for i, (name, colour) in enumerate(entries):
        y = 4 + i * _ROW
        if colour is not None:
            cv2.rectangle(panel, (4, y), (13, y + 9), tuple(int(v) for v in colour), -1)
            cv2.rectangle(panel, (4, y), (13, y + 9), (128, 128, 128), 1)
        cv2.putText(panel, name, (18, y + 9), _FONT, 0.35, _WHITE, 1, cv2.LINE_AA)
    return panel
