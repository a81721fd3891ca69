"""``new_market`` and ``market_resolved``: the database and the catalogue change at once.

A market announced on the WebSocket is stored (market and tokens) and added to the catalogue,
so the shards subscribe to it within a sync; its fills from creation until then are repaired
like any lost window. A resolution is recorded (``method = ws_market_resolved``), the market
closed and its tokens unsubscribed; the metadata and resolution scans later fill in the rest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import asyncpg
import orjson

from polyfarm.clock import Clock
from polyfarm.logs import get_logger
from polyfarm.markets.catalog import MarketCatalog
from polyfarm.markets.records import market_record, token_records
from polyfarm.markets.tracked import TrackedMarket
from polyfarm.polymarket.domain import MarketInfo, MarketResolved, NewMarket, TokenInfo
from polyfarm.settings import TierSettings
from polyfarm.store.dimensions import (
    ResolutionRecord,
    record_resolutions,
    upsert_markets,
    upsert_tokens,
)
from polyfarm.store.stream_writes import mark_market_closed

log = get_logger(__name__)


def announced_market(message: NewMarket) -> MarketInfo | None:
    """The catalogue's view of a ``new_market`` message; None without a market id."""
    if message.market_id is None or not message.asset_ids:
        return None
    outcomes = message.outcomes or tuple(f"Outcome {i}" for i in range(len(message.asset_ids)))
    tokens = tuple(
        TokenInfo(index=i, outcome=outcome, token_id=token, price=None)
        for i, (outcome, token) in enumerate(zip(outcomes, message.asset_ids, strict=False))
    )
    return MarketInfo(
        market_id=message.market_id,
        condition_id=message.condition_id,
        question=message.question or "",
        slug=message.slug,
        tokens=tokens,
        active=True,
        closed=False,
        enable_order_book=True,
        group_item_title=message.group_item_title,
        event_id=message.event_id,
        event_slug=message.event_slug,
        tick_size=message.tick_size,
        created_at=message.timestamp,
        start_date=message.timestamp,
        # The announcement does not say which scheme chose its ids; the next scan will.
        protocol_version=None,
    )


def ws_resolution(message: MarketResolved, market: TrackedMarket) -> ResolutionRecord:
    winner = message.winning_asset_id
    prices = {
        outcome: (1.0 if token == winner else 0.0) if winner else None
        for outcome, token in zip(market.outcomes, market.token_ids, strict=False)
    }
    return ResolutionRecord(
        market_id=market.market_id,
        condition_id=market.condition_id,
        resolved_at=message.timestamp,
        outcome_kind="winner" if winner else "unknown",
        winning_outcome=message.winning_outcome,
        winning_token_id=winner,
        final_prices=orjson.dumps(prices).decode(),
        method="ws_market_resolved",
        source="ws",
    )


class MarketEvents:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        catalog: MarketCatalog,
        tiers: TierSettings,
        clock: Clock,
        changed: Callable[[], None],
    ) -> None:
        self._pool = pool
        self._catalog = catalog
        self._tiers = tiers
        self._clock = clock
        self._changed = changed
        self.announced = 0
        self.resolved = 0

    async def process(self, events: deque[NewMarket | MarketResolved]) -> None:
        while events:
            message = events.popleft()
            if isinstance(message, NewMarket):
                await self._new_market(message)
            else:
                await self._resolved(message)

    async def _new_market(self, message: NewMarket) -> None:
        info = announced_market(message)
        now = self._clock()
        if info is None or not self._catalog.add_announced(info, now):
            return
        async with self._pool.acquire() as conn:
            await upsert_markets(conn, [market_record(info, now, self._tiers, {})])
            await upsert_tokens(conn, token_records(info))
        self.announced += 1
        log.info("new market announced", market=info.market_id, question=info.question[:80])
        self._changed()

    async def _resolved(self, message: MarketResolved) -> None:
        market = next(
            (m for t in message.asset_ids if (m := self._catalog.market_of(t)) is not None), None
        )
        if market is None or market.closed:
            return
        async with self._pool.acquire() as conn:
            await record_resolutions(conn, [ws_resolution(message, market)])
            await mark_market_closed(conn, market.market_id)
        self._catalog.mark_closed([market.market_id], self._clock())
        self.resolved += 1
        log.info("market resolved", market=market.market_id, winner=message.winning_outcome)
        self._changed()
