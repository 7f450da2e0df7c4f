"""Keep the large per-frame buffers off the page-fault path (glibc's malloc, Linux).

Every frame the node builds and publishes messages of several MB (a PointCloud2 of the bundled
model is 5-6 MB on the real scene, 12.8 MB at most), and rclpy and Fast DDS copy each into buffers
of their own. With glibc's defaults, a block larger than the largest one freed so far is mmap'd,
and freed heap memory above 128 KB at the top is returned to the kernel; the next buffer of that
size then page-faults its way in again (about 1,500 faults for 6 MB; 9-15 ms of publication on a
loaded 2-core CPU, measured on the frames whose cloud was the largest so far). The usual real-time
remedy, as in the ROS 2 real-time guidance: allocate large blocks from the heap, never give freed
heap back, and touch the heap once before the first frame (`prefault`), on the thread that will
allocate the messages (glibc gives each thread an arena of its own). The price is that the process
keeps its peak heap resident.

The other stall of the same kind is Python's own: the first full garbage collection after start-up
walks every object the imports and the model load created (52-79 ms in the node, measured, on the
third or fourth frame), holding the GIL. `freeze_startup_objects` collects once and moves them out
of the collector's sight, so later collections only walk what the frames create.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
import time
from collections import deque

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit), so 32 MiB it is: blocks
# below it come from the heap. The trim threshold is the largest int mallopt takes: never in practice.
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 2**31 - 1
PREFAULT_CHUNK = 8 << 20  # below MMAP_THRESHOLD: each chunk comes from the calling thread's arena


def _glibc():
    """The C library when it is glibc (the one with mallopt), else None (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        return libc
    except (OSError, AttributeError):
        return None


def keep_heap() -> bool:
    """Allocate blocks below 32 MiB from the heap and never trim it. False where this is not glibc
    (nothing changed) or glibc refused a setting."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def prefault(nbytes: int) -> int:
    """Grow the calling thread's heap by about `nbytes`, touching every page, then free it (with
    `keep_heap` the pages stay mapped for the buffers that follow). Returns the bytes touched."""
    if nbytes < 0:
        raise EasyOccError(f"prefault: nbytes must be >= 0, got {nbytes}")
    chunks = []
    touched = 0
    while touched < nbytes:
        size = min(PREFAULT_CHUNK, nbytes - touched)
        chunk = np.empty(size, np.uint8)
        chunk.fill(1)  # write every page: reading would map the shared zero page only
        chunks.append(chunk)
        touched += size
    del chunks  # all at once: the freed chunks coalesce into one block at the top of the heap
    return touched


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heap_stats() -> dict | None:
    """glibc's own account of the C heap (mallinfo2, all arenas), in MB: 'in_use' (allocated blocks),
    'free' (freed but kept: reused before the heap grows), 'mmapped' (large blocks outside the heap).
    RSS that grows while 'in_use' stays flat is the heap's high-water mark or fragmentation, not a
    leak. None where this is not glibc 2.33 or newer."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    mb = 1.0 / 2**20
    return {
        "in_use": round(info.uordblks * mb, 1),
        "free": round(info.fordblks * mb, 1),
        "mmapped": round(info.hblkhd * mb, 1),
        "arena": round(info.arena * mb, 1),
    }


def python_blocks() -> int:
    """Memory blocks Python's allocator has handed out (sys.getallocatedblocks, O(1)): flat over a
    soak unless Python objects leak."""
    return sys.getallocatedblocks()


def freeze_startup_objects() -> int:
    """Collect garbage, then exempt every object alive now from future collections (`gc.freeze`);
    returns how many were frozen. `thaw()` undoes it (before a reconfigure drops the old objects)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw() -> None:
    """Return the frozen objects to the collector."""
    gc.unfreeze()


class GcMonitor:
    """Times every garbage collection of this process (`gc.callbacks`): when, which generation, how long.

    The collection runs on whichever thread allocated past the threshold and holds the GIL while it
    walks the objects, so a pause here is a pause of every Python thread of the node. `between(t0, t1)`
    says how much of an interval (time.perf_counter seconds) went to collections: the node records it
    for each frame's hand-off and processing, so a slow frame shows whether the collector was the cause.
    """

    def __init__(self, keep: int = 4096):
        self.events: deque = deque(maxlen=keep)  # (start_s, generation, pause_s)
        self.counts = [0, 0, 0]
        self._start: float | None = None
        self._clock = time.perf_counter  # bound now: the callback may run during interpreter shutdown

    def _callback(self, phase: str, info: dict) -> None:
        now = self._clock()
        if phase == "start":
            self._start = now
        elif self._start is not None:
            generation = int(info.get("generation", 0))
            self.events.append((self._start, generation, now - self._start))
            self.counts[min(generation, 2)] += 1
            self._start = None

    def install(self) -> GcMonitor:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def between(self, t0: float, t1: float) -> float:
        """Seconds of collection pauses overlapping [t0, t1]."""
        total = 0.0
        for start, _, pause in reversed(self.events):
            if start + pause < t0:
                break
            total += max(0.0, min(t1, start + pause) - max(t0, start))
        return total

    def summary(self) -> dict:
        """{'collections': [gen0, gen1, gen2], 'pause_ms': {gen: [ms, ...]}} over the kept events."""
        pauses: dict[str, list[float]] = {}
        for _, generation, pause in self.events:
            pauses.setdefault(str(generation), []).append(round(1e3 * pause, 3))
        return {"collections": list(self.counts), "pause_ms": pauses}


class StallMonitor:
    """A thread that wakes every `period_s` and records each wake-up later than `threshold_s`: the
    times this process's Python threads could not run at all (the GIL held by one thread in code
    that does not release it, or the process not scheduled). A slow frame during a stall is the
    process's; a slow frame without one waited for its input (DDS) or for other work.
    `stalls()`: [(start_s, seconds)] in time.perf_counter seconds, the newest `keep`."""

    def __init__(self, period_s: float = 0.01, threshold_s: float = 0.04, keep: int = 4096):
        self.period_s, self.threshold_s = float(period_s), float(threshold_s)
        self._events: deque = deque(maxlen=keep)
        self._stop = None
        self._thread = None

    def start(self) -> StallMonitor:
        import threading

        if self._thread is None:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="easyocc-stalls", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        clock, period, stop = time.perf_counter, self.period_s, self._stop
        last = clock()
        while not stop.wait(period):
            now = clock()
            late = now - last - period
            if late > self.threshold_s:
                self._events.append((last + period, late))
            last = now

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=1.0)
            self._thread = None

    def stalls(self) -> list[tuple[float, float]]:
        return list(self._events)
