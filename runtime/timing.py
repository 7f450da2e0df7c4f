"""Latency bookkeeping: per-frame timing records, rolling per-stage percentiles, drop counters."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger("easyocc.runtime")

# Stage names of a timing record, in pipeline order.
STAGES = ("preprocess", "infer", "postprocess", "publish")


def now_s() -> float:
    """Monotonic clock in seconds (time.perf_counter), the clock of every timing record."""
    return time.perf_counter()


@dataclass
class FrameTiming:
    """Timestamps (monotonic seconds, `now_s`) of one frame through the pipeline.

    capture_us is the frame's capture stamp (its own clock); the others are host times. A stage that
    did not run stays None.
    """

    seq: int
    capture_us: int
    arrival: float
    preprocess_start: float | None = None
    preprocess_done: float | None = None
    infer_start: float | None = None
    inference_done: float | None = None
    postprocess_done: float | None = None
    published: float | None = None

    def stages_ms(self) -> dict[str, float]:
        """{stage: ms} for the stages that ran, plus 'end_to_end' (arrival -> published or last stage)."""
        pairs = {
            "preprocess": (self.preprocess_start, self.preprocess_done),
            "infer": (self.infer_start, self.inference_done),
            "postprocess": (self.inference_done, self.postprocess_done),
            "publish": (self.postprocess_done, self.published),
        }
        out = {name: 1e3 * (b - a) for name, (a, b) in pairs.items() if a is not None and b is not None}
        last = self.published or self.postprocess_done
        if last is not None:
            out["end_to_end"] = 1e3 * (last - self.arrival)
        return out

    def to_dict(self) -> dict:
        return {"seq": self.seq, "capture_us": self.capture_us, **{k: round(v, 4) for k, v in self.stages_ms().items()}}


class LatencyStats:
    """Rolling per-stage latency (ms) over the last `window` frames: p50/p90/p99/max. Thread-safe."""

    def __init__(self, window: int = 2000):
        self.window = int(window)
        self._samples: dict[str, deque] = {}
        self._counts: Counter = Counter()
        self._lock = threading.Lock()

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            self._samples.setdefault(stage, deque(maxlen=self.window)).append(float(ms))
            self._counts[stage] += 1

    def add_many(self, stages_ms: dict[str, float]) -> None:
        for stage, ms in stages_ms.items():
            self.add(stage, ms)

    @property
    def stages(self) -> list[str]:
        with self._lock:
            return list(self._samples)

    def samples(self, stage: str) -> list[float]:
        """The window's samples of `stage` (ms), oldest first."""
        with self._lock:
            return list(self._samples.get(stage, ()))

    def percentiles(self, stage: str) -> dict[str, float]:
        """{'count', 'mean', 'p50', 'p90', 'p99', 'max'} in ms over the window; NaN when empty."""
        with self._lock:
            values = np.asarray(self._samples.get(stage, ()), dtype=np.float64)
            count = self._counts[stage]
        if values.size == 0:
            return {
                "count": 0,
                "mean": float("nan"),
                "p50": float("nan"),
                "p90": float("nan"),
                "p99": float("nan"),
                "max": float("nan"),
            }
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return {
            "count": int(count),
            "mean": float(values.mean()),
            "p50": float(p50),
            "p90": float(p90),
            "p99": float(p99),
            "max": float(values.max()),
        }

    def summary(self) -> dict[str, dict[str, float]]:
        return {stage: self.percentiles(stage) for stage in self.stages}

    def table(self, title: str = "latency (ms)") -> str:
        """A fixed-width table, one row per stage."""
        lines = [f"{title:<14}{'n':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"]
        for stage, p in self.summary().items():
            lines.append(f"{stage:<14}{p['count']:>7d}{p['p50']:>9.2f}{p['p90']:>9.2f}{p['p99']:>9.2f}{p['max']:>9.2f}")
        return "\n".join(lines)


class DropCounter:
    """Frames dropped, counted by reason; the first drop of each reason is logged as a warning."""

    def __init__(self, logger: logging.Logger | None = None):
        self._counts: Counter = Counter()
        self._lock = threading.Lock()
        self._log = logger or log
        self.last_message: dict[str, str] = {}

    def drop(self, reason: str, message: str = "") -> int:
        """Count one drop; return the new count for `reason`."""
        with self._lock:
            self._counts[reason] += 1
            count = self._counts[reason]
            self.last_message[reason] = message
        if count == 1:
            self._log.warning(
                "dropping frame (%s): %s; further drops of this kind are counted silently", reason, message
            )
        else:
            self._log.debug("dropping frame (%s): %s", reason, message)
        return count

    def __getitem__(self, reason: str) -> int:
        with self._lock:
            return self._counts[reason]

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class DegradedCounter:
    """Frames published with cameras zero-filled (missing-camera policy 'zero'): not drops, since they
    were published, but not whole either; counted per frame and per camera."""

    def __init__(self):
        self._cameras: Counter = Counter()
        self._frames = 0
        self._lock = threading.Lock()

    def add(self, cameras) -> None:
        """Count one published frame that ran without `cameras` (names); nothing when it is empty."""
        if not cameras:
            return
        with self._lock:
            self._frames += 1
            self._cameras.update(cameras)

    @property
    def frames(self) -> int:
        with self._lock:
            return self._frames

    def as_dict(self) -> dict:
        """{'frames': n, 'cameras': {name: frames without it}}."""
        with self._lock:
            return {"frames": self._frames, "cameras": dict(sorted(self._cameras.items()))}


@dataclass
class ResourceSampler:
    """CPU time and RSS of this process (psutil), sampled on demand: peak RSS and CPU % between samples."""

    samples: list = field(default_factory=list)

    def __post_init__(self):
        import psutil

        self._process = psutil.Process()
        self._t0 = now_s()
        self._cpu0 = self._cpu_s()
        self.peak_rss_mb = 0.0

    def _cpu_s(self) -> float:
        times = self._process.cpu_times()
        return times.user + times.system

    def sample(self, label: str = "") -> dict:
        """{'label', 'rss_mb', 'cpu_percent' (since start, 100 = one core)}; updates peak_rss_mb."""
        rss_mb = self._process.memory_info().rss / 2**20
        self.peak_rss_mb = max(self.peak_rss_mb, rss_mb)
        elapsed = max(now_s() - self._t0, 1e-9)
        record = {
            "label": label,
            "rss_mb": round(rss_mb, 2),
            "cpu_percent": round(100 * (self._cpu_s() - self._cpu0) / elapsed, 1),
        }
        self.samples.append(record)
        return record
