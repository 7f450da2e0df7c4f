"""Node health: input staleness, drops by reason, latency percentiles -> diagnostic_msgs/DiagnosticArray.

`Health` is ROS-free bookkeeping (thread-safe; callbacks and the worker write, a timer reads);
`diagnostic_array` turns one `Health.report()` into the message. Two statuses are published:
"<node>: inputs" (WARN when a camera is stale) and "<node>: pipeline" (latency, drops, backend,
model manifest; WARN for a while after a frame was dropped for a bad input).
"""

from __future__ import annotations

import math
import threading
import time

from easyocc.runtime.contract.frames import SUPERSEDED
from easyocc.runtime.timing import DropCounter, LatencyStats

OK, WARN, ERROR = 0, 1, 2
# Latency series reported: node added latency (last image receipt -> outputs published), the part
# spent in the runtime (OccupancyRuntime.process), and the rest (node overhead), which splits into the
# wait before the worker takes the frame (hand-off, or the previous frame still being processed) and
# the conversion and publication of the outputs.
NODE_LATENCY, RUNTIME_PROCESS, OVERHEAD = "node_added", "runtime_process", "node_overhead"
QUEUE_WAIT, PUBLISH = "queue_wait", "publish"
SERIES = (NODE_LATENCY, RUNTIME_PROCESS, OVERHEAD, QUEUE_WAIT, PUBLISH)
RECENT_DROP_S = 5.0  # a bad-input drop keeps the pipeline status at WARN this long
LATENCY_WINDOW = 2000  # frames the latency percentiles (and the node's per-frame logs) cover


class Health:
    """What the diagnostics report, updated from callbacks and the worker thread."""

    def __init__(self, cameras, stale_timeout_s: float, clock=time.monotonic, logger=None):
        self.cameras = tuple(cameras)
        self.stale_timeout_s = float(stale_timeout_s)
        self.latency = LatencyStats(window=LATENCY_WINDOW)
        self.drops = DropCounter(logger)
        self.frames_in = 0
        self.frames_out = 0
        self._clock = clock
        self._started = clock()
        self._last_receipt: dict[str, float] = {}
        self.received: dict[str, int] = dict.fromkeys(self.cameras, 0)
        self._recent_drops: dict[str, tuple[float, str]] = {}  # reason -> (time, message)
        self.restarts = 0  # input streams that started over (stamps jumped back, e.g. a replayed bag)
        self.last_restart = ""
        self._logger = logger
        self._lock = threading.Lock()

    def image_received(self, camera: str) -> None:
        with self._lock:
            self._last_receipt[camera] = self._clock()
            self.received[camera] = self.received.get(camera, 0) + 1

    def dropped(self, reason: str, message: str) -> None:
        """Count a dropped frame; all but SUPERSEDED (load shedding by design) raise the pipeline to WARN."""
        with self._lock:  # the count and the WARN change together: no snapshot sees one without the other
            self.drops.drop(reason, message)
            if reason != SUPERSEDED:
                self._recent_drops[reason] = (self._clock(), message)

    def stream_restarted(self, message: str) -> None:
        """Count an input stream that started over (synchronisation was reset); logged, not a drop."""
        with self._lock:
            self.restarts += 1
            self.last_restart = message
        if self._logger is not None:
            self._logger.warning("input stream restarted: %s", message)

    def frame_done(self, stages_ms: dict[str, float]) -> None:
        self.latency.add_many(stages_ms)
        with self._lock:
            self.frames_out += 1

    def stale_cameras(self) -> dict[str, float]:
        """camera -> seconds since its last image, for cameras silent longer than stale_timeout_s.

        A camera never heard from counts from the time monitoring started.
        """
        now = self._clock()
        with self._lock:
            ages = {name: now - self._last_receipt.get(name, self._started) for name in self.cameras}
        return {name: age for name, age in ages.items() if age > self.stale_timeout_s}

    def signature(self, active: bool = True) -> tuple:
        """What changes the diagnostics' level or text: stale cameras (when active), recent drop reasons,
        the number of drops and stream restarts. Cheap (no percentiles), for a timer that publishes only on change."""
        now = self._clock()
        with self._lock:
            recent = tuple(self._recent_at(now))
            events = sum(self.drops.as_dict().values()) + self.restarts
        stale = tuple(self.stale_cameras()) if active else ()
        return stale, recent, events

    def _recent_at(self, now: float) -> dict[str, str]:
        """reason -> message of the bad-input drops within RECENT_DROP_S of `now` (call with the lock held)."""
        return {
            reason: message for reason, (when, message) in self._recent_drops.items() if now - when <= RECENT_DROP_S
        }

    def report(self) -> dict:
        """A snapshot: {'stale': {...}, 'ages': {...}, 'latency': {...}, 'drops': {...}, 'recent_drops': {reason: message}, ...}."""
        now = self._clock()
        with self._lock:
            ages = {
                name: (now - self._last_receipt[name]) if name in self._last_receipt else math.inf
                for name in self.cameras
            }
            recent = self._recent_at(now)
            frames_out = self.frames_out
            received = dict(self.received)
            drops = self.drops.as_dict()
            last_drop_messages = dict(self.drops.last_message)
            restarts, last_restart = self.restarts, self.last_restart
        return {
            "received": received,
            "stale": self.stale_cameras(),
            "ages": ages,
            "latency": {name: self.latency.percentiles(name) for name in SERIES},
            "drops": drops,
            "last_drop_messages": last_drop_messages,
            "recent_drops": recent,
            "frames_out": frames_out,
            "restarts": restarts,
            "last_restart": last_restart,
        }


