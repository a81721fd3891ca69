"""The market WebSocket service: shards, live books, fills, repairs, features — wired.

``StreamService.run(stop)`` is a supervisor ``Service``. Each run builds its state afresh
(``StreamRun``) and owns every task in one ``TaskGroup``: the shard manager (which owns the
connections), the flusher, the gap repairer, the book checker, the cadence writer and the
housekeeping loop. Shutdown order: the connections stop (intake ends), the flusher writes what
is queued, the rest stop at their next safe point.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from polyfarm.collect.catalog import MarketCatalog, TrackedMarket
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.data_api import DataApiClient
from polyfarm.polymarket.domain import Counters, WsMessage
from polyfarm.polymarket.ws import MarketStream
from polyfarm.settings import Settings
from polyfarm.store.ops import collector_health
from polyfarm.store.rows import BOOK_DELTAS, TRADES
from polyfarm.store.stream_writes import GapRecord, insert_gaps, markets_open_since
from polyfarm.store.writer import BulkWriter
from polyfarm.stream.bookcheck import BookChecker
from polyfarm.stream.cadence import CadenceWriter
from polyfarm.stream.connection import STOPPED, SessionHooks, ShardConnection, Watermark
from polyfarm.stream.coverage import Coverage
from polyfarm.stream.housekeeping import Housekeeping
from polyfarm.stream.ingest import IngestConfig, StreamIngest
from polyfarm.stream.lifecycle import MarketEvents
from polyfarm.stream.livebook import LiveBook, epoch_ms
from polyfarm.stream.repair import Gap, GapRepairer
from polyfarm.stream.shards import ShardChange, ShardPlan
from polyfarm.stream.sink import Flusher, WriteQueue

log = get_logger(__name__)

NAME = "stream"
BATCH_ROWS = 2_000
NEW_MARKET_LOOKBACK = timedelta(hours=1)
UNLISTED = "restart: markets listed and closed while the stream was down are not covered"


@dataclass(frozen=True)
class StreamDeps:
    settings: Settings
    catalog: MarketCatalog
    clob: ClobClient
    data_api: DataApiClient
    writer: BulkWriter
    pool: asyncpg.Pool
    clock: Callable[[], datetime]
    metrics: Metrics
    book_cadence: Callable[[TrackedMarket], float]


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
            deps.writer,
            [self.trades, self.deltas],
            interval_s=ws.flush_interval_s,
            batch_rows=BATCH_ROWS,
            metrics=deps.metrics,
        )
        self.repairer = GapRepairer(
            data_api=deps.data_api,
            writer=deps.writer,
            pool=deps.pool,
            catalog=deps.catalog,
            clock=deps.clock,
            settings=ws,
            on_rows=lambda rows: self.ingest.remember_repaired(rows),
            metrics=deps.metrics,
        )
        self.coverage = Coverage(timedelta(seconds=ws.gap_margin_s), self._submit_gap)
        self.housekeeping = Housekeeping(self)
        self.ingest = StreamIngest(
            catalog=deps.catalog,
            config=IngestConfig(
                deps.settings.whales.thresholds(), deps.settings.whales.feature_min_tier
            ),
            books=self.books,
            trades=self.trades,
            deltas=self.deltas,
            flusher=self.flusher,
            checker=self.checker,
            submit_gap=self._submit_gap,
            drop_deltas=self.housekeeping.deltas_dropped,
            snapshot_arrived=self._snapshot_arrived,
        )
        self.cadence = CadenceWriter(
            books=self.books,
            activity=self.ingest.activity,
            catalog=deps.catalog,
            settings=deps.settings,
            book_cadence=deps.book_cadence,
            writer=deps.writer,
            clock=deps.clock,
        )
        self.plan = ShardPlan(ws.assets_per_connection)
        self.events = MarketEvents(
            pool=deps.pool,
            catalog=deps.catalog,
            tiers=deps.settings.tiers,
            clock=deps.clock,
            changed=self.resync,
        )
        self.connections: dict[int, tuple[ShardConnection, asyncio.Event, asyncio.Task[None]]] = {}
        self.hooks = SessionHooks(
            session_started=self._session_started,
            first_data=self._first_data,
            session_lost=self._session_lost,
            handle=self._handle,
            backpressure=self._backpressure,
            confirm_stall=self._confirm_stall,
        )
        self.coverage_start: datetime | None = None
        self._considered: set[str] = set()  # markets the subscription sync has looked at
        self._resync = asyncio.Event()

    def covers(self, token_id: str) -> bool:
        book = self.books.get(token_id)
        return not self.finished and book is not None and book.usable

    def resync(self) -> None:
        self._resync.set()

    # -- the run --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        if not await _first_of(self.deps.catalog.ready, stop):
            return
        restart_from = await self._last_heartbeat()
        self.coverage_start = restart_from or self.deps.clock()
        if restart_from is not None:
            await self._downtime(restart_from)
        intake_done = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.flusher.run(intake_done), name="stream:flusher")
            group.create_task(self.repairer.run(stop), name="stream:repair")
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
        wanted = self.wanted()
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
        try:
            while not stop.is_set():
                await self.sync(group, restart_from)
                restart_from = None
                self._resync.clear()
                await _first_of(self._resync, stop, within_s=self.ws.subscription_sync_s)
        finally:
            for _, shard_stop, _ in self.connections.values():
                shard_stop.set()
            await asyncio.gather(*(task for _, _, task in self.connections.values()))
            intake_done.set()

    # -- subscriptions --------------------------------------------------------------------------

    def wanted(self) -> dict[str, tuple[str, ...]]:
        tiers = set(self.deps.settings.tiers.websocket_tiers)
        return {
            market.market_id: market.token_ids
            for market in self.deps.catalog.open_markets()
            if market.enable_order_book and market.tier in tiers and market.token_ids
        }

    async def sync(self, group: asyncio.TaskGroup, restart_from: datetime | None = None) -> None:
        now = self.deps.clock()
        wanted = self.wanted()
        self._unseen_newcomers(wanted, now)
        for change in self.plan.sync(wanted):
            await self._apply(change, group, now, restart_from)
        capture = set(self.ws.capture_delta_tiers)
        self.ingest.set_capture(
            {
                token: market.market_id
                for market in self.deps.catalog.open_markets()
                if market.tier in capture
                for token in market.token_ids
                if token in self.books
            }
        )
        self.deps.metrics.ws_connected.set(
            sum(1 for conn, _, _ in self.connections.values() if conn.stream is not None)
        )

    async def _apply(
        self,
        change: ShardChange,
        group: asyncio.TaskGroup,
        now: datetime,
        restart_from: datetime | None,
    ) -> None:
        catalog = self.deps.catalog
        for token in change.subscribe:
            market = catalog.market_of(token)
            self.ingest.track(token, market.condition_id if market else "")
        for token in change.unsubscribe:
            self.ingest.untrack(token)
            if (market_id := catalog.token_market.get(token)) is not None:
                self.coverage.market_removed(market_id, now)
        if change.opened:
            self._open(change, group, now, restart_from)
        elif change.closed:
            self._close(change.shard)
        else:
            conn = self.connections[change.shard][0]
            self._note_added(change.subscribe, now)
            await conn.update(change.subscribe, change.unsubscribe)

    def _open(
        self,
        change: ShardChange,
        group: asyncio.TaskGroup,
        now: datetime,
        restart_from: datetime | None,
    ) -> None:
        since, reason = (restart_from, "restart") if restart_from else (now, "connect")
        self.coverage.shard_opened(change.shard, since - self.coverage.margin, reason)
        self._note_new_markets(change.subscribe, now)
        conn = ShardConnection(
            shard=change.shard,
            assets=dict.fromkeys(change.subscribe),
            open_stream=self._open_stream,
            settings=self.ws,
            hooks=self.hooks,
        )
        shard_stop = asyncio.Event()
        task = group.create_task(conn.run(shard_stop), name=f"stream:shard-{change.shard}")
        self.connections[change.shard] = (conn, shard_stop, task)

    def _close(self, shard: int) -> None:
        entry = self.connections.pop(shard, None)
        if entry is not None:
            entry[1].set()
        self.coverage.shard_closed(shard)

    def _note_added(self, tokens: tuple[str, ...], now: datetime) -> None:
        """Markets added to a live connection: covered from their first snapshot on."""
        for market in self._markets_of(tokens):
            since = self._born_since_start(market)
            if since is not None:
                self.coverage.market_added(
                    market.market_id, min(since, now), "new market", time.monotonic()
                )
            else:
                self.coverage.market_added(market.market_id, now, "subscribed", time.monotonic())

    def _note_new_markets(self, tokens: tuple[str, ...], now: datetime) -> None:
        """On a new connection, only markets born after the stream started need more."""
        for market in self._markets_of(tokens):
            since = self._born_since_start(market)
            if since is not None:
                self.coverage.market_added(
                    market.market_id, min(since, now), "new market", time.monotonic()
                )

    def _born_since_start(self, market: TrackedMarket) -> datetime | None:
        """For a market created after the stream started: from when its fills are wanted.

        A market can trade before it is announced (the announcement lags its listing), so the
        window reaches ``NEW_MARKET_LOOKBACK`` further back, never before the stream's start.
        """
        born, start = market.created_at, self.coverage_start
        if born is None or start is None or born <= start:
            return None
        return max(start, born - NEW_MARKET_LOOKBACK)

    def _unseen_newcomers(self, wanted: dict[str, tuple[str, ...]], now: datetime) -> None:
        """Markets born after the start that closed before we could subscribe: their life
        is repaired from the Data API."""
        for market_id, market in self.deps.catalog.markets.items():
            if market_id in self._considered:
                continue
            self._considered.add(market_id)
            since = self._born_since_start(market)
            if since is not None and market_id not in wanted:
                end = now + self.coverage.margin
                self._submit_gap(Gap((market_id,), since, end, "new market never subscribed"))

    def _markets_of(self, tokens: tuple[str, ...]) -> list[TrackedMarket]:
        catalog = self.deps.catalog
        ids = dict.fromkeys(m for t in tokens if (m := catalog.token_market.get(t)) is not None)
        return [catalog.markets[m] for m in ids]

    def replace_socket_of(self, token_id: str, reason: str) -> None:
        market_id = self.deps.catalog.token_market.get(token_id)
        shard = None if market_id is None else self.plan.shard_of(market_id)
        if shard is not None and shard in self.connections:
            self.connections[shard][0].replace_socket(reason)

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
        markets = self.plan.markets.get(conn.shard, {})
        self.coverage.first_data(conn.shard, list(markets), self.deps.clock())

    def _session_lost(self, conn: ShardConnection, reason: str) -> None:
        self.coverage.session_lost(conn.shard, conn.mark.ms, reason)
        if reason != STOPPED:
            self.deps.metrics.reconnects.labels(reason).inc()
            log.info("ws connection lost", shard=conn.shard, reason=reason)

    async def _confirm_stall(self, conn: ShardConnection) -> bool:
        now_ms = epoch_ms(self.deps.clock())
        return await self.checker.venue_moved(list(conn.assets), now_ms)

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


async def _first_of(
    wanted: asyncio.Event, stop: asyncio.Event, within_s: float | None = None
) -> bool:
    """Wait for ``wanted`` unless ``stop`` (or ``within_s`` seconds) comes first."""
    waits = {asyncio.ensure_future(wanted.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waits, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waits:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
    return wanted.is_set() and not stop.is_set()
