"""The EasyOcc lifecycle node: six camera topics in, occupancy topics and /diagnostics out.

A thin node over its outputs (.outputs), its calibration from the vehicle (.vehicle_calibration) and
ROS-free parts (.images, .conversions, .diagnostics, .rig_source, and the runtime: its frame
assembly `easyocc.runtime.assembly.ApproximateSync`, its newest-frame buffer `easyocc.runtime.pipeline.LatestBuffer`):
- on_configure: validate parameters, build the rig (file, or CameraInfo + extrinsics), load the
  runtime (model or engine), create the publishers; on_activate: subscribe and start the worker.
- Image callbacks (on a single-threaded executor of their own, .intake) only validate and group images (ApproximateSync, with the runtime's restart rule: stamps
  jumping back beyond 5 s restart synchronisation, reported in diagnostics) and put the group into a
  one-slot newest-frame buffer; a worker thread runs `OccupancyRuntime.process` and publishes, so callbacks
  never wait for inference. A frame that cannot be processed is dropped and counted, never fatal.
"""

from __future__ import annotations

import functools
import threading
import time
import traceback
from collections import deque

from diagnostic_msgs.msg import DiagnosticArray
from easyocc.ros_node import conversions, memory
from easyocc.ros_node.diagnostics import (
    LATENCY_WINDOW,
    NODE_LATENCY,
    OVERHEAD,
    PUBLISH,
    QUEUE_WAIT,
    RUNTIME_PROCESS,
    Health,
    diagnostic_array,
)
from easyocc.ros_node.images import camera_image_from_compressed, camera_image_from_raw, stamp_to_us
from easyocc.ros_node.intake import ImageIntake
from easyocc.ros_node.outputs import OccupancyOutputs
from easyocc.ros_node.params import PARAMETERS, check_update, declare_parameters, read_config
from easyocc.ros_node.qos import diagnostics_qos, input_qos
from easyocc.ros_node.vehicle_calibration import VehicleCalibration
from easyocc.runtime.assembly import ApproximateSync
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import BACKEND_ERROR, SINK_ERROR, SUPERSEDED, FrameError, FrameSet
from easyocc.runtime.pipeline import BufferClosedError, LatestBuffer
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

MEMORY_EVERY = 100  # frames between memory samples (C heap, Python blocks) for stats()["memory"]
DIAGNOSTICS_TICK_S = 0.1  # staleness is checked this often; messages go out on change or every period


