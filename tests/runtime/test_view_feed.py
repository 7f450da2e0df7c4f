"""The view-transform inputs: the typed spec in the manifest and the one view-table cache."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.calibration import build_view_transform
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import INPUT_VT_UV, INPUT_VT_WEIGHTS, Manifest, ViewTransformSpec
from easyocc.runtime.contract.view_feed import manifest_cache, network_rig, rig_key, view_transform_feed

from tests.runtime.stream_fixtures import TINY_GRID, small_rig, tiny_manifest


def test_manifest_types_grid_and_spec_and_writes_the_same_json():
    manifest = tiny_manifest()
    assert manifest.grid is manifest.grid_spec and manifest.grid == TINY_GRID
    assert manifest.view_transform == ViewTransformSpec(1, 1, 0.1)
    data = manifest.to_dict()
    assert data["view_transform"] == {"stride_xy": 1, "stride_z": 1, "min_depth_m": 0.1}
    assert data["grid"] == TINY_GRID.to_dict()
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_spec_refuses_missing_unknown_and_bad_fields():
    with pytest.raises(EasyOccError, match=r"view transform: missing fields \['min_depth_m'\], unknown fields none"):
        ViewTransformSpec.from_dict({"stride_xy": 2, "stride_z": 2})
    with pytest.raises(EasyOccError, match=r"missing fields none, unknown fields \['depth'\]"):
        ViewTransformSpec.from_dict({"stride_xy": 2, "stride_z": 2, "min_depth_m": 0.1, "depth": 1})
    with pytest.raises(EasyOccError, match="view transform: stride_z must be a positive integer, got 0"):
        ViewTransformSpec(2, 0, 0.1)
    with pytest.raises(EasyOccError, match="view transform: min_depth_m must be >= 0, got -1"):
        ViewTransformSpec(1, 1, -1)
    with pytest.raises(EasyOccError, match="view transform: expected an object, got list"):
        ViewTransformSpec.from_dict([1, 1, 0.1])
    assert ViewTransformSpec(2, 4, 0).num_cells(TINY_GRID) == 10 * 10 * 1


def test_cache_builds_once_per_rig_and_missing_set_and_matches_a_fresh_build():
    manifest = tiny_manifest()
    cache = manifest_cache(manifest, size=3)
    rig = small_rig()
    first = view_transform_feed(manifest, rig, cache=cache)
    again = view_transform_feed(manifest, rig, cache=cache)
    assert again[INPUT_VT_UV] is first[INPUT_VT_UV] and len(cache) == 1  # served, not rebuilt
    fresh = build_view_transform(network_rig(manifest, rig), TINY_GRID.centres(1, 1), 0.1)
    np.testing.assert_array_equal(first[INPUT_VT_WEIGHTS], fresh.weights)
    degraded = view_transform_feed(manifest, rig, (0,), cache=cache)
    assert len(cache) == 2 and not degraded[INPUT_VT_WEIGHTS][0].any()
    np.testing.assert_array_equal(degraded[INPUT_VT_WEIGHTS], fresh.with_cameras_zeroed([0]).weights)
    other = small_rig((640, 360))  # another calibration (image size): another key
    assert rig_key(other) != rig_key(rig)
    view_transform_feed(manifest, other, cache=cache)
    view_transform_feed(manifest, other, (1,), cache=cache)
    assert len(cache) == 3  # bounded: the least recently used entry went
