"""The stream's subscriptions: which markets are wanted, on which connection, since when.

``Subscriptions.sync`` brings the connections in line with the catalogue (open markets of the
WebSocket tiers, order book enabled): new connections are opened as tasks of the stream's
``TaskGroup``, live ones get ``subscribe``/``unsubscribe`` frames, empty ones are closed. It
also tells ``Coverage`` from when each market's fills are wanted, so every window between
"wanted" and "covered" is repaired. A market the stream did not know when it started is wanted
from its birth or, when its ``createdAt`` is older than the start (recurring series markets are
created hours before they are listed and trade), from when this process first heard of it;
both reach ``NEW_MARKET_LOOKBACK`` back, as a listing can trade before we see it. That holds
even when it closed before it could be subscribed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from polyfarm.markets.catalog import MarketCatalog
from polyfarm.markets.tracked import BookSeed, TrackedMarket
from polyfarm.polymarket.domain import Reject
from polyfarm.polymarket.ws import MarketStream
from polyfarm.settings import Settings
from polyfarm.stream.connection import SessionHooks, ShardConnection
from polyfarm.stream.coverage import Coverage
from polyfarm.stream.ingest import StreamIngest
from polyfarm.stream.repair import Gap, GapCause
from polyfarm.stream.shards import ShardChange, ShardPlan

NEW_MARKET_LOOKBACK = timedelta(hours=1)


@dataclass
class Shard:
    connection: ShardConnection
    stop: asyncio.Event
    task: asyncio.Task[None]


@dataclass
class Subscriptions:
    settings: Settings
    catalog: MarketCatalog
    ingest: StreamIngest
    coverage: Coverage
    hooks: SessionHooks
    open_stream: Callable[[list[str], Callable[[Reject], None]], MarketStream]
    submit_gap: Callable[[Gap], None]
    plan: ShardPlan = field(init=False)
    shards: dict[int, Shard] = field(default_factory=dict)
    coverage_start: datetime | None = None
    _considered: set[str] = field(default_factory=set)  # markets a sync has looked at
    # Markets unknown when the stream started → when a sync first saw them.
    _discovered: dict[str, datetime] = field(default_factory=dict)
    _synced: bool = False  # the first sync learns what the start knew

    def __post_init__(self) -> None:
        self.plan = ShardPlan(self.settings.websocket.assets_per_connection)

    def wanted(self) -> dict[str, tuple[str, ...]]:
        tiers = set(self.settings.tiers.websocket_tiers)
        return {
            market.market_id: market.token_ids
            for market in self.catalog.open_markets()
            if market.enable_order_book and market.tier in tiers and market.token_ids
        }

    async def sync(
        self, group: asyncio.TaskGroup, now: datetime, restart_from: datetime | None = None
    ) -> None:
        wanted = self.wanted()
        self._unseen_newcomers(wanted, now)
        for change in self.plan.sync(wanted):
            await self._apply(change, group, now, restart_from)
            # The first sync opens every shard (200 at the venue, 40,000 live books): the
            # sockets already open get to answer between two shards.
            await asyncio.sleep(0)
        self.ingest.reseed(self._seed_of)
        capture = set(self.settings.websocket.capture_delta_tiers)
        books = self.ingest.books
        self.ingest.set_capture(
            {
                token: market.market_id
                for market in self.catalog.open_markets()
                if market.tier in capture
                for token in market.token_ids
                if token in books
            }
        )

    def _seed_of(self, token_id: str) -> BookSeed | None:
        market = self.catalog.market_of(token_id)
        return None if market is None else market.book_seed

    def connected(self) -> int:
        return sum(1 for shard in self.shards.values() if shard.connection.stream is not None)

    async def stop_all(self) -> None:
        for shard in self.shards.values():
            shard.stop.set()
        await asyncio.gather(*(shard.task for shard in self.shards.values()))

    def replace_socket_of(self, token_id: str, reason: str) -> None:
        market_id = self.catalog.token_market.get(token_id)
        shard = None if market_id is None else self.plan.shard_of(market_id)
        if shard is not None and shard in self.shards:
            self.shards[shard].connection.replace_socket(reason)

    def markets_on(self, shard: int) -> list[str]:
        return list(self.plan.markets.get(shard, {}))

    # -- changes --------------------------------------------------------------------------------

    async def _apply(
        self,
        change: ShardChange,
        group: asyncio.TaskGroup,
        now: datetime,
        restart_from: datetime | None,
    ) -> None:
        for token in change.subscribe:
            market = self.catalog.market_of(token)
            if market is None:
                self.ingest.track(token, "")
            else:
                self.ingest.track(token, market.condition_id, market.book_seed)
        left = self._markets_of(change.unsubscribe)
        self.coverage.markets_left(change.shard, [m.market_id for m in left], now)
        for market in left:
            self.coverage.market_removed(market.market_id, now)
        for token in change.unsubscribe:
            self.ingest.untrack(token)
        if change.opened:
            self._open(change, group, now, restart_from)
        elif change.closed:
            self._close(change.shard)
        else:
            self._note_markets(change.subscribe, now, live=True)
            await self.shards[change.shard].connection.update(change.subscribe, change.unsubscribe)

    def _open(
        self,
        change: ShardChange,
        group: asyncio.TaskGroup,
        now: datetime,
        restart_from: datetime | None,
    ) -> None:
        if restart_from is not None:  # the previous process vouched up to then
            since = restart_from - self.coverage.margin
            self.coverage.shard_opened(change.shard, since, GapCause.RESTART)
        else:
            self.coverage.shard_opened(change.shard, now)
        self._note_markets(change.subscribe, now, live=False)
        connection = ShardConnection(
            shard=change.shard,
            assets=dict.fromkeys(change.subscribe),
            open_stream=self.open_stream,
            settings=self.settings.websocket,
            hooks=self.hooks,
        )
        stop = asyncio.Event()
        task = group.create_task(connection.run(stop), name=f"stream:shard-{change.shard}")
        self.shards[change.shard] = Shard(connection, stop, task)

    def _close(self, shard: int) -> None:
        entry = self.shards.pop(shard, None)
        if entry is not None:
            entry.stop.set()  # the task ends by itself; the group still owns it
        self.coverage.shard_closed(shard)

    # -- from when fills are wanted -------------------------------------------------------------

    def _note_markets(self, tokens: tuple[str, ...], now: datetime, *, live: bool) -> None:
        """Markets added to a live connection are covered from their first snapshot on; on a
        new connection its own first data covers them, unless they were born since the start."""
        for market in self._markets_of(tokens):
            since = self.wanted_since(market)
            if since is not None:
                self.coverage.market_added(
                    market.market_id, min(since, now), GapCause.NEW_MARKET, time.monotonic()
                )
            elif live:
                self.coverage.market_added(
                    market.market_id, now, GapCause.SUBSCRIBED, time.monotonic()
                )

    def wanted_since(self, market: TrackedMarket) -> datetime | None:
        """For a market unknown when the stream started: from when its fills are wanted."""
        start, discovered = self.coverage_start, self._discovered.get(market.market_id)
        if start is None or discovered is None:
            return None
        born = market.created_at
        listed = born if born is not None and start < born < discovered else discovered
        return max(start, listed - NEW_MARKET_LOOKBACK)

    def _unseen_newcomers(self, wanted: dict[str, tuple[str, ...]], now: datetime) -> None:
        """Markets unknown at the start that closed before we could subscribe: their life
        is repaired from the Data API."""
        known_at_start, self._synced = not self._synced, True
        self._forget_gone_markets()
        for market_id, market in self.catalog.markets.items():
            if market_id in self._considered:
                continue
            self._considered.add(market_id)
            if known_at_start:
                continue
            self._discovered[market_id] = now
            since = self.wanted_since(market)
            if since is not None and market_id not in wanted:
                end = now + self.coverage.margin
                self.submit_gap(Gap((market_id,), since, end, GapCause.NEVER_SUBSCRIBED))

    def _forget_gone_markets(self) -> None:
        """The catalogue forgets markets long closed; so does this, or it would keep every
        market the venue ever listed."""
        markets = self.catalog.markets
        self._considered.intersection_update(markets)
        for market_id in [m for m in self._discovered if m not in markets]:
            del self._discovered[market_id]

    def _markets_of(self, tokens: tuple[str, ...]) -> list[TrackedMarket]:
        catalog = self.catalog
        ids = dict.fromkeys(m for t in tokens if (m := catalog.token_market.get(t)) is not None)
        return [catalog.markets[m] for m in ids]
