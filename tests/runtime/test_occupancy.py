"""OccupancyRuntime.process on the tiny contract model with real ONNX Runtime sessions."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.runtime.backends import create_runner
from easyocc.runtime.backends.onnxruntime_runner import select_providers
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.view_feed import view_transform_feed
from easyocc.runtime.occupancy import OccupancyRuntime
from easyocc.runtime.postprocess import BEV_FREE, BEV_OCCUPIED, BEV_UNKNOWN

from tests.runtime.stream_fixtures import (
    TINY_GRID,
    build_tiny_model,
    expected_class,
    grey_frame,
    rig,  # noqa: F401  (pytest fixture)
    small_rig,
    tiny_manifest,
    tiny_model,  # noqa: F401  (pytest fixture)
)


def test_process_returns_contract_outputs_with_expected_values(tiny_model, rig):  # noqa: F811
    with OccupancyRuntime(tiny_model, rig=rig, threads=1) as runtime:
        assert runtime.grid == TINY_GRID
        result = runtime.process(grey_frame(rig, 150, stamp_us=1_000_000, seq=7))
        observed = runtime.observed()
    assert result.seq == 7 and result.stamp_us == 1_000_000
    assert result.semantics.dtype == np.uint8 and result.semantics.shape == TINY_GRID.shape
    assert result.confidence.dtype == np.float32
    # Cells no camera sees are free; almost all seen cells get the class of grey 150 (edges blur).
    assert np.all(result.semantics[~observed] == 17)
    assert np.mean(result.semantics[observed] == expected_class(150)) > 0.7
    assert np.allclose(np.median(result.confidence[observed]), 150 / 255, atol=0.01)
    # Occupied voxels: every non-free voxel, with its centre and label.
    voxels = result.voxels
    assert len(voxels) == int(np.sum(result.semantics != 17))
    index, inside = TINY_GRID.index_of(voxels.xyz_ego)
    assert inside.all()
    assert np.array_equal(result.semantics[tuple(index.T)], voxels.labels)
    # BEV: [Y, X] int8; occupied columns where an obstacle class sits in the band, unknown where unseen.
    assert result.bev.shape == (TINY_GRID.shape[1], TINY_GRID.shape[0]) and result.bev.dtype == np.int8
    assert set(np.unique(result.bev)) <= {BEV_FREE, BEV_OCCUPIED, BEV_UNKNOWN}
    assert np.all(result.bev[~observed.any(axis=2).T] == BEV_UNKNOWN)
    assert (result.bev == BEV_OCCUPIED).sum() > 100  # class 10 (truck) is an obstacle
    assert set(result.timing) >= {"preprocess", "infer", "postprocess", "end_to_end"}
    assert all(v >= 0 for v in result.timing.values())


def test_warm_up_leaves_no_trace(tiny_model, rig):  # noqa: F811
    frame = grey_frame(rig, 150, stamp_us=5, seq=1)
    with OccupancyRuntime(tiny_model, rig=rig, threads=1) as cold:
        expected = cold.process(frame)
    with OccupancyRuntime(tiny_model, rig=rig, threads=1) as runtime:
        assert runtime.warm_up(runs=2) > 0
        assert runtime.stats.stages == [] and sum(runtime.drops.as_dict().values()) == 0
        result = runtime.process(frame)  # an early stamp is still accepted: the stamp order is untouched
    assert np.array_equal(result.semantics, expected.semantics)
    assert np.array_equal(result.confidence, expected.confidence)


def test_dark_images_give_free_space_and_decoded_input_matches_encoded(tiny_model, rig):  # noqa: F811
    with OccupancyRuntime(tiny_model, rig=rig) as runtime:
        dark = runtime.process(grey_frame(rig, 10, stamp_us=1))
        raw = runtime.process(grey_frame(rig, 200, stamp_us=2, encoded=False))
        jpeg = runtime.process(grey_frame(rig, 200, stamp_us=3))
    assert np.all(dark.semantics == 17) and len(dark.voxels) == 0
    assert np.all(dark.bev != BEV_OCCUPIED)
    assert np.mean(raw.semantics == jpeg.semantics) > 0.98  # JPEG of a flat grey is near-lossless


def test_latency_stats_accumulate(tiny_model, rig):  # noqa: F811
    with OccupancyRuntime(tiny_model, rig=rig) as runtime:
        for i in range(5):
            runtime.process(grey_frame(rig, 120, stamp_us=100_000 * (i + 1), seq=i))
        summary = runtime.stats.summary()
    assert summary["infer"]["count"] == 5
    assert summary["end_to_end"]["p50"] <= summary["end_to_end"]["max"]


def test_model_for_another_rig_is_refused(tmp_path, rig):  # noqa: F811
    names = ("CAM_FRONT", "CAM_BACK", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
    path = build_tiny_model(tmp_path / "m.onnx", tiny_manifest(camera_names=names))
    with pytest.raises(EasyOccError, match="rig camera order"):
        OccupancyRuntime(path, rig=rig)


def test_model_for_another_grid_is_refused(tiny_model, rig):  # noqa: F811
    from easyocc.runtime.contract.grid import OCC3D_NUSCENES

    with pytest.raises(EasyOccError, match="grid differs"):
        OccupancyRuntime(tiny_model, rig=rig, expected_grid=OCC3D_NUSCENES)


def test_model_without_manifest_is_refused(tmp_path, rig):  # noqa: F811
    path = build_tiny_model(tmp_path / "m.onnx", metadata="")
    with pytest.raises(EasyOccError, match="no EasyOcc manifest"):
        OccupancyRuntime(path, rig=rig)


def test_manifest_that_lies_about_the_graph_is_refused(tmp_path):
    honest = tiny_manifest()
    liar = tiny_manifest(input_size=(128, 64))
    path = build_tiny_model(tmp_path / "m.onnx", honest, metadata=liar.to_json())
    with pytest.raises(EasyOccError, match="input 'images' is uint8 \\[6, 64, 96, 3\\] in the model"):
        create_runner(path).activate()


def test_missing_model_file_is_named(tmp_path, rig):  # noqa: F811
    with pytest.raises(EasyOccError, match="model not found: .*absent.onnx"):
        OccupancyRuntime(tmp_path / "absent.onnx", rig=rig)


def test_runner_checks_feed_names_dtypes_shapes(tiny_model):  # noqa: F811
    with create_runner(tiny_model) as runner:
        feed = view_transform_feed(runner.manifest, small_rig())
        feed["images"] = np.zeros((6, 64, 96, 3), np.uint8)
        with pytest.raises(EasyOccError, match="input 'images' has dtype float32"):
            runner.infer({**feed, "images": feed["images"].astype(np.float32)})
        with pytest.raises(EasyOccError, match="input 'images' has shape \\[5, 64, 96, 3\\]"):
            runner.infer({**feed, "images": feed["images"][:5]})
        with pytest.raises(EasyOccError, match="missing inputs \\['vt_uv'\\]"):
            runner.infer({k: v for k, v in feed.items() if k != "vt_uv"})
        assert runner.infer(feed)["semantics"].shape == TINY_GRID.shape


def test_io_binding_path_matches_plain_run(tiny_model):  # noqa: F811
    feed = None
    outputs = []
    for binding in (False, True):
        with create_runner(tiny_model, io_binding=binding, threads=1) as runner:
            if feed is None:
                feed = view_transform_feed(runner.manifest, small_rig())
                feed["images"] = np.random.default_rng(0).integers(0, 255, (6, 64, 96, 3), dtype=np.uint8)
            runner.set_static({k: feed[k] for k in ("vt_uv", "vt_weights")})
            outputs.append(runner.infer({"images": feed["images"]}))
    assert np.array_equal(outputs[0]["semantics"], outputs[1]["semantics"])
    assert np.allclose(outputs[0]["confidence"], outputs[1]["confidence"], atol=1e-6)


def test_provider_preference():
    assert select_providers(["CPUExecutionProvider", "CUDAExecutionProvider", "AzureExecutionProvider"]) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert select_providers(["CPUExecutionProvider", "TensorrtExecutionProvider", "CUDAExecutionProvider"])[0] == (
        "TensorrtExecutionProvider"
    )
    with pytest.raises(EasyOccError, match="not available"):
        select_providers(["CPUExecutionProvider"], ["CUDAExecutionProvider"])


def test_unknown_backend_is_named():
    with pytest.raises(EasyOccError, match="unknown backend 'openvino'"):
        create_runner("x.onnx", "openvino")


def test_a_frame_prepared_while_another_holds_the_backend_counts_as_ahead(tiny_model, rig):  # noqa: F811
    """prepare() while an earlier prepared frame waits or runs is work ahead: counted, and on the
    low-priority lanes in a throughput run on a backend that computes on the host's CPU (auto), or
    whenever asked (low); live, auto keeps them at normal priority."""
    with OccupancyRuntime(tiny_model, rig=rig) as runtime:
        assert runtime.runner.on_host_cpu  # ONNX Runtime on the CPU
        assert runtime.low_priority_ahead(live=False) and not runtime.low_priority_ahead(live=True)
        first = runtime.prepare(grey_frame(rig, 120, stamp_us=1, seq=0))
        live = runtime.prepare(grey_frame(rig, 200, stamp_us=2, seq=1))  # `first` holds its buffer
        assert runtime.prepared_ahead == 1 and runtime.preprocessor._ahead_pool is None
        runtime.infer(first)
        runtime.infer(live)
        first = runtime.prepare(grey_frame(rig, 120, stamp_us=3, seq=2), live=False)
        second = runtime.prepare(grey_frame(rig, 200, stamp_us=4, seq=3), live=False)
        assert runtime.prepared_ahead == 2 and runtime.preprocessor._ahead_pool is not None
        results = [runtime.finish(p, runtime.infer(p)) for p in (first, second)]
        runtime.process(grey_frame(rig, 200, stamp_us=5, seq=4))  # one at a time: never ahead
        assert runtime.prepared_ahead == 2
    for priority, low in (("normal", False), ("low", True)):
        with OccupancyRuntime(tiny_model, rig=rig, ahead_priority=priority) as runtime:
            assert runtime.low_priority_ahead(live=True) is low and runtime.low_priority_ahead(live=False) is low
    with OccupancyRuntime(tiny_model, rig=rig, ahead_priority="normal") as runtime:
        first = runtime.prepare(grey_frame(rig, 120, stamp_us=1, seq=0), live=False)
        second = runtime.prepare(grey_frame(rig, 200, stamp_us=2, seq=1), live=False)
        assert runtime.prepared_ahead == 1 and runtime.preprocessor._ahead_pool is None
        normal = [runtime.finish(p, runtime.infer(p)) for p in (first, second)]
    for a, b, level in zip(results, normal, (120, 200)):
        assert np.array_equal(a.semantics, b.semantics)
        assert np.bincount(a.voxels.labels).argmax() == expected_class(level)


def test_unknown_ahead_priority_is_refused(tiny_model, rig):  # noqa: F811
    with pytest.raises(EasyOccError, match=r"^ahead_priority must be one of auto, low, normal, got 'high'$"):
        OccupancyRuntime(tiny_model, rig=rig, ahead_priority="high")
