"""The stream's once-a-second chores, off the receive path.

Market lifecycle events go to the database; whale events are stored and their impact filled in
as one and five minutes pass; windows of ``book_deltas`` that were lost (a dropped connection,
a full queue) are recorded in ``feed_gaps``; unreadable frames go to ``quarantine``; counters
go to Prometheus; the heartbeat records until when the stream vouches for every fill; and
silent assets are probed over REST — a book that moved on the venue while its asset stayed
silent here proves the subscription dead, and its connection is replaced.

Once the first snapshots are in, the long-lived heap is frozen (``gc.freeze``, process-wide):
40,000 live books are a few hundred thousand tracked objects (each book's arrays included) that
every full cycle collection would otherwise rescan, pausing the receive path for a few hundred
milliseconds. Books and windows hold no reference cycles, so freed ones still go by refcount.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from polyfarm.aio import sleep_unless
from polyfarm.logs import get_logger
from polyfarm.polymarket.domain import Reject
from polyfarm.store.ops import record_health
from polyfarm.store.outage import OutageLog
from polyfarm.store.quarantine import QuarantineRecord, quarantine_record, store_quarantined
from polyfarm.store.stream_writes import (
    GapRecord,
    insert_gaps,
    insert_whale_events,
    update_whale_impacts,
)
from polyfarm.stream.bookcheck import HashCheckKey
from polyfarm.stream.livebook import epoch_ms
from polyfarm.stream.repair import Gap

if TYPE_CHECKING:
    from polyfarm.stream.service import StreamRun

log = get_logger(__name__)

TICK_S = 1.0
FREEZE_READY = 0.95  # share of books with their first snapshot
FREEZE_AFTER_S = 120.0
HEARTBEAT_S = 10.0
WHALE_BACKLOG_MAX = 10_000
NOW_TOLERANCE_S = 5.0
LOST_DELTA_REASONS = ("ws_", "restart")
QUARANTINE_BACKLOG_MAX = 10_000
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
MESSAGE_TYPES = {
    "PriceChange": "price_change",
    "TradePrint": "last_trade_price",
    "BookSnapshot": "book",
    "BestBidAsk": "best_bid_ask",
    "TickSizeChange": "tick_size_change",
    "NewMarket": "new_market",
    "MarketResolved": "market_resolved",
}


class Housekeeping:
    def __init__(self, run: StreamRun) -> None:
        self.run_state = run
        self._delta_gaps: dict[str, tuple[datetime, datetime, str]] = {}
        self._exported: dict[str, int] = {}
        self._exported_hashes: Counter[HashCheckKey] = Counter()
        self._next_heartbeat = 0.0
        self._frozen = False
        self._freeze_by = time.monotonic() + FREEZE_AFTER_S
        self._quarantine: list[QuarantineRecord] = []
        self._outage = OutageLog("stream chores (whales, heartbeat, lifecycle)", log)
        self._sampled_minute = -1
        self._next_probe = time.monotonic() + run.ws.asset_stale_s / 4

    # -- synchronous hooks ----------------------------------------------------------------------

    def deltas_dropped(self, market_id: str, ts_ms: int) -> None:
        at = datetime.fromtimestamp(ts_ms / 1000, UTC)
        self._widen(market_id, at, at, "book_deltas write queue full")

    def window_lost(self, gap: Gap) -> None:
        """A lost window of the fill tape is one of the captured deltas too (unrepairable)."""
        if not gap.reason.startswith(LOST_DELTA_REASONS):
            return
        capture = self.run_state.ingest.capture
        catalog = self.run_state.deps.catalog
        for market_id in gap.markets:
            market = catalog.markets.get(market_id)
            if market is not None and any(t in capture for t in market.token_ids):
                self._widen(market_id, gap.start, gap.end, gap.reason)

    def _widen(self, market_id: str, start: datetime, end: datetime, reason: str) -> None:
        known = self._delta_gaps.get(market_id)
        if known is not None:
            start, end = min(start, known[0]), max(end, known[1])
        self._delta_gaps[market_id] = (start, end, reason)

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.tick()
            await sleep_unless(stop, TICK_S)

    async def tick(self) -> None:
        chores: Sequence[Callable[[], Awaitable[None]]] = (
            self._settle_heap,
            self._lifecycle,
            self._whales,
            self._lost_deltas,
            self._store_quarantined,
            self._heartbeat_due,
            self._probe_due,
        )
        failed = False
        for chore in chores:
            try:
                await chore()
            except DB_ERRORS as exc:
                failed = True
                if not self._outage.failed(exc, chore=chore.__name__):
                    log.warning("stream chore failed", chore=chore.__name__, error=repr(exc))
        if not failed:
            self._outage.succeeded()
        self._export_counts()

    async def _settle_heap(self) -> None:
        if self._frozen:
            return
        books = self.run_state.books
        ready = sum(1 for book in books.values() if book.ready)
        if books and (ready >= FREEZE_READY * len(books) or time.monotonic() > self._freeze_by):
            freeze_long_lived()
            self._frozen = True

    async def _lifecycle(self) -> None:
        run = self.run_state
        now = run.deps.clock()
        minute = int(now.timestamp() // 60)
        if minute != self._sampled_minute:
            self._sampled_minute = minute
            run.ingest.sample_prices(now.timestamp())
        await run.events.process(run.ingest.lifecycle)
        run.coverage.expire_pending(run.deps.clock(), time.monotonic(), run.ws.stall_timeout_s)

    async def _whales(self) -> None:
        run = self.run_state
        ingest = run.ingest
        if ingest.whale_rows:
            # Taken off before the await: rows arriving meanwhile wait for the next tick.
            rows = ingest.whale_rows[:WHALE_BACKLOG_MAX]
            del ingest.whale_rows[:WHALE_BACKLOG_MAX]
            try:
                async with run.deps.pool.acquire() as conn:
                    await insert_whale_events(conn, rows)
            except DB_ERRORS:
                ingest.whale_rows[:0] = rows
                raise
        updates = ingest.whales.due(run.deps.clock(), self._price_at)
        if updates:
            async with run.deps.pool.acquire() as conn:
                await update_whale_impacts(conn, updates)

    def _price_at(self, token_id: str, at: datetime) -> float | None:
        """The live price when ``at`` is now, else the minute price of then."""
        run = self.run_state
        now = run.deps.clock()
        book = run.books.get(token_id)
        if book is not None and book.ready and abs((now - at).total_seconds()) <= NOW_TOLERANCE_S:
            return book.price
        activity = run.ingest.activity.get(token_id)
        return None if activity is None else activity.price_at(at.timestamp())

    async def _lost_deltas(self) -> None:
        if not self._delta_gaps:
            return
        gaps = dict(self._delta_gaps)
        records = [
            GapRecord("ws_book_deltas", None, market_id, start, end, reason)
            for market_id, (start, end, reason) in gaps.items()
        ]
        async with self.run_state.deps.pool.acquire() as conn:
            await insert_gaps(conn, records)
        for market_id, window in gaps.items():  # kept until stored; widened ones stay
            if self._delta_gaps.get(market_id) == window:
                del self._delta_gaps[market_id]
        self.run_state.deps.metrics.feed_gaps.labels("ws_book_deltas", "unrepaired").inc(
            len(records)
        )

    # -- unreadable frames ----------------------------------------------------------------------

    def frame_rejected(self, reject: Reject, at: datetime) -> None:
        """Keep an unreadable frame for the ``quarantine`` table (bounded: past the cap only
        the count survives, in the metrics and the log)."""
        if len(self._quarantine) >= QUARANTINE_BACKLOG_MAX:
            self.run_state.counts["quarantine_overflow"] += 1
            return
        self._quarantine.append(quarantine_record("ws", reject.reason, reject.raw, at, reject.key))

    async def _store_quarantined(self) -> None:
        if not self._quarantine:
            return
        records = list(self._quarantine)
        async with self.run_state.deps.pool.acquire() as conn:
            await store_quarantined(conn, records)
        del self._quarantine[: len(records)]

    # -- heartbeat ------------------------------------------------------------------------------

    async def _heartbeat_due(self) -> None:
        if time.monotonic() >= self._next_heartbeat:
            self._next_heartbeat = time.monotonic() + HEARTBEAT_S
            await self.heartbeat()

    async def final(self) -> None:
        """After the intake stopped: what the last ticks did not get to, then the heartbeat."""
        for chore in (self._whales, self._lost_deltas, self._store_quarantined, self.heartbeat):
            try:
                await chore()
            except DB_ERRORS as exc:
                log.warning("stream chore failed at stop", chore=chore.__name__, error=repr(exc))

    async def heartbeat(self) -> None:
        run = self.run_state
        vouched = run.coverage.vouched_until(run.deps.clock(), run.repairer.earliest_unrecorded())
        async with run.deps.pool.acquire() as conn:
            await record_health(conn, "stream", at=vouched, ok=True, rows=run.counts["TradePrint"])

    # -- silent assets --------------------------------------------------------------------------

    async def _probe_due(self) -> None:
        if time.monotonic() >= self._next_probe:
            self._next_probe = time.monotonic() + self.run_state.ws.asset_stale_s / 4
            await self.probe_stale()

    def stale_tokens(self) -> list[str]:
        run = self.run_state
        oldest = epoch_ms(run.deps.clock() - timedelta(seconds=run.ws.asset_stale_s))
        return [t for t, b in run.books.items() if b.ready and b.heard_ms < oldest]

    async def probe_stale(self) -> int:
        """REST-check silent assets; returns how many proved their subscription dead."""
        run = self.run_state
        stale = self.stale_tokens()
        run.deps.metrics.stale_assets.set(len(stale))
        silent = 0
        now_ms = epoch_ms(run.deps.clock())
        for rest in await run.checker.fetch(stale[: max(1, run.ws.crosscheck_tokens)]):
            book = run.books.get(rest.asset_id)
            if book is None:
                continue
            if epoch_ms(rest.timestamp) > book.ts_ms:
                silent += 1
                run.counts["asset_silent"] += 1
                run.replace_socket_of(rest.asset_id, "an asset went silent")
            else:
                book.seen_ms = now_ms  # quiet, not lost
        return silent

    # -- metrics --------------------------------------------------------------------------------

    def _export_counts(self) -> None:
        metrics = self.run_state.deps.metrics
        counts = dict(self.run_state.counts)
        counts.update(self.run_state.ws_counters.snapshot())
        for kind, total in counts.items():
            delta = total - self._exported.get(kind, 0)
            if delta <= 0:
                continue
            self._exported[kind] = total
            if kind in MESSAGE_TYPES:
                metrics.messages.labels(MESSAGE_TYPES[kind]).inc(delta)
            elif kind in ("ws_bad_frame", "ws_bad_message"):
                metrics.parse_errors.labels("ws").inc(delta)
            else:
                metrics.stream_events.labels(kind).inc(delta)
        checks = self.run_state.checker.hash_checks
        for (source, outcome), total in checks.items():
            delta = total - self._exported_hashes[source, outcome]
            if delta > 0:
                self._exported_hashes[source, outcome] = total
                metrics.book_hashes.labels(source.value, outcome.value).inc(delta)


def freeze_long_lived() -> None:
    """Move every object alive now out of the cyclic collector's way (see the module doc)."""
    gc.collect()
    gc.freeze()
    log.info("long-lived heap frozen", objects=gc.get_freeze_count())
