"""The stream's once-a-second chores, off the receive path.

``ChoreLoop`` runs a list of chores once a second and exports the counters to Prometheus; each
chore is a method of the object that owns its state (whale events in ``fills.py``, lost delta
windows and unreadable frames in ``losses.py``) or one of the small chores here: market upkeep
(minute prices, lifecycle events, markets still waiting for a snapshot), the heartbeat that
records until when the stream vouches for every fill, and the probe of silent assets over REST —
a book that moved on the venue while its asset stayed silent here proves the subscription dead,
and its connection is replaced.

Once the first snapshots are in, the long-lived heap is frozen (``gc.freeze``, process-wide):
40,000 live books are a few hundred thousand tracked objects (each book's arrays included) that
every full cycle collection would otherwise rescan, pausing the receive path for a few hundred
milliseconds. Books and windows hold no reference cycles, so freed ones still go by refcount.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Generic, TypeVar

import asyncpg

from polyfarm.aio import sleep_unless
from polyfarm.clock import Clock
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.polymarket.domain import (
    Counters,
    MarketResolved,
    NewMarket,
    OrderBook,
    TradePrint,
    WsCount,
)
from polyfarm.settings import WebSocketSettings
from polyfarm.store.ops import instance_health, record_health
from polyfarm.store.outage import OutageLog
from polyfarm.stream.bookcheck import HashCheckKey
from polyfarm.stream.counts import MESSAGE_LABELS, MessageKind, StreamCounts, StreamEvent
from polyfarm.stream.lifecycle import MarketEvents
from polyfarm.stream.livebook import LiveBook, epoch_ms

log = get_logger(__name__)

TICK_S = 1.0
FREEZE_READY = 0.95  # share of books with their first snapshot
FREEZE_AFTER_S = 120.0
HEARTBEAT_S = 10.0
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
WS_PARSE_ERRORS = frozenset({WsCount.BAD_FRAME, WsCount.BAD_MESSAGE})
K = TypeVar("K", bound=Hashable)

Chore = Callable[[], Awaitable[None]]


class ChoreLoop:
    """``every_tick`` once a second, in order, then the counters exported; ``at_stop`` once,
    after the intake stopped. A chore failing for the database is tried again next tick (one
    warning per outage); any other error ends the stream run."""

    def __init__(
        self, *, every_tick: Sequence[Chore], at_stop: Sequence[Chore], export: Callable[[], None]
    ) -> None:
        self._every_tick = every_tick
        self._at_stop = at_stop
        self._export = export
        self._outage = OutageLog("stream chores (whales, heartbeat, lifecycle)", log)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.tick()
            await sleep_unless(stop, TICK_S)

    async def tick(self) -> None:
        failed = False
        for chore in self._every_tick:
            try:
                await chore()
            except DB_ERRORS as exc:
                failed = True
                if not self._outage.failed(exc, chore=_name(chore)):
                    log.warning("stream chore failed", chore=_name(chore), error=repr(exc))
        if not failed:
            self._outage.succeeded()
        self._export()

    async def final(self) -> None:
        for chore in self._at_stop:
            try:
                await chore()
            except DB_ERRORS as exc:
                log.warning("stream chore failed at stop", chore=_name(chore), error=repr(exc))


def _name(chore: Chore) -> str:
    return getattr(chore, "__qualname__", repr(chore))


class MarketUpkeep:
    """Minute prices (once a minute), lifecycle events into the database, and the windows of
    markets still waiting for their first snapshot."""

    def __init__(
        self,
        *,
        clock: Clock,
        sample_prices: Callable[[float], None],
        lifecycle: deque[NewMarket | MarketResolved],
        events: MarketEvents,
        expire_pending: Callable[[datetime, float, float], None],
        snapshot_wait_s: float,
    ) -> None:
        self._clock = clock
        self._sample_prices = sample_prices
        self._lifecycle = lifecycle
        self._events = events
        self._expire_pending = expire_pending
        self._snapshot_wait_s = snapshot_wait_s
        self._sampled_minute = -1

    async def tick(self) -> None:
        now = self._clock()
        minute = int(now.timestamp() // 60)
        if minute != self._sampled_minute:
            self._sampled_minute = minute
            self._sample_prices(now.timestamp())
        await self._events.process(self._lifecycle)
        self._expire_pending(self._clock(), time.monotonic(), self._snapshot_wait_s)


class HeapFreezer:
    """Freezes the heap once the books are loaded (see the module doc)."""

    def __init__(self, books: dict[str, LiveBook]) -> None:
        self._books = books
        self._frozen = False
        self._freeze_by = time.monotonic() + FREEZE_AFTER_S

    async def settle(self) -> None:
        if self._frozen:
            return
        books = self._books
        ready = sum(1 for book in books.values() if book.ready)
        if books and (ready >= FREEZE_READY * len(books) or time.monotonic() > self._freeze_by):
            freeze_long_lived()
            self._frozen = True


def freeze_long_lived() -> None:
    """Move every object alive now out of the cyclic collector's way (see the module doc)."""
    gc.collect()
    gc.freeze()
    log.info("long-lived heap frozen", objects=gc.get_freeze_count())


