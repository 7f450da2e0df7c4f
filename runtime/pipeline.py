"""Pipelined streaming: source -> preprocess -> infer -> postprocess -> sinks, one thread per stage.

Stages are joined by bounded buffers. Live streams use the newest-frame policy (a stage that falls
behind skips to the newest frame; the skipped ones are counted as 'superseded'); offline replay uses
blocking buffers so that every frame is processed. No queue anywhere is unbounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.frames import SINK_ERROR, SUPERSEDED, FrameError, FrameSet
from easyocc.runtime.occupancy import OccupancyResult, OccupancyRuntime
from easyocc.runtime.timing import FrameTiming, now_s

log = logging.getLogger("easyocc.runtime")


class BufferClosedError(Exception):
    """Raised by LatestBuffer.get once the buffer is closed and empty."""


class LatestBuffer:
    """A bounded hand-over buffer between two threads: the one newest-frame buffer (pipeline stages,
    and the ROS node between its camera callbacks and its worker, with capacity 1).

    newest=True: `put` never blocks; when full, the oldest item is evicted and returned (the caller
    counts and releases it). newest=False: `put` waits for space (back-pressure, nothing lost).
    """

    def __init__(self, capacity: int = 1, newest: bool = True):
        if capacity < 1:
            raise EasyOccError(f"buffer capacity must be >= 1, got {capacity}")
        self.capacity, self.newest = capacity, newest
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item):
        """Add an item; return the evicted one (newest policy) or None."""
        with self._cond:
            if self._closed:
                raise BufferClosedError()
            evicted = None
            if len(self._items) >= self.capacity:
                if self.newest:
                    evicted = self._items.popleft()
                else:
                    while len(self._items) >= self.capacity and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        raise BufferClosedError()
            self._items.append(item)
            self._cond.notify_all()
            return evicted

    def get(self, timeout: float | None = None):
        """Oldest item, waiting for one (None after `timeout` seconds, when given); raises
        BufferClosedError when closed and drained."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    raise BufferClosedError()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> list:
        """Refuse further puts; getters drain what is left. Returns nothing (items stay for getters)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            return list(self._items)

    def reopen(self) -> None:
        """Accept puts again, empty (e.g. a node activated again after a deactivate)."""
        with self._cond:
            self._closed = False
            self._items.clear()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


@dataclass
class PipelineReport:
    """What a run did: frames in/out, drops by reason, wall time (s) and throughput (frames/s)."""

    frames_in: int = 0
    frames_out: int = 0
    drops: dict = field(default_factory=dict)
    wall_s: float = 0.0
    records: list = field(default_factory=list)

    @property
    def throughput_fps(self) -> float:
        return self.frames_out / self.wall_s if self.wall_s > 0 else 0.0


class StreamPipeline:
    """Runs a source through an OccupancyRuntime and into sinks with one thread per stage.

    live: newest-frame buffers (drop what cannot be processed in time) instead of back-pressure.
    max_frames: stop after this many source frames. on_record(FrameTiming): called for every frame
    published. keep_records: how many timing records the report keeps (the newest).
    The runtime should have buffers >= 3 (one being preprocessed, one waiting, one in inference).
    """

    def __init__(
        self,
        runtime: OccupancyRuntime,
        source,
        sinks=(),
        live: bool = False,
        max_frames: int | None = None,
        on_record=None,
        keep_records: int = 10000,
    ):
        if runtime._buffers.qsize() < 3:
            raise EasyOccError("StreamPipeline needs an OccupancyRuntime created with buffers >= 3")
        self.runtime, self.source, self.sinks = runtime, source, list(sinks)
        self.live, self.max_frames, self.on_record = live, max_frames, on_record
        self.records: deque[FrameTiming] = deque(maxlen=keep_records)
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._frames_in = 0
        self._frames_out = 0

    def stop(self) -> None:
        """Ask the source to stop; frames already inside are finished."""
        self._stop.set()

    def _superseded(self, item) -> None:
        if item is None:
            return
        release = getattr(item, "release", None) or getattr(
            item[0] if isinstance(item, tuple) else None, "release", None
        )
        if release:
            release()
        self.runtime.drops.drop(SUPERSEDED, "a newer frame arrived before this one was processed")

    def _stage(self, name, inbox: LatestBuffer | None, outbox: LatestBuffer | None, work):
        def loop():
            try:
                while True:
                    try:
                        item = inbox.get()
                    except BufferClosedError:
                        break
                    try:
                        out = work(item)
                    except FrameError:
                        continue  # counted and logged once by the runtime; the stream goes on
                    if outbox is not None and out is not None:
                        self._superseded(outbox.put(out))
            except BaseException as exc:  # a bug, not a bad frame: stop the whole pipeline
                log.error("pipeline stage %s failed: %s", name, exc)
                self._errors.append(exc)
                self._stop.set()
                for box in self._boxes:
                    box.close()
            finally:
                if outbox is not None:
                    outbox.close()

        return threading.Thread(target=loop, name=f"easyocc-{name}", daemon=True)

    def _source_loop(self, outbox: LatestBuffer):
        try:
            for frame in self.source:
                if self._stop.is_set() or (self.max_frames is not None and self._frames_in >= self.max_frames):
                    break
                if not isinstance(frame, FrameSet):
                    raise EasyOccError(f"source yielded {type(frame).__name__}, expected FrameSet")
                self._frames_in += 1
                self._superseded(outbox.put((frame, now_s())))
        except BufferClosedError:
            pass
        except BaseException as exc:
            log.error("pipeline source failed: %s", exc)
            self._errors.append(exc)
        finally:
            outbox.close()

    def _publish(self, result: OccupancyResult) -> None:
        for sink in self.sinks:
            try:
                sink.write(result)
            except Exception as exc:
                self.runtime.drops.drop(SINK_ERROR, f"sink {type(sink).__name__} failed on frame {result.seq}: {exc}")
        record = result.record
        record.published = now_s()
        result.timing = record.stages_ms()
        self.runtime.stats.add_many(result.timing)
        self.records.append(record)
        self._frames_out += 1
        if self.on_record is not None:
            self.on_record(record)

    def run(self) -> PipelineReport:
        """Run until the source ends (or stop()); re-raise the first unexpected stage error."""
        capacity = 1 if self.live else 2
        rt = self.runtime
        frames, prepared, inferred, results = (LatestBuffer(capacity, self.live) for _ in range(4))
        self._boxes = (frames, prepared, inferred, results)
        threads = [
            threading.Thread(target=self._source_loop, args=(frames,), name="easyocc-source", daemon=True),
            self._stage("preprocess", frames, prepared, lambda item: rt.prepare(*item, live=self.live)),
            self._stage("infer", prepared, inferred, lambda p: (p, rt.infer(p))),
            self._stage("postprocess", inferred, results, lambda item: rt.finish(*item)),
            self._stage("publish", results, None, self._publish),
        ]
        start = now_s()
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        except KeyboardInterrupt:
            self.stop()
            for box in self._boxes:
                box.close()
            raise
        wall = now_s() - start
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close:
                close()
        if self._errors:
            raise self._errors[0]
        return PipelineReport(self._frames_in, self._frames_out, rt.drops.as_dict(), wall, list(self.records))
