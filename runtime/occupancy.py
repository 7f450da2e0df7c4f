"""OccupancyRuntime: one model on one rig; frame set in, semantic occupancy out, with stage timing.

The synchronous `process(frame)` is what the ROS node calls; the pipeline (easyocc.runtime.pipeline) runs the
same three stages, `prepare` -> `infer` -> `finish`, in separate threads.
"""

from __future__ import annotations

import logging
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from easyocc.calibration import CameraRig, default_rig
from easyocc.runtime.assembly import StampGuard, assemble, check_policy
from easyocc.runtime.backends import Runner, create_runner
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import BACKEND_ERROR, FrameError, FrameSet
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.contract.manifest import INPUT_IMAGES, INPUT_VT_WEIGHTS, OUTPUT_CONFIDENCE, OUTPUT_SEMANTICS
from easyocc.runtime.contract.preprocess import CameraPreprocessor
from easyocc.runtime.contract.view_feed import manifest_cache, view_transform_feed
from easyocc.runtime.postprocess import (
    DEFAULT_Z_BAND_M,
    OccupiedVoxels,
    band_observed,
    bev_occupancy,
    observed_mask,
    occupied_voxels,
)
from easyocc.runtime.timing import DegradedCounter, DropCounter, FrameTiming, LatencyStats, now_s

log = logging.getLogger("easyocc.runtime")

AHEAD_PRIORITIES = ("auto", "low", "normal")


@dataclass(eq=False)
class OccupancyResult:
    """One frame's output.

    semantics: uint8 [X, Y, Z] class ids (17 free); confidence: float32 [X, Y, Z]; voxels: the
    occupied ones; bev: int8 [Y, X] OccupancyGrid cells (0 free, 100 occupied, -1 unknown); timing:
    ms per stage ('preprocess', 'infer', 'postprocess', 'end_to_end'); missing_cameras: names run
    with zeroed weights; grid: the grid of semantics and confidence; observed: bool [X, Y, Z], the
    voxels some present camera sees (shared, read-only: one array per set of missing cameras);
    images: the frame's camera images as the source gave them (for sinks that show or record them).
    """

    stamp_us: int
    seq: int
    semantics: np.ndarray
    confidence: np.ndarray
    voxels: OccupiedVoxels
    bev: np.ndarray
    timing: dict[str, float]
    missing_cameras: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)
    record: FrameTiming | None = None
    grid: GridSpec | None = None
    observed: np.ndarray | None = None
    images: dict = field(default_factory=dict)


@dataclass(eq=False)
class PreparedFrame:
    """A preprocessed frame waiting for inference; `images` is a pooled buffer [N_cam, H, W, 3]."""

    frame: FrameSet
    images: np.ndarray
    missing: tuple[int, ...]
    timing: FrameTiming
    _pool: queue.Queue | None = None

    def release(self) -> None:
        """Return the image buffer to its pool (idempotent)."""
        if self._pool is not None:
            self._pool.put(self.images)
            self._pool = None


def image_input_size(manifest, rig: CameraRig) -> tuple[int, int]:
    """(width, height) of the model's `images` input: the network size, or, for a model that resizes
    inside its graph, the cameras' resolution, which every camera of the rig must then have."""
    _, height, width, _ = manifest.input(INPUT_IMAGES).shape
    if (width, height) != tuple(manifest.input_size):
        odd = [f"{c.name} {c.width}x{c.height}" for c in rig if (c.width, c.height) != (width, height)]
        if odd:
            raise EasyOccError(
                f"model takes camera images at {width}x{height} (resized in its graph); the rig has {', '.join(odd)}"
            )
    return width, height


