"""Bounded write queues between the receive path and the database, and their flusher.

The receive path appends rows synchronously (no await per message); the flusher hands them in
batches to a ``Writer``, which stores them idempotently. Queues are bounded and say what
happens when the database falls behind:

* ``trades`` — **back-pressure**: once full, the connection's reader waits before taking the
  next frame. The socket then stops being read; if the venue gives up on us, the disconnect is
  a lost window like any other and is repaired from the Data API. No fill is dropped here.
* ``book_deltas`` — **drop and record**: deltas cannot be fetched again, so rows that do not
  fit are dropped and the affected window goes to ``feed_gaps`` (stream ``ws_book_deltas``).

Writes start as soon as the previous one ended (group commit: batches grow by themselves while
a write is in flight), one batch of every queue side by side, so no queue starves another. A
failed write keeps its rows (at the head of the queue) and is retried after a pause; with the
``DurableWriter`` a database that is away is journaled to disk instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.store.rows import TableSpec
from polyfarm.store.writing import Writer

log = get_logger(__name__)

RETRY_PAUSE_S = 1.0


class WriteQueue:
    """Rows of one table waiting to be written, each with the ``perf_counter`` of its frame."""

    def __init__(
        self, spec: TableSpec, capacity: int, message_of: Callable[[Any], object] | None = None
    ) -> None:
        self.spec = spec
        self.capacity = capacity
        # Rows of one message go into one batch: the writer stores a market's mirrored book
        # changes as one row only when both are in its batch (``polyfarm.store.mirrors``).
        self._message_of = message_of
        self.rows: list[Any] = []
        self.stamps: array[float] = array("d")
        self._space = asyncio.Event()
        self._space.set()

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def full(self) -> bool:
        return len(self.rows) >= self.capacity

    def put(self, row: Any, stamp: float) -> None:
        self.rows.append(row)
        self.stamps.append(stamp)

    def take(self, limit: int) -> tuple[list[Any], array[float]]:
        limit = self._message_end(limit)
        rows, stamps = self.rows[:limit], self.stamps[:limit]
        del self.rows[:limit]
        del self.stamps[:limit]
        return rows, stamps

    def _message_end(self, limit: int) -> int:
        """``limit``, or past it to the end of the message the row before it belongs to."""
        rows, message_of = self.rows, self._message_of
        if message_of is None or limit <= 0 or limit >= len(rows):
            return limit
        last = message_of(rows[limit - 1])
        while limit < len(rows) and message_of(rows[limit]) == last:
            limit += 1
        return limit

    def put_back(self, rows: list[Any], stamps: array[float]) -> None:
        self.rows[:0] = rows
        self.stamps[:0] = stamps

    async def wait_for_space(self) -> None:
        while self.full:
            self._space.clear()
            await self._space.wait()

    def release(self) -> None:
        if not self.full:
            self._space.set()


class Latencies:
    """Frame-to-commit latencies of the most recent ``capacity`` rows (seconds)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._values: array[float] = array("d")
        self._capacity = capacity

    def add(self, committed: float, stamps: Sequence[float]) -> None:
        self._values.extend(committed - stamp for stamp in stamps)
        excess = len(self._values) - self._capacity
        if excess > 0:
            del self._values[:excess]

    def percentile(self, q: float) -> float | None:
        if not self._values:
            return None
        ordered = sorted(self._values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def clear(self) -> None:
        del self._values[:]


class Flusher:
    """Writes queued rows as soon as a write can start, one batch per queue in turn."""

    def __init__(
        self,
        writer: Writer,
        queues: Sequence[WriteQueue],
        *,
        interval_s: float,
        batch_rows: int,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._writer = writer
        self._queues = queues
        self._interval_s = interval_s
        self._batch_rows = batch_rows
        self._metrics = metrics
        self._clock = clock
        self._wake = asyncio.Event()
        self.latencies = Latencies()
        self.failures = 0

    def nudge(self, queue: WriteQueue) -> None:
        """Called after appending: the flusher writes as soon as it is free (group commit:
        batches grow by themselves while a write is in flight)."""
        if not self._wake.is_set():
            self._wake.set()

    async def run(self, intake_done: asyncio.Event) -> None:
        """Flush until the intake has stopped and everything it produced is written."""
        while True:
            if not any(self._queues):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()
            finished = intake_done.is_set()
            written = await self.flush()
            if finished and not any(self._queues):
                return
            if not written:
                await asyncio.sleep(RETRY_PAUSE_S)  # the database is failing: keep trying

    async def flush(self) -> bool:
        """One batch from every queue, written side by side (no queue starves another);
        False when a write failed."""
        busy = [queue for queue in self._queues if queue]
        results = await asyncio.gather(*(self._flush_one(queue) for queue in busy))
        if self._metrics is not None:
            for queue in self._queues:
                self._metrics.queue_depth.labels(queue.spec.name).set(len(queue))
        return all(results)

    async def _flush_one(self, queue: WriteQueue) -> bool:
        rows, stamps = queue.take(self._batch_rows)
        try:
            await self._writer.write(queue.spec, rows)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            queue.put_back(rows, stamps)
            self.failures += 1
            log.warning("stream write failed; rows kept", table=queue.spec.name, error=repr(exc))
            return False
        committed = self._clock()
        self.latencies.add(committed, stamps)
        if self._metrics is not None:
            histogram = self._metrics.stream_latency.labels(queue.spec.name)
            for stamp in stamps[:: max(1, len(stamps) // 100)]:
                histogram.observe(committed - stamp)
        queue.release()
        return True