def _kv(key: str, value):
    from diagnostic_msgs.msg import KeyValue

    if isinstance(value, float):
        value = "nan" if math.isnan(value) else ("inf" if math.isinf(value) else f"{value:.3f}")
    return KeyValue(key=key, value=str(value))


def diagnostic_array(report: dict, node_name: str, backend: str, manifest_summary: str, stamp, active: bool = True):
    """DiagnosticArray with an inputs status and a pipeline status from a Health.report()."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    inputs = DiagnosticStatus(name=f"{node_name}: inputs", hardware_id=node_name)
    stale = report["stale"]
    if stale and active:
        inputs.level = bytes([WARN])
        inputs.message = "stale camera(s): " + ", ".join(f"{n} ({a:.1f} s)" for n, a in stale.items())
    else:
        inputs.level = bytes([OK])
        inputs.message = "all cameras publishing" if active else "inactive"
    inputs.values = [_kv(f"age_s/{name}", age) for name, age in report["ages"].items()]
    inputs.values += [_kv(f"received/{name}", count) for name, count in report["received"].items()]
    inputs.values.append(_kv("stale", ",".join(stale)))
    # Image frame_ids that differ from the optical frame the camera's CameraInfo (the rig) named.
    mismatched = report.get("frame_id_mismatch") or {}
    inputs.values += [_kv(f"frame_id_mismatch/{n}", f"{got} (rig: {want})") for n, (got, want) in mismatched.items()]
    if mismatched and active:
        inputs.level = bytes([WARN])
        text = "image frame_id differs from the rig's camera frame: " + ", ".join(
            f"{n} '{got}' (rig: '{want}')" for n, (got, want) in mismatched.items()
        )
        inputs.message = f"{inputs.message}; {text}" if stale else text

    pipeline = DiagnosticStatus(name=f"{node_name}: pipeline", hardware_id=backend)
    recent = report["recent_drops"]
    if recent:
        pipeline.level = bytes([WARN])
        pipeline.message = "dropped frames: " + "; ".join(f"{reason}: {message}" for reason, message in recent.items())
    else:
        pipeline.level = bytes([OK])
        pipeline.message = f"{report['frames_out']} frames published"
    pipeline.values = [
        _kv("backend", backend),
        _kv("model", manifest_summary),
        _kv("frames_published", report["frames_out"]),
        _kv("stream_restarts", report["restarts"]),
        _kv("last_restart", report["last_restart"]),
    ]
    for series, stats in report["latency"].items():
        pipeline.values += [_kv(f"latency_ms/{series}/{p}", stats[p]) for p in ("p50", "p90", "p99", "max")]
        pipeline.values.append(_kv(f"latency_ms/{series}/count", stats["count"]))
    for reason, count in sorted(report["drops"].items()):
        pipeline.values.append(_kv(f"dropped/{reason}", count))
        pipeline.values.append(_kv(f"last_drop/{reason}", report["last_drop_messages"].get(reason, "")))
    pipeline.values.append(_kv("dropped/total", sum(report["drops"].values())))
    # Published with zero-filled cameras (missing-camera policy 'zero'): counted apart from the drops.
    degraded = report.get("degraded") or {"frames": 0, "cameras": {}}
    pipeline.values.append(_kv("degraded/frames", degraded["frames"]))
    pipeline.values += [_kv(f"degraded/{camera}", count) for camera, count in degraded["cameras"].items()]
    # Parameters changed on the running node that apply only at its next configure.
    pipeline.values.append(_kv("pending_reconfigure", ",".join(report.get("pending_reconfigure") or ())))

    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [inputs, pipeline]
    return array


def values_of(status) -> dict[str, str]:
    """{key: value} of a DiagnosticStatus (for consumers and tests)."""
    return {kv.key: kv.value for kv in status.values}


def level_of(status) -> int:
    """DiagnosticStatus.level as an int (it is a byte in rclpy)."""
    level = status.level
    return level[0] if isinstance(level, (bytes, bytearray)) else int(level)