class OccupancyNode(LifecycleNode):
    """Lifecycle node around easyocc.runtime.occupancy.OccupancyRuntime (see the module docstring)."""

    def __init__(self, node_name: str = "easyocc", **kwargs):
        super().__init__(node_name, **kwargs)
        declare_parameters(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.config = None
        self.pending_reconfigure: set[str] = set()  # changed parameters that wait for the next configure
        self.runtime = None
        self.backend_name = None
        self.health = None
        self.topics: dict[str, str] = {}
        self._sizes: dict[str, tuple[int, int]] = {}
        self._sync = None
        self._buffer = LatestBuffer(capacity=1, newest=True)
        self._gc = memory.GcMonitor()
        # per frame (ms): hand-off (last image, or the previous frame's end if later -> worker starts),
        # collector pauses during queue_wait, during process + publish: what a slow frame waited for;
        # then its stamp, last camera and that image's stamp, and (monotonic s) its last receipt, start, end
        self._frame_log: deque = deque(maxlen=LATENCY_WINDOW)  # the frames the latency samples cover
        self._last_published_s = 0.0
        self._memory_log: deque = deque(maxlen=1000)  # every MEMORY_EVERY frames: C heap, Python blocks
        self._receipts: deque = deque(maxlen=12 * LATENCY_WINDOW)  # (camera, stamp_us, callback start s)
        self._stalls = memory.StallMonitor()  # when the whole process could not run (stats()["stalls"])
        self._worker = None
        self._stop = threading.Event()
        self._active = False
        self._seq = 0
        self._intake = ImageIntake(self)  # the camera subscriptions, on a single-threaded executor of their own
        self.outputs = OccupancyOutputs(self)  # publishers and per-frame messages (ros_node/outputs.py)
        self._diag_timer = None
        self._diag_last = (0.0, None)
        self.calibration_changes = 0
        self._info_group = ReentrantCallbackGroup()
        self.calibration = VehicleCalibration(self, self._info_group)  # rig, CameraInfo changes, frame ids, TF
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._logger_adapter = _PyLogger(self.get_logger())
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", diagnostics_qos())
        self._autostart_timer = None
        self.on_autostart_failure = None  # called when autostart cannot configure (the CLI exits then)
        if self.get_parameter("autostart").value:
            self._autostart_timer = self.create_timer(
                0.0, self._autostart, callback_group=MutuallyExclusiveCallbackGroup()
            )
        else:
            self.get_logger().info(
                f"autostart is false: staying unconfigured until a lifecycle manager (or"
                f" `ros2 lifecycle set {self.get_fully_qualified_name()} configure`) configures it"
            )

    def _on_set_parameters(self, parameters):
        """Refuse a bad value with its one-line reason; apply the live ones (params.LIVE) at once, the
        others at the next configure."""
        import dataclasses

        from rcl_interfaces.msg import SetParametersResult

        reason, live = check_update(parameters)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        if live and self.config is not None:
            self.config = dataclasses.replace(self.config, **live)
        deferred = sorted(p.name for p in parameters if p.name in PARAMETERS and p.name not in live)
        if deferred and self.config is not None:  # configured: say so instead of ignoring the change
            self.pending_reconfigure.update(deferred)
            self.get_logger().warning(
                f"parameter(s) {', '.join(deferred)} changed; they apply at the next configure "
                "(deactivate, cleanup, configure); the running pipeline keeps the old values"
            )
        return SetParametersResult(successful=True)

    # --- lifecycle ----------------------------------------------------------------------------
    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()
        elif self.on_autostart_failure is not None:
            self.on_autostart_failure()

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # rclpy would turn it into ERROR without a word: say what it was
            expected = isinstance(exc, EasyOccError)  # one line; anything else is a bug: type and traceback
            detail = str(exc) if expected else f"unexpected {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            self.get_logger().error(f"configure failed: {detail}")
            self._destroy_outputs()
            self._release_runtime()
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def _configure(self) -> None:
        from easyocc.runtime.occupancy import OccupancyRuntime

        self.config = config = read_config(self)
        self.pending_reconfigure.clear()
        rig = self.calibration.load(config)
        self.runtime = OccupancyRuntime(
            self._model_file(config),
            rig=rig,
            backend=config.backend,
            missing_camera="drop",
            sync_tolerance_ms=config.sync_tolerance_ms,
            threads=config.threads or None,
            backend_options={"providers": list(config.providers)} if config.providers else None,
            z_band_m=config.bev_z_band_m,
        )
        names = self.runtime.manifest.camera_names
        if config.camera_names and set(config.camera_names) != set(names):
            raise EasyOccError(
                f"parameter camera_names {list(config.camera_names)} differs from the model's cameras {list(names)}"
            )
        self.topics = config.topics_for(config.camera_names or names)
        self._sizes = {camera.name: (camera.width, camera.height) for camera in self.runtime.rig}
        self.health = Health(names, config.stale_timeout_s, logger=self._logger_adapter)
        self._sync = ApproximateSync(
            names,
            int(config.sync_tolerance_ms * 1e3),
            config.sync_queue_size,
            on_drop=self.health.dropped,
            on_restart=self.health.stream_restarted,
        )
        self.outputs.create(
            config, self.runtime, self.calibration.tf, lambda reason, message: self.health.dropped(reason, message)
        )
        if config.rig_source != "file":
            self.calibration.follow(config)
        self._diag_timer = self.create_timer(
            DIAGNOSTICS_TICK_S, self._on_diagnostics_tick, callback_group=self._timer_group
        )
        self.backend_name = self.runtime.backend_name
        if config.keep_heap and not memory.keep_heap():
            self.get_logger().warning(
                "keep_heap: the C library is not glibc (or refused the settings); large buffers use its defaults"
            )
        start = time.perf_counter()  # warm up, so that the first camera frame runs at steady-state speed
        self.runtime.warm_up()
        self.outputs.warm_up()
        warm_s = time.perf_counter() - start
        frozen = memory.freeze_startup_objects()  # no full collection of start-up objects mid-stream
        self._gc.install()  # which frames' hand-off or processing the collector paused (stats()["gc"])
        self.get_logger().info(
            f"configured: {self.runtime.manifest.summary()} on {self.backend_name} (warm-up {warm_s:.2f} s,"
            f" {frozen} start-up objects frozen)"
        )

    def _model_file(self, config) -> str:
        """model_path, or with engine management the engine to run (built or checked now when needed)."""
        if config.model_path:
            return config.model_path
        if config.backend != "tensorrt":
            return config.model_file_path
        from easyocc.runtime.engine_manager import EngineRequest, ensure_engine

        request = EngineRequest(
            config.model_file_path,
            config.engine_file_path,
            config.engine_cache_dir,
            config.engine_precision,
            config.force_engine_update,
        )
        return str(ensure_engine(request, log=self.get_logger().info))

    def _apply_calibration(self) -> None:
        """In the worker, between frames: bind the view-transform tables of a changed calibration."""
        rig = self.calibration.take_changed_rig()
        if rig is None:
            return
        try:
            self.runtime.set_rig(rig)
        except EasyOccError as exc:
            self.get_logger().error(str(exc))
            return
        self.calibration_changes += 1
        self.get_logger().info("calibration changed (CameraInfo): view-transform tables rebuilt, no restart")

    def on_activate(self, state) -> TransitionCallbackReturn:
        from sensor_msgs.msg import CompressedImage, Image

        config = self.config
        self.health = Health(self.health.cameras, config.stale_timeout_s, logger=self._logger_adapter)
        self._sync.reset()
        self._sync.on_drop, self._sync.on_restart = self.health.dropped, self.health.stream_restarted
        self.runtime.reset()
        self._buffer.reopen()
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="easyocc-worker", daemon=True)
        self._worker.start()
        self._stalls.start()
        compressed = config.image_transport == "compressed"
        for name, topic in self.topics.items():  # on the intake's own executor (ros_node/intake.py)
            self._intake.subscribe(
                CompressedImage if compressed else Image,
                topic + "/compressed" if compressed else topic,
                functools.partial(self._on_image, name),
                input_qos(config),
            )
        self._active = True
        self.get_logger().info(f"active: {len(self.topics)} {config.image_transport} camera topics")
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_worker()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._stop_worker()
        self._destroy_outputs()
        self._release_runtime()
        memory.thaw()  # the released runtime's objects become collectable again
        return super().on_cleanup(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.close()
        return super().on_shutdown(state)

    def on_error(self, state) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Stop the worker and the image intake, release the runtime (safe after the ROS context is
        gone; idempotent)."""
        self._stop_worker()
        self._intake.close()
        self._release_runtime()

    def destroy_node(self):
        self._intake.close()
        return super().destroy_node()

    def _stop_worker(self) -> None:
        self._active = False
        self._intake.unsubscribe_all()
        self._stop.set()
        self._stalls.stop()
        self._buffer.close()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None

    def _destroy_outputs(self) -> None:
        self.calibration.close()
        self.outputs.destroy()
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None

    def _release_runtime(self) -> None:
        if self.runtime is not None:
            runtime, self.runtime = self.runtime, None
            runtime.close()

    # --- input side: callbacks never wait -----------------------------------------------------
    def _on_image(self, camera: str, msg) -> None:
        receipt_s = time.perf_counter()
        if not self._active:
            return
        self._receipts.append((camera, stamp_to_us(msg.header.stamp), receipt_s))
        self.health.image_received(camera)
        warning = self.calibration.check_frame(camera, msg.header.frame_id)
        if warning:
            self.get_logger().warning(warning)
        try:
            if self.config.image_transport == "compressed":
                image = camera_image_from_compressed(msg, camera)
            else:
                image = camera_image_from_raw(msg, camera, self._sizes.get(camera))
            group = self._sync.add(camera, image.stamp_us, image, receipt_s)
        except FrameError as exc:
            self.health.dropped(exc.reason, str(exc))
            return
        if group is not None:
            try:
                replaced = self._buffer.put(group)
            except BufferClosedError:  # deactivating: the worker is gone
                return
            if replaced is not None:
                self.health.dropped(SUPERSEDED, f"frame at {replaced.stamp_us} us replaced by a newer one")

    # --- worker: inference and publication ----------------------------------------------------
    def _work(self) -> None:
        if self.config.keep_heap:
            # Here, not in on_configure: glibc's heap is per thread, and this thread builds the messages.
            # A PointCloud2 of every voxel, three times: the node's buffer, rclpy's copy, Fast DDS's payload.
            memory.prefault(3 * conversions.CLOUD_DTYPE.itemsize * self.runtime.grid.num_voxels)
        while not self._stop.is_set():
            try:
                group = self._buffer.get(timeout=0.5)
            except BufferClosedError:
                break
            if group is None or self._stop.is_set():
                continue
            try:
                self._process(group)
            except Exception as exc:  # a frame must never take the node down
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.health.dropped(SINK_ERROR, f"frame at {group.stamp_us} us: {message}")
                self.get_logger().error(f"frame at {group.stamp_us} us failed: {message}")

    def _process(self, group) -> None:
        self._seq += 1
        frame = FrameSet(group.stamp_us, {name: e.item for name, e in group.entries.items()}, seq=self._seq)
        self._apply_calibration()
        start = time.perf_counter()
        try:
            result = self.runtime.process(frame)
        except FrameError as exc:
            self.health.dropped(exc.reason, str(exc))
            return
        except EasyOccError as exc:
            self.health.dropped(BACKEND_ERROR, str(exc))
            return
        done = time.perf_counter()
        self.publish_result(result)
        published = time.perf_counter()
        added_ms = 1e3 * (published - group.last_receipt_s)
        runtime_ms = 1e3 * (done - start)
        handoff_ms = 1e3 * (start - max(group.last_receipt_s, self._last_published_s))
        gc_wait_ms = 1e3 * self._gc.between(group.last_receipt_s, start)
        gc_work_ms = 1e3 * self._gc.between(start, published)
        last_camera, last = max(group.entries.items(), key=lambda item: item[1].receipt_s)
        self._frame_log.append(
            (round(handoff_ms, 3), round(gc_wait_ms, 3), round(gc_work_ms, 3))
            + (group.stamp_us, last_camera, last.stamp_us, group.last_receipt_s, start, published)
        )
        self._last_published_s = published
        if self._seq == 1 or self._seq % MEMORY_EVERY == 0:
            self._memory_log.append(self._memory_sample())
        self.health.frame_done(
            {
                NODE_LATENCY: added_ms,
                RUNTIME_PROCESS: runtime_ms,
                OVERHEAD: added_ms - runtime_ms,
                QUEUE_WAIT: 1e3 * (start - group.last_receipt_s),
                PUBLISH: 1e3 * (published - done),
            }
        )

    def _memory_sample(self) -> dict:
        """Where the process's memory is (stats()["memory"]): the C heap by glibc's account and the
        Python allocator's blocks, after frame `seq`; a soak tells a leak (in-use or blocks growing) from the
        heap's high-water mark (RSS growing while they stay flat)."""
        import psutil

        return {
            "frame": self._seq,
            "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
            "heap_mb": memory.heap_stats(),
            "python_blocks": memory.python_blocks(),
        }

    def publish_result(self, result) -> None:
        """Publish one OccupancyResult on the enabled outputs, stamped with its capture time."""
        self.outputs.publish(result)

    # --- diagnostics --------------------------------------------------------------------------
    def _on_diagnostics_tick(self) -> None:
        if self.health is None or self.runtime is None:
            return
        signature = self.health.signature(self._active)  # every tick: cheap; the report only when sending
        last_time, last_signature = self._diag_last
        now = time.monotonic()
        if signature == last_signature and now - last_time < self.config.diagnostics_period_s:
            return
        self._diag_last = (now, signature)
        report = self.health.report()
        report["degraded"] = self.runtime.degraded.as_dict()  # frames published with zero-filled cameras
        report["frame_id_mismatch"] = dict(self.calibration.mismatched)
        report["pending_reconfigure"] = sorted(self.pending_reconfigure)
        stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(
            diagnostic_array(
                report, self.get_name(), self.runtime.backend_name, self.runtime.manifest.summary(), stamp, self._active
            )
        )

    def stats(self) -> dict:
        """Latency percentiles and per-frame samples (ms, oldest first) and drops so far, for --stats-json."""
        if self.health is None:
            return {}
        report = self.health.report()
        latency = {
            series: {k: (None if v != v else v) for k, v in stats.items()}  # NaN -> null (valid JSON)
            for series, stats in report["latency"].items()
        }
        return {
            "latency_ms": latency,
            "samples_ms": {series: self.health.latency.samples(series) for series in report["latency"]},
            "drops": report["drops"],
            "degraded": self.runtime.degraded.as_dict() if self.runtime is not None else {"frames": 0, "cameras": {}},
            "frames_published": report["frames_out"],
            "stream_restarts": report["restarts"],
            "calibration_changes": self.calibration_changes,
            "images_received": report["received"],
            "backend": self.backend_name,
            "gc": self._gc.summary(),
            "stalls": {
                "columns": ["start_s", "seconds"],
                "threshold_s": self._stalls.threshold_s,
                "rows": [list(row) for row in self._stalls.stalls()],
            },
            "receipts": {"columns": ["camera", "stamp_us", "receipt_s"], "rows": [list(r) for r in self._receipts]},
            "memory": list(self._memory_log) + ([self._memory_sample()] if self._seq else []),
            "per_frame_ms": {
                "columns": ["handoff", "gc_during_queue_wait", "gc_during_process_publish"],
                "rows": [list(row[:3]) for row in self._frame_log],
            },
            # When each frame's last image arrived, its work started and its outputs were out: joined
            # with the player's publication times (ros play --timing-json), a late input is told
            # apart from a slow node (benchmarks/bench_ros_node.py).
            "per_frame_times": {
                "clock": "CLOCK_MONOTONIC seconds",
                "columns": [
                    "stamp_us",
                    "last_camera",
                    "last_camera_stamp_us",
                    "last_receipt_s",
                    "start_s",
                    "published_s",
                ],
                "rows": [list(row[3:]) for row in self._frame_log],
            },
        }


class _PyLogger:
    """Adapts an rclpy logger to the logging.Logger calls easyocc.runtime.timing.DropCounter makes."""

    def __init__(self, logger):
        self._logger = logger

    def warning(self, fmt, *args):
        self._logger.warning(fmt % args)

    def debug(self, fmt, *args):
        self._logger.debug(fmt % args)
