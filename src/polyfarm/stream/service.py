"""The market WebSocket service: shards, live books, fills, repairs, features — wired.

``StreamService.run(stop)`` is a supervisor ``Service``. Each run builds its state afresh
(``StreamRun``) and owns every task in one ``TaskGroup``: the subscription manager (which owns
the connections), the flusher, the gap repairer, the book checker, the cadence writer and the
housekeeping loop. Shutdown order: the connections stop (intake ends), the flusher writes what
is queued, the others stop at their next safe point, then the last chores and the heartbeat.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Awaitable, Callable
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
from polyfarm.polymarket.domain import Counters, Reject
from polyfarm.polymarket.ws import MarketStream
from polyfarm.settings import Settings
from polyfarm.store.disk import PressureReading
from polyfarm.store.rows import BOOK_DELTAS, TRADES
from polyfarm.store.stream_writes import GapRecord, insert_gaps, markets_open_since
from polyfarm.store.writing import Writer
from polyfarm.stream.bookcheck import BookChecker
from polyfarm.stream.cadence import CadenceWriter
from polyfarm.stream.connection import SessionEnd, SessionHooks, ShardConnection
from polyfarm.stream.counts import StreamCounts, StreamEvent
from polyfarm.stream.coverage import Coverage
from polyfarm.stream.fills import FillMemory, WhaleLog
from polyfarm.stream.housekeeping import (
    ChoreLoop,
    CountExport,
    HeapFreezer,
    Heartbeat,
    MarketUpkeep,
    StaleAssetProbe,
)
from polyfarm.stream.ingest import StreamIngest
from polyfarm.stream.lifecycle import MarketEvents
from polyfarm.stream.livebook import LiveBook, epoch_ms
from polyfarm.stream.losses import DeltaGapLog, StreamQuarantine
from polyfarm.stream.repair import Gap, GapCause, GapRepairer
from polyfarm.stream.rolling import TokenActivity
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
    disk: PressureReading  # what the disk budget allows: book_deltas, far-tier cadences


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
    """Everything one run of the service holds; built afresh after a restart, in dependency
    order: what the receive path feeds first, then the receive path, the connections, and the
    chores that look after all of it."""

    def __init__(self, deps: StreamDeps) -> None:
        ws, whales = deps.settings.websocket, deps.settings.whales
        self.deps, self.ws = deps, ws
        self.finished = False
        self._resync = asyncio.Event()
        self.counts = StreamCounts()
        self.ws_counters = Counters()
        self.books: dict[str, LiveBook] = {}
        self.activity: dict[str, TokenActivity] = {}
        self.checker = BookChecker(self.books, deps.clob, ws, self.counts)
        self.trades = WriteQueue(TRADES, ws.queue_rows)
        # A message's rows share its receive time and market.
        self.deltas = WriteQueue(
            BOOK_DELTAS, ws.queue_rows, message_of=operator.attrgetter("received_at", "market_id")
        )
        self.flusher = Flusher(
            deps.writer, [self.trades, self.deltas], interval_s=ws.flush_interval_s,
            batch_rows=BATCH_ROWS, metrics=deps.metrics,
        )  # fmt: skip
        # -- what is lost or learnt on the way ---------------------------------------------
        self.whales = WhaleLog(
            pool=deps.pool, clock=deps.clock, books=self.books, activity=self.activity
        )
        self.fills = FillMemory(
            activity=self.activity, whales=self.whales,
            whale_thresholds=whales.thresholds(), whale_feature_tier=whales.feature_min_tier,
        )  # fmt: skip
        self.repairer = GapRepairer(
            data_api=deps.data_api, writer=deps.writer, pool=deps.pool, catalog=deps.catalog,
            clock=deps.clock, settings=ws, metrics=deps.metrics,
            on_rows=self.fills.remember_repaired,
        )  # fmt: skip
        self.delta_gaps = DeltaGapLog(
            books=self.books, catalog=deps.catalog, pool=deps.pool, metrics=deps.metrics
        )
        self.quarantine = StreamQuarantine(pool=deps.pool, counts=self.counts)
        self.coverage = Coverage(timedelta(seconds=ws.gap_margin_s), self._submit_gap)
        # -- the receive path and the connections ----------------------------------------
        self.ingest = StreamIngest(
            catalog=deps.catalog, books=self.books, activity=self.activity, fills=self.fills,
            trades=self.trades, deltas=self.deltas, flusher=self.flusher, checker=self.checker,
            counts=self.counts, submit_gap=self._submit_gap, disk=deps.disk,
            drop_deltas=self.delta_gaps.deltas_dropped, snapshot_arrived=self._snapshot_arrived,
        )  # fmt: skip
        self.subscriptions = Subscriptions(
            settings=deps.settings, catalog=deps.catalog, ingest=self.ingest,
            coverage=self.coverage, hooks=self._session_hooks(), open_stream=self._open_stream,
            submit_gap=self._submit_gap,
        )  # fmt: skip
        # -- the tasks beside the receive path -------------------------------------------
        self.cadence = CadenceWriter(
            books=self.books, activity=self.activity, catalog=deps.catalog,
            settings=deps.settings, writer=deps.writer, clock=deps.clock, disk=deps.disk,
        )  # fmt: skip
        self.heartbeat = Heartbeat(
            collector=NAME, instance=deps.settings.instance, pool=deps.pool, clock=deps.clock,
            vouched_until=self.coverage.vouched_until,
            earliest_unrecorded=self.repairer.earliest_unrecorded, counts=self.counts,
        )  # fmt: skip
        self.chores = self._chores()

    def _session_hooks(self) -> SessionHooks:
        return SessionHooks(
            session_started=self._session_started, first_data=self._first_data,
            session_lost=self._session_lost, handle=self.ingest.handle,
            backpressure=self._backpressure, confirm_stall=self._confirm_stall,
            frame_rejected=self._frame_rejected,
        )  # fmt: skip

    def _chores(self) -> ChoreLoop:
        deps = self.deps
        upkeep = MarketUpkeep(
            clock=deps.clock, sample_prices=self.ingest.sample_prices,
            lifecycle=self.ingest.lifecycle, expire_pending=self.coverage.expire_pending,
            snapshot_wait_s=self.ws.stall_timeout_s,
            events=MarketEvents(
                pool=deps.pool, catalog=deps.catalog, tiers=deps.settings.tiers,
                clock=deps.clock, changed=self.resync,
            ),
        )  # fmt: skip
        probe = StaleAssetProbe(
            books=self.books, clock=deps.clock, settings=self.ws, fetch=self.checker.fetch,
            replace_socket_of=self.subscriptions.replace_socket_of, metrics=deps.metrics,
            counts=self.counts,
        )  # fmt: skip
        export = CountExport(
            metrics=deps.metrics, counts=self.counts, ws_counters=self.ws_counters,
            hash_checks=self.checker.hash_checks,
        )  # fmt: skip
        stores = (self.whales.store, self.delta_gaps.store, self.quarantine.store)
        return ChoreLoop(
            every_tick=(
                HeapFreezer(self.books).settle, upkeep.tick, *stores,
                self.heartbeat.when_due, probe.when_due,
            ),
            at_stop=(*stores, self.heartbeat.beat),  # what the last ticks left; the heartbeat last
            export=export.export,
        )  # fmt: skip

    def covers(self, token_id: str) -> bool:
        book = self.books.get(token_id)
        return not self.finished and book is not None and book.usable

    def resync(self) -> None:
        self._resync.set()

    # -- the run --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; then the connections stop (the intake ends), the flusher writes
        what is queued, the other tasks stop at their next safe point, and last the final
        chores and the heartbeat."""
        if not await first_of(self.deps.catalog.ready, stop):
            return
        restart_from = await self.heartbeat.last()
        self.subscriptions.coverage_start = restart_from or self.deps.clock()
        if restart_from is not None:
            await self._downtime(restart_from)
        intake_done = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.flusher.run(intake_done), name="stream:flusher")
            group.create_task(self.repairer.run(stop, intake_done), name="stream:repair")
            group.create_task(self.checker.run(stop), name="stream:bookcheck")
            group.create_task(self.cadence.run(stop), name="stream:cadence")
            group.create_task(self.chores.run(stop), name="stream:housekeeping")
            group.create_task(
                self._manage(stop, group, intake_done, restart_from), name="stream:shards"
            )
        await self.chores.final()

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
            self._submit_gap(Gap(closed, start, end, GapCause.CLOSED_WHILE_DOWN))

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
        self.delta_gaps.window_lost(gap)

    def _open_stream(self, assets: list[str], on_reject: Callable[[Reject], None]) -> MarketStream:
        return MarketStream(
            self.deps.settings.ws_url,
            assets,
            settings=self.ws,
            counters=self.ws_counters,
            user_agent=self.deps.settings.rate_limits.user_agent,
            wall_clock=self.deps.clock,
            on_reject=on_reject,
        )

    # -- connection hooks -----------------------------------------------------------------------

    def _session_started(self, conn: ShardConnection) -> None:
        self.ingest.invalidate(conn.assets)
        self.coverage.session_started(conn.shard)

    def _first_data(self, conn: ShardConnection) -> None:
        markets = self.subscriptions.markets_on(conn.shard)
        self.coverage.first_data(conn.shard, markets, self.deps.clock())

    def _session_lost(self, conn: ShardConnection, end: SessionEnd) -> None:
        self.coverage.session_lost(conn.shard, conn.mark.ms, end)
        if end is not SessionEnd.STOPPED:
            self.deps.metrics.reconnects.labels(end.value).inc()
            log.info("ws connection lost", shard=conn.shard, reason=end.value)

    def _frame_rejected(self, conn: ShardConnection, reject: Reject) -> None:
        now = self.deps.clock()
        self.coverage.frame_lost(self.subscriptions.markets_on(conn.shard), conn.mark.ms, now)
        self.quarantine.frame_rejected(reject, now)

    async def _confirm_stall(self, conn: ShardConnection) -> bool:
        now_ms = epoch_ms(self.deps.clock())
        moved = await self.checker.venue_moved(list(conn.assets), now_ms)
        if not moved:
            markets = self.subscriptions.markets_on(conn.shard)
            self.coverage.venue_quiet(conn.shard, markets, self.deps.clock())
        return moved

    def _backpressure(self) -> Awaitable[None] | None:
        if not self.trades.full:
            return None
        self.counts.add(StreamEvent.BACKPRESSURE)
        return self.trades.wait_for_space()

    def _snapshot_arrived(self, token_id: str) -> None:
        if not self.coverage.pending_markets:
            return
        market_id = self.deps.catalog.token_market.get(token_id)
        if market_id is not None:
            self.coverage.snapshot_arrived(market_id, self.deps.clock())
