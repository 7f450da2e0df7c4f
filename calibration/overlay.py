"""Overlay check: draw projected points coloured by depth on camera images and tile them."""

from __future__ import annotations

import cv2
import numpy as np


def depth_colours(depth_m: np.ndarray, max_depth_m: float = 50.0) -> np.ndarray:
    """uint8 BGR colours [N, 3] for depths (near = red, far = blue), via OpenCV's JET map."""
    scaled = np.clip(1.0 - np.asarray(depth_m) / max_depth_m, 0, 1) * 255
    return cv2.applyColorMap(scaled.astype(np.uint8).reshape(-1, 1), cv2.COLORMAP_JET).reshape(-1, 3)


def draw_points(image_bgr: np.ndarray, uv: np.ndarray, colours_bgr: np.ndarray, radius: int = 2) -> np.ndarray:
    """A copy of the image with a filled circle at each uv [N, 2]."""
    canvas = image_bgr.copy()
    for (u, v), colour in zip(np.round(uv).astype(int), colours_bgr):
        cv2.circle(canvas, (int(u), int(v)), radius, tuple(int(c) for c in colour), -1, lineType=cv2.LINE_AA)
    return canvas


def label_image(image_bgr: np.ndarray, text: str) -> np.ndarray:
    canvas = image_bgr.copy()
    scale = max(canvas.shape[1] / 800, 0.4)
    cv2.putText(canvas, text, (10, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(canvas, text, (10, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def mosaic(images: list[np.ndarray], columns: int = 3, tile_width: int = 640) -> np.ndarray:
    """Tile images (resized to a common width, aspect kept from the first) in rows of `columns`."""
    first = images[0]
    tile_height = int(round(first.shape[0] * tile_width / first.shape[1]))
    tiles = [cv2.resize(image, (tile_width, tile_height), interpolation=cv2.INTER_AREA) for image in images]
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)