class OccupancyRuntime:
    """A loaded model on a rig. `process(frame)` runs preprocess + infer + postprocess synchronously.

    model_path: .onnx (onnxruntime), TensorRT engine, or TorchScript file; rig: cameras at the size of
    the images that will arrive (default: the nuScenes rig, 1600x900); backend: a name from
    easyocc.runtime.backends.BACKENDS or a Runner instance; missing_camera: 'drop' or 'zero';
    sync_tolerance_ms: max camera stamp spread in a frame; threads: backend intra-op threads; decoder:
    'cpu' (OpenCV) or 'nvimgcodec' (GPU, runtime/decode_gpu.py); reduced_decode: JPEGs decoded at
    1/2, 1/4 or 1/8 where the network size allows; ahead_priority: the priority of the host threads
    that preprocess a frame while an earlier one still holds the backend (work ahead): 'low' (nice 19,
    on the cores the backend leaves idle), 'normal', or 'auto': low in a throughput run
    (prepare(..., live=False)) when the backend computes on the host's CPU, normal otherwise. A model
    whose image input is at the cameras' resolution (exported with the in-graph resize) gets the
    images decoded or copied, not resized.
    Bad frames raise FrameError (an EasyOccError with a `.reason`) after being counted in `drops`.
    """

    def __init__(
        self,
        model_path=None,
        rig: CameraRig | None = None,
        backend="onnxruntime",
        missing_camera: str = "drop",
        sync_tolerance_ms: float = 50.0,
        threads: int | None = None,
        z_band_m: tuple[float, float] = DEFAULT_Z_BAND_M,
        expected_grid: GridSpec | None = None,
        preprocess_workers: int | None = None,
        buffers: int = 3,
        backend_options: dict | None = None,
        decoder: str = "cpu",
        reduced_decode: bool = True,
        ahead_priority: str = "auto",
    ):
        if ahead_priority not in AHEAD_PRIORITIES:
            raise EasyOccError(f"ahead_priority must be one of {', '.join(AHEAD_PRIORITIES)}, got '{ahead_priority}'")
        self.missing_camera = check_policy(missing_camera)
        self.sync_tolerance_us = int(sync_tolerance_ms * 1e3)
        self.z_band_m = tuple(z_band_m)
        if isinstance(backend, Runner):
            self.runner = backend
        else:
            if model_path is None:
                raise EasyOccError("OccupancyRuntime needs a model path")
            self.runner = create_runner(model_path, backend, threads, **(backend_options or {}))
        self.runner.activate()
        try:
            self.manifest = self.runner.manifest
            self.grid = self.manifest.grid
            if expected_grid is not None:
                self.manifest.check_grid(expected_grid)
            self.rig = rig if rig is not None else default_rig()
            self.manifest.check_rig(self.rig.names)
            self._table_cache = manifest_cache(self.manifest)
            self._tables: dict[tuple, dict] = {}  # missing cameras -> feed + masks derived from the cached tables
            self._static_key: tuple | None = None
            self._tables_for(())  # the complete rig's tables, built once
            n_cam = len(self.rig)
            width, height = image_input_size(self.manifest, self.rig)
            self._buffers: queue.Queue = queue.Queue()
            self._buffer_count = max(1, buffers)
            for _ in range(self._buffer_count):
                self._buffers.put(np.zeros((n_cam, height, width, 3), np.uint8))
            # A frame is prepared ahead while another holds a buffer: prepared and waiting, or in the backend.
            self.ahead_priority = ahead_priority
            self.prepared_ahead = 0
            self.preprocessor = CameraPreprocessor(
                self.rig, (width, height), preprocess_workers, reduced_decode=reduced_decode, decoder=decoder
            )
            # The BEV grid is computed here while the calling thread extracts the voxels (numpy releases
            # the GIL in both): 2.5 instead of 4 ms for a 640k-voxel grid on two cores.
            self._post_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="easyocc-post")
        except BaseException:
            self.runner.deactivate()
            raise
        self.stats = LatencyStats()
        self.drops = DropCounter()
        self.degraded = DegradedCounter()  # frames published with zero-filled cameras (policy 'zero')
        self.stamps = StampGuard()
        log.info("runtime ready: %s on %s", self.manifest.summary(), self.backend_name)

    @property
    def backend_name(self) -> str:
        describe = getattr(self.runner, "describe", None)
        return describe() if describe else self.runner.name

    # --- view-transform tables, once per rig and per set of missing cameras ---------------------
    def _tables_for(self, missing: tuple[int, ...]) -> dict:
        if missing not in self._tables:
            if len(self._tables) >= self._table_cache.size:  # bounded: drop the oldest degraded set
                self._tables.pop(next(k for k in self._tables if k))
            feed = view_transform_feed(self.manifest, self.rig, missing, self._table_cache)
            spec = self.manifest.view_transform
            observed = observed_mask(feed[INPUT_VT_WEIGHTS], self.grid, spec.stride_xy, spec.stride_z)
            known = band_observed(observed, self.grid, self.z_band_m)
            self._tables[missing] = {"feed": feed, "observed": observed, "bev_known": known}
        return self._tables[missing]

    def set_rig(self, rig: CameraRig) -> None:
        """A calibration change without a restart: the same cameras at the same image sizes, new
        intrinsics or extrinsics. The view-transform tables of `rig` are built here (once per rig, in
        the shared ViewTableCache) and bound before the next frame. Call it between frames, from the
        thread that calls `process`."""
        old = [(c.name, c.width, c.height) for c in self.rig]
        new = [(c.name, c.width, c.height) for c in rig]
        if new != old:
            raise EasyOccError(
                f"calibration change: cameras or image sizes differ ({new} vs {old}); that needs a reconfigure"
            )
        self.rig = rig
        self._tables = {}
        self._static_key = None  # the next infer binds the new tables
        self._tables_for(())

    def observed(self, missing: tuple[int, ...] = ()) -> np.ndarray:
        """bool [X, Y, Z]: voxels some (present) camera sees."""
        return self._tables_for(tuple(missing))["observed"]

    def bind_tables(self, missing: tuple[int, ...] = ()) -> None:
        """Give the backend the view-transform tables for this set of missing cameras (once per change)."""
        if missing != self._static_key:
            self.runner.set_static(self._tables_for(missing)["feed"])
            self._static_key = missing

    def warm_up(self, runs: int = 2) -> float:
        """Run the backend and the postprocessing `runs` times on black images, so that the first real
        frame does not pay for memory arenas, kernel selection or first-touch pages (ONNX Runtime's
        first run on the bundled model takes ~2.5x a steady one). Statistics, drops and the stamp
        order are untouched. Returns the seconds it took."""
        start = now_s()
        images = self._buffers.get()
        try:
            images[...] = 0
            self.bind_tables(())
            for _ in range(max(1, runs)):
                outputs = self.runner.infer({INPUT_IMAGES: images})
                occupied_voxels(outputs[OUTPUT_SEMANTICS], outputs[OUTPUT_CONFIDENCE], self.grid)
        finally:
            self._buffers.put(images)
        return now_s() - start

    # --- the three stages -------------------------------------------------------------------------
    def low_priority_ahead(self, live: bool) -> bool:
        """Whether frames prepared ahead go to the low-priority lanes (ahead_priority; `live`: a stream
        wanted as soon as possible rather than as many frames as possible).

        'auto' lowers them only in throughput runs on a backend that computes on the host's CPU. There
        the backend's inference no longer shares its cores with the next frame's decoding (on two
        cores, pipelined frames/s +1.1 to +15.2 %, higher in six paired runs of six). Live, a frame prepared
        ahead is the next one published, and decoding it on idle time only delayed it (3x the recorded
        rate, three paired runs: live preprocess p50 18.3-30.1 against 15.5-17.6 ms)."""
        if self.ahead_priority == "auto":
            return not live and self.runner.on_host_cpu
        return self.ahead_priority == "low"

    def prepare(self, frame: FrameSet, arrival: float | None = None, live: bool = True) -> PreparedFrame:
        """Stamp order, camera sync and policy, decode + resize into a pooled buffer. live: False in a
        throughput run (see low_priority_ahead)."""
        timing = FrameTiming(frame.seq, frame.stamp_us, arrival if arrival is not None else now_s())
        try:
            self.stamps.check(frame.stamp_us, frame.seq)
            assembled = assemble(frame, self.manifest.camera_names, self.sync_tolerance_us, self.missing_camera)
            timing.preprocess_start = now_s()
            images = self._buffers.get()
            prepared = PreparedFrame(frame, images, assembled.missing, timing, self._buffers)
            ahead = self._buffer_count - self._buffers.qsize() > 1
            self.prepared_ahead += ahead
            try:
                self.preprocessor.run(
                    assembled.present, assembled.missing, images, ahead=ahead and self.low_priority_ahead(live)
                )
            except BaseException:
                prepared.release()
                raise
            if assembled.missing:
                self._tables_for(assembled.missing)
        except FrameError as exc:
            self.drops.drop(exc.reason, str(exc))
            raise
        timing.preprocess_done = now_s()
        return prepared

    def infer(self, prepared: PreparedFrame) -> dict[str, np.ndarray]:
        """Run the backend; any backend failure becomes FrameError('backend_error'). Releases the buffer."""
        try:
            self.bind_tables(prepared.missing)
            prepared.timing.infer_start = now_s()
            outputs = self.runner.infer({INPUT_IMAGES: prepared.images})
            prepared.timing.inference_done = now_s()
            return outputs
        except Exception as exc:
            self._static_key = None  # re-bind the tables next time, whatever state the backend is in
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            error = FrameError(BACKEND_ERROR, f"{self.runner.name} failed on frame {prepared.frame.seq}: {message}")
            self.drops.drop(error.reason, str(error))
            raise error from None
        finally:
            prepared.release()

    def finish(self, prepared: PreparedFrame, outputs: dict[str, np.ndarray]) -> OccupancyResult:
        """Postprocess: occupied voxels and the BEV grid; timing recorded in `stats`."""
        semantics, confidence = outputs[OUTPUT_SEMANTICS], outputs[OUTPUT_CONFIDENCE]
        tables = self._tables_for(prepared.missing)
        known = tables["bev_known"]
        bev_job = self._post_pool.submit(bev_occupancy, semantics, self.grid, self.z_band_m, observed_columns=known)
        voxels = occupied_voxels(semantics, confidence, self.grid)
        bev = bev_job.result()
        timing = prepared.timing
        timing.postprocess_done = now_s()
        names = tuple(self.manifest.camera_names[i] for i in prepared.missing)
        self.degraded.add(names)
        frame = prepared.frame
        return OccupancyResult(
            frame.stamp_us,
            frame.seq,
            semantics,
            confidence,
            voxels,
            bev,
            timing.stages_ms(),
            names,
            dict(frame.meta),
            timing,
            self.grid,
            tables["observed"],
            frame.images,
        )

    def process(self, frame: FrameSet) -> OccupancyResult:
        """prepare + infer + finish. Raises FrameError (counted in `drops`) for a bad frame."""
        prepared = self.prepare(frame)
        outputs = self.infer(prepared)
        result = self.finish(prepared, outputs)
        self.stats.add_many(result.timing)
        return result

    def reset(self) -> None:
        """Forget the previous frame's stamp (a new stream starts)."""
        self.stamps.reset()

    def close(self) -> None:
        self.preprocessor.close()
        self._post_pool.shutdown(wait=True)
        self.runner.deactivate()

    def __enter__(self) -> OccupancyRuntime:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
