"""The market WebSocket service: shards, live books, fills, repairs, features — wired.

``StreamService.run(stop)`` is a supervisor ``Service``. Each run builds its state afresh
(``StreamRun``) and owns every task in one ``TaskGroup``: the subscription manager (which owns
the connections), the flusher, the gap repairer, the book checker, the cadence writer and the
housekeeping loop. Shutdown order: the connections stop (intake ends), the flusher writes what
is queued, the others stop at their next safe point, then the last chores and the heartbeat.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from polyfarm.aio import first_of
from polyfarm.clock import Clock
from polyfarm.logs import get_logger
from polyfarm.markets.catalog import MarketCatalog
from polyfarm.metrics import Metrics
from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.data_api import DataApiClient
from polyfarm.polymarket.domain import Counters, Reject, WsMessage
from polyfarm.polymarket.ws import MarketStream
from polyfarm.settings import Settings
from polyfarm.store.ops import collector_health
from polyfarm.store.rows import BOOK_DELTAS, TRADES
from polyfarm.store.stream_writes import GapRecord, insert_gaps, markets_open_since
from polyfarm.store.writing import Writer
from polyfarm.stream.bookcheck import BookChecker
from polyfarm.stream.cadence import CadenceWriter
from polyfarm.stream.connection import STOPPED, SessionHooks, ShardConnection, Watermark
from polyfarm.stream.coverage import Coverage
from polyfarm.stream.housekeeping import Housekeeping
from polyfarm.stream.ingest import IngestConfig, StreamIngest
from polyfarm.stream.lifecycle import MarketEvents
from polyfarm.stream.livebook import LiveBook, epoch_ms
from polyfarm.stream.repair import Gap, GapRepairer
from polyfarm.stream.sink import Flusher, WriteQueue
from polyfarm.stream.subscriptions import Subscriptions

log = get_logger(__name__)

NAME = "stream"
BATCH_ROWS = 2_000
UNLISTED = "restart: markets listed and closed while the stream was down are not covered"


@dataclass(frozen=True)
class StreamDeps:
    settings: Settings
    catalog: MarketCatalog
    clob: ClobClient
    data_api: DataApiClient
    writer: Writer
    pool: asyncpg.Pool
    clock: Clock
    metrics: Metrics


class StreamService:
    """Plugs into ``Collection.services``; ``covers`` tells the REST book collector which
    tokens the stream snapshots itself."""

    name = NAME

    def __init__(self, deps: StreamDeps) -> None:
        self.deps = deps
        self.current: StreamRun | None = None

    def covers(self, token_id: str) -> bool:
        run = self.current
        return run is not None and run.covers(token_id)

    async def run(self, stop: asyncio.Event) -> None:
        run = StreamRun(self.deps)
        self.current = run
        try:
            await run.run(stop)
        finally:
            run.finished = True


class StreamRun:
    """Everything one run of the service holds; built afresh after a restart."""

    def __init__(self, deps: StreamDeps) -> None:
        ws = deps.settings.websocket
        self.deps, self.ws = deps, ws
        self.finished = False
        self.counts: Counter[str] = Counter()
        self.ws_counters = Counters()
        self.books: dict[str, LiveBook] = {}
        self.checker = BookChecker(self.books, deps.clob, ws, self.counts)
        self.trades = WriteQueue(TRADES, ws.queue_rows)
        self.deltas = WriteQueue(BOOK_DELTAS, ws.queue_rows)
        self.flusher = Flusher(
            deps.writer, [self.trades, self.deltas], interval_s=ws.flush_interval_s,
            batch_rows=BATCH_ROWS, metrics=deps.metrics,
        )  # fmt: skip
        self.repairer = self._repairer()
        self.coverage = Coverage(timedelta(seconds=ws.gap_margin_s), self._submit_gap)
        self.housekeeping = Housekeeping(self)
        self.ingest = self._ingest()
        self.cadence = CadenceWriter(
            books=self.books, activity=self.ingest.activity, catalog=deps.catalog,
            settings=deps.settings, writer=deps.writer,
            clock=deps.clock,
        )  # fmt: skip
        self.events = MarketEvents(
            pool=deps.pool, catalog=deps.catalog, tiers=deps.settings.tiers, clock=deps.clock,
            changed=self.resync,
        )  # fmt: skip
        self.subscriptions = self._subscriptions()
        self._resync = asyncio.Event()

    def _repairer(self) -> GapRepairer:
        deps = self.deps
        return GapRepairer(
            data_api=deps.data_api, writer=deps.writer, pool=deps.pool, catalog=deps.catalog,
            clock=deps.clock, settings=self.ws, metrics=deps.metrics,
            on_rows=lambda rows: self.ingest.remember_repaired(rows),
        )  # fmt: skip

    def _ingest(self) -> StreamIngest:
        whales = self.deps.settings.whales
        return StreamIngest(
            catalog=self.deps.catalog, books=self.books, trades=self.trades,
            deltas=self.deltas, flusher=self.flusher, checker=self.checker,
            config=IngestConfig(whales.thresholds(), whales.feature_min_tier),
            submit_gap=self._submit_gap, drop_deltas=self.housekeeping.deltas_dropped,
            snapshot_arrived=self._snapshot_arrived,
        )  # fmt: skip

    def _subscriptions(self) -> Subscriptions:
        hooks = SessionHooks(
            session_started=self._session_started, first_data=self._first_data,
            session_lost=self._session_lost, handle=self._handle,
            backpressure=self._backpressure, confirm_stall=self._confirm_stall,
            frame_rejected=self._frame_rejected,
        )  # fmt: skip
        return Subscriptions(
            settings=self.deps.settings, catalog=self.deps.catalog, ingest=self.ingest,
            coverage=self.coverage, hooks=hooks, open_stream=self._open_stream,
            submit_gap=self._submit_gap,
        )  # fmt: skip

    def covers(self, token_id: str) -> bool:
        book = self.books.get(token_id)
        return not self.finished and book is not None and book.usable

    def resync(self) -> None:
        self._resync.set()

    def replace_socket_of(self, token_id: str, reason: str) -> None:
        self.subscriptions.replace_socket_of(token_id, reason)

    # -- the run --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        if not await first_of(self.deps.catalog.ready, stop):
            return
        restart_from = await self._last_heartbeat()
        self.subscriptions.coverage_start = restart_from or self.deps.clock()
        if restart_from is not None:
            await self._downtime(restart_from)
        intake_done = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.flusher.run(intake_done), name="stream:flusher")
            group.create_task(self.repairer.run(stop, intake_done), name="stream:repair")
            group.create_task(self.checker.run(stop), name="stream:bookcheck")
            group.create_task(self.cadence.run(stop), name="stream:cadence")
            group.create_task(self.housekeeping.run(stop), name="stream:housekeeping")
            group.create_task(
                self._manage(stop, group, intake_done, restart_from), name="stream:shards"
            )
        await self.housekeeping.final()

    async def _downtime(self, since: datetime) -> None:
        """The previous process vouched for fills up to ``since``. Open markets are repaired
        per connection (``restart``); markets that closed meanwhile get their own window;
        markets both listed and closed meanwhile are unknown to us, which is recorded."""
        now = self.deps.clock()
        start, end = since - self.coverage.margin, now + self.coverage.margin
        wanted = self.subscriptions.wanted()
        async with self.deps.pool.acquire() as conn:
            maybe_traded = await markets_open_since(conn, since)
            await insert_gaps(conn, [GapRecord("ws_trades", None, None, start, end, UNLISTED)])
        closed = tuple(m for m in maybe_traded if m not in wanted)
        if closed:
            self._submit_gap(Gap(closed, start, end, "restart (closed meanwhile)"))

    async def _last_heartbeat(self) -> datetime | None:
        async with self.deps.pool.acquire() as conn:
            health = {h.collector: h for h in await collector_health(conn)}
        last = health.get(NAME)
        return None if last is None else last.last_success_at

    async def _manage(
        self,
        stop: asyncio.Event,
        group: asyncio.TaskGroup,
        intake_done: asyncio.Event,
        restart_from: datetime | None,
    ) -> None:
        subscriptions = self.subscriptions
        try:
            while not stop.is_set():
                await subscriptions.sync(group, self.deps.clock(), restart_from)
                self.deps.metrics.ws_connected.set(subscriptions.connected())
                restart_from = None
                self._resync.clear()
                await first_of(self._resync, stop, within_s=self.ws.subscription_sync_s)
        finally:
            await subscriptions.stop_all()
            self.coverage.stream_stopped(self.deps.clock())
            intake_done.set()

    def _submit_gap(self, gap: Gap) -> None:
        self.repairer.submit(gap)
        self.housekeeping.window_lost(gap)

    def _open_stream(self, assets: list[str]) -> MarketStream:
        return MarketStream(
            self.deps.settings.ws_url,
            assets,
            settings=self.ws,
            counters=self.ws_counters,
            user_agent=self.deps.settings.rate_limits.user_agent,
            wall_clock=self.deps.clock,
        )

    # -- connection hooks -----------------------------------------------------------------------

    def _session_started(self, conn: ShardConnection) -> None:
        self.ingest.invalidate(conn.assets)
        self.coverage.session_started(conn.shard)

    def _first_data(self, conn: ShardConnection) -> None:
        markets = self.subscriptions.markets_on(conn.shard)
        self.coverage.first_data(conn.shard, markets, self.deps.clock())

    def _session_lost(self, conn: ShardConnection, reason: str) -> None:
        self.coverage.session_lost(conn.shard, conn.mark.ms, reason)
        if reason != STOPPED:
            self.deps.metrics.reconnects.labels(reason).inc()
            log.info("ws connection lost", shard=conn.shard, reason=reason)

    def _frame_rejected(self, conn: ShardConnection, reject: Reject) -> None:
        now = self.deps.clock()
        self.coverage.frame_lost(self.subscriptions.markets_on(conn.shard), conn.mark.ms, now)
        self.housekeeping.frame_rejected(reject, now)

    async def _confirm_stall(self, conn: ShardConnection) -> bool:
        now_ms = epoch_ms(self.deps.clock())
        moved = await self.checker.venue_moved(list(conn.assets), now_ms)
        if not moved:
            markets = self.subscriptions.markets_on(conn.shard)
            self.coverage.venue_quiet(conn.shard, markets, self.deps.clock())
        return moved

    def _handle(self, message: WsMessage, stamp: float, mark: Watermark) -> None:
        self.ingest.handle(message, stamp, mark)

    def _backpressure(self) -> Awaitable[None] | None:
        if not self.trades.full:
            return None
        self.counts["backpressure"] += 1
        return self.trades.wait_for_space()

    def _snapshot_arrived(self, token_id: str) -> None:
        if not self.coverage.pending_markets:
            return
        market_id = self.deps.catalog.token_market.get(token_id)
        if market_id is not None:
            self.coverage.snapshot_arrived(market_id, self.deps.clock())