class Heartbeat:
    """Until when the stream vouches for every fill, in ``instance_health``: recorded every
    ``HEARTBEAT_S`` and at stop, read back by this instance's next run to repair what it missed.
    Per instance: with two collectors, one's heartbeat says nothing of what the other saw."""

    def __init__(
        self,
        *,
        collector: str,
        instance: str,
        pool: asyncpg.Pool,
        clock: Clock,
        vouched_until: Callable[[datetime, datetime | None], datetime],
        earliest_unrecorded: Callable[[], datetime | None],
        counts: StreamCounts,
    ) -> None:
        self._collector = collector
        self._instance = instance
        self._pool = pool
        self._clock = clock
        self._vouched_until = vouched_until
        self._earliest_unrecorded = earliest_unrecorded
        self._counts = counts
        self._next = 0.0

    async def last(self) -> datetime | None:
        """Until when the previous run vouched (None: there was none)."""
        async with self._pool.acquire() as conn:
            health = {h.collector: h for h in await instance_health(conn, self._instance)}
        last = health.get(self._collector)
        return None if last is None else last.last_success_at

    async def when_due(self) -> None:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + HEARTBEAT_S
            await self.beat()

    async def beat(self) -> None:
        vouched = self._vouched_until(self._clock(), self._earliest_unrecorded())
        rows = self._counts.messages[TradePrint]
        async with self._pool.acquire() as conn:
            await record_health(
                conn, self._collector, at=vouched, ok=True, rows=rows, instance=self._instance
            )


class StaleAssetProbe:
    """Every quarter of ``asset_stale_s``: silent assets' books over REST. One the venue
    moved proves its subscription dead (its connection is replaced); one that did not is
    quiet, not lost."""

    def __init__(
        self,
        *,
        books: dict[str, LiveBook],
        clock: Clock,
        settings: WebSocketSettings,
        fetch: Callable[[Sequence[str]], Awaitable[list[OrderBook]]],
        replace_socket_of: Callable[[str, str], None],
        metrics: Metrics,
        counts: StreamCounts,
    ) -> None:
        self._books = books
        self._clock = clock
        self._settings = settings
        self._fetch = fetch
        self._replace_socket_of = replace_socket_of
        self._metrics = metrics
        self._counts = counts
        self._next = time.monotonic() + settings.asset_stale_s / 4

    async def when_due(self) -> None:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self._settings.asset_stale_s / 4
            await self.probe()

    def stale_tokens(self) -> list[str]:
        oldest = epoch_ms(self._clock() - timedelta(seconds=self._settings.asset_stale_s))
        return [t for t, b in self._books.items() if b.ready and b.heard_ms < oldest]

    async def probe(self) -> int:
        """REST-check silent assets; returns how many proved their subscription dead."""
        stale = self.stale_tokens()
        self._metrics.stale_assets.set(len(stale))
        silent = 0
        now_ms = epoch_ms(self._clock())
        for rest in await self._fetch(stale[: max(1, self._settings.crosscheck_tokens)]):
            book = self._books.get(rest.asset_id)
            if book is None:
                continue
            if epoch_ms(rest.timestamp) > book.ts_ms:
                silent += 1
                self._counts.add(StreamEvent.ASSET_SILENT)
                self._replace_socket_of(rest.asset_id, "an asset went silent")
            else:
                book.seen_ms = now_ms  # quiet, not lost
        return silent


class CountExport:
    """The growth of the stream's counters since the last export, into Prometheus: messages
    by type, the WebSocket decoder's refusals as parse errors, every other count as a stream
    event, hash checks by source and outcome."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        counts: StreamCounts,
        ws_counters: Counters,
        hash_checks: Counter[HashCheckKey],
    ) -> None:
        self._metrics = metrics
        self._counts = counts
        self._ws_counters = ws_counters
        self._hash_checks = hash_checks
        self._messages: Growth[MessageKind] = Growth()
        self._events: Growth[StreamEvent] = Growth()
        self._ws: Growth[WsCount] = Growth()
        self._hashes: Growth[HashCheckKey] = Growth()

    def export(self) -> None:
        metrics = self._metrics
        for kind, delta in self._messages.since_last(self._counts.messages):
            metrics.messages.labels(MESSAGE_LABELS[kind]).inc(delta)
        for event, delta in self._events.since_last(self._counts.events):
            metrics.stream_events.labels(event.value).inc(delta)
        for count, delta in self._ws.since_last(self._ws_counters.snapshot()):
            if count in WS_PARSE_ERRORS:
                metrics.parse_errors.labels("ws").inc(delta)
            else:
                metrics.stream_events.labels(count.value).inc(delta)
        for (source, outcome), delta in self._hashes.since_last(self._hash_checks):
            metrics.book_hashes.labels(source.value, outcome.value).inc(delta)


class Growth(Generic[K]):
    """Remembers the totals last exported, to yield only what grew since."""

    def __init__(self) -> None:
        self._exported: dict[K, int] = {}

    def since_last(self, totals: Mapping[K, int]) -> Iterator[tuple[K, int]]:
        for key, total in list(totals.items()):
            delta = total - self._exported.get(key, 0)
            if delta > 0:
                self._exported[key] = total
                yield key, delta
