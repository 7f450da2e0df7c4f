"""Where results go: an npz per frame, Occ3D-layout predictions (`easyocc eval --predictions`), a
PNG/GIF preview, or a callback (the ROS node's interface).

A sink has `write(result: OccupancyResult)` and `close()`; the pipeline calls them from its publish
thread, so a sink may block briefly but should not keep references to many results.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import atomic_path, write_bytes_atomic
from easyocc.runtime.contract.preprocess import decode_image
from easyocc.runtime.topdown import camera_thumbnails, render_topdown


class Sink:
    """Interface: write(result) per frame, close() at the end of the stream."""

    def write(self, result) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CallbackSink(Sink):
    """Calls `callback(result)` for every frame (e.g. the ROS node's publisher)."""

    def __init__(self, callback):
        if not callable(callback):
            raise EasyOccError("CallbackSink needs a callable")
        self.callback = callback

    def write(self, result) -> None:
        self.callback(result)


class NpzSink(Sink):
    """<folder>/<seq:06d>.npz with semantics uint8 [X, Y, Z], confidence float16 [X, Y, Z], bev int8
    [Y, X], stamp_us, the sample token when the source gave one, and missing_cameras (str [K]: the
    cameras zero-filled in a degraded frame, empty for a whole one). Written atomically."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def write(self, result) -> None:
        path = self.folder / f"{result.seq:06d}.npz"
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                semantics=result.semantics,
                confidence=result.confidence.astype(np.float16),
                bev=result.bev,
                stamp_us=np.int64(result.stamp_us),
                sample_token=np.str_(result.meta.get("sample_token", "")),
                missing_cameras=np.array(result.missing_cameras, dtype=np.str_).reshape(-1),
            )
        self.count += 1


class Occ3DSink(Sink):
    """Predictions in the Occ3D layout that `easyocc eval --predictions` scores:
    <folder>/<scene>/<sample_token>/labels.npz with `semantics` uint8 [X, Y, Z]. Frames whose source
    gave no scene and sample token (image folders, live cameras) are counted in `skipped`."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.skipped = 0

    def write(self, result) -> None:
        scene, token = result.meta.get("scene"), result.meta.get("sample_token")
        if not scene or not token:
            self.skipped += 1
            return
        with atomic_path(self.folder / scene / token / "labels.npz") as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, semantics=np.asarray(result.semantics, np.uint8))
        self.count += 1


def encode_png(image_rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise EasyOccError("could not encode a PNG")
    return data.tobytes()


def write_gif(path, frames_rgb: list[np.ndarray], frame_ms: int = 200) -> Path:
    """An animated GIF through OpenCV's animation API; returns the path written (a .png of the last
    frame instead when this OpenCV cannot write animations)."""
    path = Path(path)
    if not frames_rgb:
        raise EasyOccError(f"no frames to write to {path}")
    if not hasattr(cv2, "imencodeanimation"):
        fallback = path.with_suffix(".png")
        write_bytes_atomic(fallback, encode_png(frames_rgb[-1]))
        return fallback
    animation = cv2.Animation()
    animation.frames = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames_rgb]
    animation.durations = [int(frame_ms)] * len(frames_rgb)
    ok, data = cv2.imencodeanimation(".gif", animation)
    if not ok:
        raise EasyOccError(f"could not encode the GIF {path}")
    write_bytes_atomic(path, data.tobytes())
    return path


def preview_image(result, scale: int = 2, thumbnails: bool = True) -> np.ndarray:
    """The default preview of a result: its top-down map (legend, ego marker, scale bar, unobserved
    columns) titled with the frame number, above its camera images, three per row."""
    image = render_topdown(result.semantics, result.grid, result.observed, scale=scale, title=f"frame {result.seq}")
    if not (thumbnails and result.images):
        return image
    decoded = []
    for name, camera_image in result.images.items():
        if camera_image.data is not None:  # a quarter-size decode: a thumbnail needs no more
            decoded.append((name, decode_image(camera_image.data, f"camera {name}", reduce=4)))
        else:
            decoded.append((name, camera_image.image))
    return np.concatenate([image, camera_thumbnails(decoded, image.shape[1])], axis=0)


class PreviewSink(Sink):
    """Top-down previews: a PNG of the newest frame, and an animated GIF of up to `max_frames` frames
    (every `every`-th), written at close. The default view is `render_topdown` (legend, ego marker,
    scale bar, unobserved columns black) of the result on its grid, above the frame's camera images as
    thumbnails (`thumbnails`); `compose(result) -> RGB image` may replace it (e.g. prediction beside
    ground truth)."""

    def __init__(self, path, every: int = 1, max_frames: int = 60, compose=None, scale: int = 2, thumbnails=True):
        self.path = Path(path)
        self.thumbnails = thumbnails
        self.every, self.max_frames, self.scale = max(1, every), max_frames, scale
        self.compose = compose
        self.frames: list[np.ndarray] = []
        self._seen = 0
        self.written: list[Path] = []

    def write(self, result) -> None:
        self._seen += 1
        if (self._seen - 1) % self.every or len(self.frames) >= self.max_frames:
            return
        if self.compose:
            image = self.compose(result)
        else:
            image = preview_image(result, self.scale, self.thumbnails)
        self.frames.append(image)

    def close(self) -> None:
        if not self.frames:
            return
        png = self.path.with_suffix(".png")
        write_bytes_atomic(png, encode_png(self.frames[-1]))
        self.written = [png]
        if len(self.frames) > 1:
            self.written.append(write_gif(self.path.with_suffix(".gif"), self.frames))
        self.frames = []
