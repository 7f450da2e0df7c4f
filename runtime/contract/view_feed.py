"""The view-transform inputs of a model, built from its manifest and a rig, and the one cache of them.

`ViewTableCache` holds tables per (rig calibration, cameras run with zeroed weights): the runtime
(per degraded camera set), export's dataset feeds (per sample rig) and training (per augmented rig)
all use it, with the same key.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from easyocc.calibration import CameraRig, ViewTransformTables, build_view_transform
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.contract.manifest import INPUT_VT_UV, INPUT_VT_WEIGHTS, Manifest, ViewTransformSpec


def network_rig(manifest: Manifest, rig: CameraRig) -> CameraRig:
    """The rig at the model's input size, cameras checked against the model's order."""
    manifest.check_rig(rig.names)
    width, height = manifest.input_size
    return rig.resized(width, height)


def rig_key(rig: CameraRig) -> bytes:
    """What the tables depend on, per camera in order: name, image size, K, distortion, ego_T_cam."""
    return b"".join(
        camera.name.encode()
        + np.array([camera.width, camera.height], np.int64).tobytes()
        + np.ascontiguousarray(camera.K, np.float64).tobytes()
        + np.ascontiguousarray(camera.dist, np.float64).tobytes()
        + np.ascontiguousarray(camera.ego_T_cam, np.float64).tobytes()
        for camera in rig
    )


class ViewTableCache:
    """View-transform tables of network-resolution rigs on one grid, built once per (rig, cameras
    zeroed); beyond `size` entries the least recently used is dropped."""

    def __init__(self, grid: GridSpec, spec: ViewTransformSpec, size: int = 8):
        self.grid, self.spec, self.size = grid, spec, max(1, int(size))
        self._centres = spec.centres(grid)
        self._entries: OrderedDict[tuple, ViewTransformTables] = OrderedDict()

    def tables(self, rig: CameraRig, missing_cameras=()) -> ViewTransformTables:
        """The tables of `rig` (already at the network's input size); `missing_cameras`: indices whose
        weights are zeroed, the other cameras' renormalised."""
        missing = tuple(sorted(int(i) for i in missing_cameras))
        key = (rig_key(rig), missing)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        if missing:
            built = self.tables(rig).with_cameras_zeroed(missing)
        else:
            built = build_view_transform(rig, self._centres, self.spec.min_depth_m)
        self._entries[key] = built
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return built

    def __len__(self) -> int:
        return len(self._entries)


def manifest_cache(manifest: Manifest, size: int = 8) -> ViewTableCache:
    """A table cache for a model: its grid and view-transform spec."""
    return ViewTableCache(manifest.grid, manifest.view_transform, size)


def view_transform_feed(
    manifest: Manifest, rig: CameraRig, missing_cameras=(), cache: ViewTableCache | None = None
) -> dict[str, np.ndarray]:
    """{vt_uv: float32 [N_cam, N_cell, 2], vt_weights: float32 [N_cam, N_cell]} for this rig (any
    resolution; resized to the model's input size here).

    `missing_cameras`: indices of cameras absent from a frame; their weights are zeroed and the
    remaining cameras' weights renormalised. `cache`: reuse tables built before (manifest_cache).
    """
    cache = cache if cache is not None else manifest_cache(manifest, size=1)
    tables = cache.tables(network_rig(manifest, rig), missing_cameras)
    return {INPUT_VT_UV: tables.uv_norm, INPUT_VT_WEIGHTS: tables.weights}
