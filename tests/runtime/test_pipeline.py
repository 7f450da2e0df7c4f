"""Pipelined streaming: bounded buffers, drop accounting, sources, sinks, real nuScenes replay."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import SUPERSEDED
from easyocc.runtime.contract.preprocess import decode_image
from easyocc.runtime.occupancy import OccupancyRuntime
from easyocc.runtime.pipeline import BufferClosedError, LatestBuffer, StreamPipeline
from easyocc.runtime.sinks import CallbackSink, NpzSink, PreviewSink
from easyocc.runtime.sources import ImageFolderSource, IterableSource, NuScenesSource
from easyocc.runtime.topdown import LEGEND_WIDTH, render_topdown

from tests.runtime.stream_fixtures import (
    encode_jpeg,
    expected_class,
    grey_frame,
    rig,  # noqa: F401  (pytest fixture)
    tiny_model,  # noqa: F401  (pytest fixture)
)


def test_latest_buffer_newest_policy_evicts_the_oldest():
    box = LatestBuffer(capacity=2, newest=True)
    assert box.put(1) is None and box.put(2) is None
    assert box.put(3) == 1 and len(box) == 2
    box.close()
    assert [box.get(), box.get()] == [2, 3]
    with pytest.raises(BufferClosedError):
        box.get()
    with pytest.raises(BufferClosedError):
        box.put(4)


def test_latest_buffer_blocking_policy_waits_for_space():
    box = LatestBuffer(capacity=1, newest=False)
    box.put("a")
    done = threading.Event()

    def producer():
        box.put("b")
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    assert not done.wait(0.1)  # full: the producer waits
    assert box.get() == "a"
    assert done.wait(2.0) and box.get() == "b"


def test_latest_buffer_capacity_must_be_positive():
    with pytest.raises(EasyOccError, match="capacity must be >= 1"):
        LatestBuffer(0)


def test_offline_pipeline_processes_every_frame_in_order(tiny_model, rig):  # noqa: F811
    levels = [20 * i for i in range(10)]  # 0 and 20 are below the tiny model's free threshold (0.1 * 255)
    frames = [grey_frame(rig, level, stamp_us=100_000 * (i + 1), seq=i) for i, level in enumerate(levels)]
    seen = []
    with OccupancyRuntime(tiny_model, rig=rig) as runtime:
        report = StreamPipeline(runtime, IterableSource(frames), [CallbackSink(seen.append)]).run()
        assert runtime.stats.percentiles("publish")["count"] == 10
    assert report.frames_in == report.frames_out == 10 and report.drops == {}
    assert [r.seq for r in seen] == list(range(10))
    assert [len(r.voxels) > 0 for r in seen] == [False] * 2 + [True] * 8
    for result, level in zip(seen[2:], levels[2:]):
        assert np.bincount(result.voxels.labels).argmax() == expected_class(level)
    for record in report.records:
        assert (
            record.arrival
            <= record.preprocess_done
            <= record.inference_done
            <= record.postprocess_done
            <= record.published
        )
        assert set(record.stages_ms()) == {"preprocess", "infer", "postprocess", "publish", "end_to_end"}


def test_frames_prepared_ahead_at_low_priority_give_the_same_results(tiny_model, rig):  # noqa: F811
    """As fast as possible, frames are preprocessed while earlier ones hold the backend; on the
    low-priority lanes (low, and auto on ONNX Runtime's CPU) they give exactly what they give at
    normal priority."""
    levels = [40 + 20 * i for i in range(10)]
    semantics = {}
    for priority in ("low", "normal", "auto"):
        frames = [grey_frame(rig, level, stamp_us=100_000 * (i + 1), seq=i) for i, level in enumerate(levels)]
        seen = []
        with OccupancyRuntime(tiny_model, rig=rig, ahead_priority=priority) as runtime:
            report = StreamPipeline(runtime, IterableSource(frames), [CallbackSink(seen.append)]).run()
            assert report.frames_out == 10 and report.drops == {}
            assert runtime.prepared_ahead >= 1  # the source is faster than the backend here
            assert (runtime.preprocessor._ahead_pool is not None) == (priority != "normal")  # auto: low here
        semantics[priority] = [r.semantics for r in seen]
        for result, level in zip(seen, levels):
            assert np.bincount(result.voxels.labels).argmax() == expected_class(level)
    for priority in ("low", "auto"):
        assert all(np.array_equal(a, b) for a, b in zip(semantics[priority], semantics["normal"]))


def test_live_frames_prepared_ahead_stay_at_normal_priority():
    """Live (ahead_priority auto), a frame that arrives while the backend runs the one before is
    prepared ahead on the normal lanes: it is the next one published. The bundled model takes ~110 ms
    a frame on two cores; the frames come at 20 Hz."""
    from easyocc.calibration import default_rig
    from easyocc.runtime.streaming import default_model

    nuscenes = default_rig()
    frames = [grey_frame(nuscenes, 120, stamp_us=50_000 * (i + 1), seq=i) for i in range(6)]
    with OccupancyRuntime(default_model(), rig=nuscenes) as runtime:
        report = StreamPipeline(runtime, IterableSource(frames, paced=True), live=True).run()
        assert report.frames_out >= 2 and runtime.prepared_ahead >= 1
        assert runtime.preprocessor._ahead_pool is None


def test_live_pipeline_drops_superseded_frames_and_counts_them(tiny_model, rig):  # noqa: F811
    frames = [grey_frame(rig, 150, stamp_us=100_000 * (i + 1), seq=i) for i in range(30)]

    def slow_sink(result):
        time.sleep(0.03)

    with OccupancyRuntime(tiny_model, rig=rig) as runtime:
        report = StreamPipeline(runtime, IterableSource(frames), [CallbackSink(slow_sink)], live=True).run()
    assert report.drops.get(SUPERSEDED, 0) > 0
    assert set(report.drops) == {SUPERSEDED}
    assert report.frames_out + report.drops[SUPERSEDED] == 30
    seqs = [r.seq for r in report.records]
    assert seqs == sorted(seqs) and seqs[-1] == 29  # the newest frame is never lost


def test_sink_failure_is_counted_and_stream_continues(tiny_model, rig):  # noqa: F811
    frames = [grey_frame(rig, 150, stamp_us=100_000 * (i + 1), seq=i) for i in range(4)]

    def flaky(result):
        if result.seq == 1:
            raise OSError("disk full")

    with OccupancyRuntime(tiny_model, rig=rig) as runtime:
        report = StreamPipeline(runtime, IterableSource(frames), [CallbackSink(flaky)]).run()
    assert report.frames_out == 4 and report.drops == {"sink_error": 1}


def test_paced_source_follows_recorded_stamps(rig):  # noqa: F811
    frames = [grey_frame(rig, 150, stamp_us=50_000 * i, seq=i, encoded=False) for i in range(4)]
    start = time.perf_counter()
    assert len(list(IterableSource(frames, paced=True))) == 4
    assert time.perf_counter() - start >= 0.14


def test_image_folder_source(tmp_path, tiny_model, rig):  # noqa: F811
    for camera in rig:
        folder = tmp_path / camera.name
        folder.mkdir()
        for stamp in (1_500_000, 1_600_000):
            (folder / f"{stamp}.jpg").write_bytes(encode_jpeg(np.full((camera.height, camera.width, 3), 200, np.uint8)))
    source = ImageFolderSource(tmp_path, rig.names)
    frames = list(source)
    assert [f.stamp_us for f in frames] == [1_500_000, 1_600_000]
    with OccupancyRuntime(tiny_model, rig=rig) as runtime:
        report = StreamPipeline(runtime, source).run()
    assert report.frames_out == 2
    (tmp_path / "CAM_BACK" / "1600000.jpg").unlink()
    with pytest.raises(EasyOccError, match="different or zero image counts"):
        ImageFolderSource(tmp_path, rig.names)


def test_nuscenes_replay_streams_real_images_to_npz_and_preview(nuscenes_root, tiny_model, tmp_path):  # noqa: F811
    source = NuScenesSource(nuscenes_root)
    assert source.rig.names[0] == "CAM_FRONT" and source.rig.cameras[0].width == 1600
    results = []
    with OccupancyRuntime(tiny_model, rig=source.rig) as runtime:
        sinks = [NpzSink(tmp_path / "npz"), PreviewSink(tmp_path / "preview"), CallbackSink(results.append)]
        report = StreamPipeline(runtime, source, sinks, max_frames=6).run()
    assert report.frames_out == 6 and report.drops == {}
    saved = np.load(tmp_path / "npz" / "000003.npz")
    assert np.array_equal(saved["semantics"], results[3].semantics)
    assert np.array_equal(saved["bev"], results[3].bev)
    assert str(saved["sample_token"]) == source.samples[3].token
    assert int(saved["stamp_us"]) == results[3].stamp_us
    png = cv2.imread(str(tmp_path / "preview.png"))
    newest = results[-1]
    expected = render_topdown(newest.semantics, runtime.grid, newest.observed, title=f"frame {newest.seq}")
    assert expected.shape == (24 + 40, 40 + LEGEND_WIDTH, 3)  # title bar; 20 x 20 grid at scale 2; legend
    assert np.array_equal(png[: 24 + 40, :, ::-1], expected)  # the newest frame, through the one renderer
    # below it the six cameras as thumbnails, three per row, 1600x900 scaled to a third of the width
    tile = (40 + LEGEND_WIDTH) // 3
    assert png.shape == (24 + 40 + 2 * round(900 * tile / 1600), 40 + LEGEND_WIDTH, 3)
    first = next(iter(newest.images.values()))  # the first tile: the frame's first camera
    size = (tile, round(900 * tile / 1600))
    front = cv2.resize(decode_image(first.data, reduce=4), size, interpolation=cv2.INTER_AREA)
    thumb = png[64 + 14 : 64 + round(900 * tile / 1600), :tile, ::-1].astype(int)  # below the name
    assert np.abs(thumb - front[14:].astype(int)).mean() < 3  # the camera's image (PNG of a JPEG decode)
    assert (tmp_path / "preview.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    # Real street images: the tiny model sees something in every frame.
    assert all(len(r.voxels) > 0 for r in results)


def test_node_buffer_of_one_replaces_never_blocks_and_times_out():
    """The ROS node's use: capacity 1 between camera callbacks and the worker."""
    buffer = LatestBuffer(capacity=1, newest=True)
    assert buffer.put(1) is None
    assert buffer.put(2) == 1  # superseded, returned to be counted
    assert buffer.get(0.01) == 2
    assert buffer.get(0.01) is None
    got = []
    worker = threading.Thread(target=lambda: got.append(buffer.get(5.0)))
    worker.start()
    buffer.put(3)
    worker.join(2.0)
    assert got == [3]
    buffer.close()
    with pytest.raises(BufferClosedError):  # closed and drained: at once, not after the timeout
        buffer.get(5.0)
    buffer.reopen()
    assert buffer.put(4) is None and buffer.get(0.01) == 4
