"""What the stream knows it lost, kept until a chore records it.

* ``DeltaGapLog``: windows of ``book_deltas`` that were lost (a full write queue, a dropped
  connection, a restart), one per market and widened while unrecorded, for ``feed_gaps``.
* ``StreamQuarantine``: unreadable frames, raw, for the ``quarantine`` table.

Both are fed synchronously from the receive path and stored by chores (``housekeeping.py``);
what is not stored yet stays and is tried again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from polyfarm.markets.catalog import MarketCatalog
from polyfarm.metrics import Metrics
from polyfarm.polymarket.domain import Reject
from polyfarm.store.quarantine import QuarantineRecord, quarantine_record, store_quarantined
from polyfarm.store.stream_writes import GapRecord, insert_gaps
from polyfarm.stream.counts import StreamCounts, StreamEvent
from polyfarm.stream.livebook import LiveBook
from polyfarm.stream.repair import Gap, GapCause

# Causes that lose the captured deltas with the fills: the stream heard nothing (a lost
# connection, an unreadable frame, the stream down). The others are about fills alone.
DELTAS_LOST_TOO = frozenset(
    {
        GapCause.CONNECTION_LOST,
        GapCause.UNREADABLE_FRAME,
        GapCause.RESTART,
        GapCause.CLOSED_WHILE_DOWN,
    }
)
QUARANTINE_BACKLOG_MAX = 10_000
DELTAS = "ws_book_deltas"


class DeltaGapLog:
    """Lost windows of the captured deltas, per market (the latest reason wins a merge)."""

    def __init__(
        self,
        *,
        books: dict[str, LiveBook],
        catalog: MarketCatalog,
        pool: asyncpg.Pool,
        metrics: Metrics,
    ) -> None:
        self._books = books
        self._catalog = catalog
        self._pool = pool
        self._metrics = metrics
        self.windows: dict[str, tuple[datetime, datetime, str]] = {}  # until stored

    def deltas_dropped(self, market_id: str, ts_ms: int) -> None:
        at = datetime.fromtimestamp(ts_ms / 1000, UTC)
        self._widen(market_id, at, at, "book_deltas write queue full")

    def window_lost(self, gap: Gap) -> None:
        """A lost window of the fill tape is one of the captured deltas too (unrepairable)."""
        if gap.cause not in DELTAS_LOST_TOO:
            return
        for market_id in gap.markets:
            if self._captured(market_id):
                self._widen(market_id, gap.start, gap.end, gap.reason)

    def _captured(self, market_id: str) -> bool:
        """Are this market's deltas stored? (``capture_market`` is set on exactly those
        books: the receive path stores a book's deltas by it.)"""
        market = self._catalog.markets.get(market_id)
        if market is None:
            return False
        books = self._books
        return any(
            (book := books.get(token)) is not None and book.capture_market is not None
            for token in market.token_ids
        )

    def _widen(self, market_id: str, start: datetime, end: datetime, reason: str) -> None:
        known = self.windows.get(market_id)
        if known is not None:
            start, end = min(start, known[0]), max(end, known[1])
        self.windows[market_id] = (start, end, reason)

    async def store(self) -> None:
        if not self.windows:
            return
        windows = dict(self.windows)
        records = [
            GapRecord(DELTAS, None, market_id, start, end, reason)
            for market_id, (start, end, reason) in windows.items()
        ]
        async with self._pool.acquire() as conn:
            await insert_gaps(conn, records)
        for market_id, window in windows.items():  # kept until stored; widened ones stay
            if self.windows.get(market_id) == window:
                del self.windows[market_id]
        self._metrics.feed_gaps.labels(DELTAS, "unrepaired").inc(len(records))


class StreamQuarantine:
    """Unreadable frames for the ``quarantine`` table (bounded: past the cap only the count
    survives, in the metrics and the log)."""

    def __init__(self, *, pool: asyncpg.Pool, counts: StreamCounts) -> None:
        self._pool = pool
        self._counts = counts
        self._records: list[QuarantineRecord] = []

    def frame_rejected(self, reject: Reject, at: datetime) -> None:
        if len(self._records) >= QUARANTINE_BACKLOG_MAX:
            self._counts.add(StreamEvent.QUARANTINE_OVERFLOW)
            return
        self._records.append(quarantine_record("ws", reject.reason, reject.raw, at, reject.key))

    async def store(self) -> None:
        if not self._records:
            return
        records = list(self._records)
        async with self._pool.acquire() as conn:
            await store_quarantined(conn, records)
        del self._records[: len(records)]
