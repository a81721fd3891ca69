"""Metadata refresher: Gamma keyset scans of open events and markets → events, markets, tokens.

One cycle pages through ``/events/keyset`` (event rows: titles, tags, neg-risk groups) and
``/markets/keyset`` (the canonical market rows, with their raw payload), upserts all three
tables, and merges the scan into the catalogue, which reports new, closed and vanished markets
to the other collectors. A market that fails to parse is logged with its raw body and skipped;
it never blocks the rest of its page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg
import orjson

from polyfarm.collect.catalog import CatalogDiff, MarketCatalog
from polyfarm.collect.rejects import RejectSink
from polyfarm.collect.tiers import tier_for
from polyfarm.logs import get_logger
from polyfarm.polymarket.domain import EventInfo, MarketInfo, Reject
from polyfarm.polymarket.gamma import GammaClient
from polyfarm.runtime import CycleResult
from polyfarm.settings import TierSettings
from polyfarm.store.dimensions import (
    EventRecord,
    MarketRecord,
    TokenRecord,
    update_tiers,
    upsert_events,
    upsert_markets,
    upsert_tokens,
)

log = get_logger(__name__)


# -- pure conversions ---------------------------------------------------------------------------


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def event_record(event: EventInfo) -> EventRecord:
    tags = [{"id": t.tag_id, "label": t.label, "slug": t.slug} for t in event.tags]
    category = event.tags[0].label if event.tags else None
    return EventRecord(
        event_id=event.event_id,
        slug=event.slug,
        title=event.title,
        description=None,
        category=category,
        tags=_json(tags) if tags else None,
        neg_risk=event.neg_risk,
        neg_risk_market_id=event.neg_risk_market_id,
        start_date=event.start_date,
        end_date=event.end_date,
        active=event.active,
        closed=event.closed,
        archived=bool(event.archived),
        volume=_float(event.volume),
        liquidity=_float(event.liquidity),
        raw=None,
    )


def market_record(
    market: MarketInfo, now: datetime, tiers: TierSettings, event_tags: dict[str, str]
) -> MarketRecord:
    return MarketRecord(
        market_id=market.market_id,
        event_id=market.event_id,
        condition_id=market.condition_id,
        question_id=market.question_id,
        slug=market.slug,
        question=market.question,
        description=market.description,
        category=market.category or event_tags.get(market.event_id or ""),
        tags=None,
        outcomes=_json([t.outcome for t in market.tokens]),
        neg_risk=market.neg_risk,
        neg_risk_market_id=market.neg_risk_market_id,
        neg_risk_request_id=market.neg_risk_request_id,
        group_item_title=market.group_item_title,
        tick_size=_float(market.tick_size),
        min_size=_float(market.min_order_size),
        active=market.active,
        closed=market.closed,
        archived=bool(market.archived),
        accepting_orders=market.accepting_orders,
        enable_order_book=market.enable_order_book,
        start_date=market.start_date,
        end_date=market.end_date,
        closed_time=market.closed_time,
        volume=_float(market.volume),
        volume_24h=_float(market.volume_24hr),
        liquidity=_float(market.liquidity),
        tier=tier_for(market.end_date, market.closed, now, tiers),
        raw=market.raw.decode("utf-8", "replace") if market.raw else None,
    )


def token_records(market: MarketInfo) -> list[TokenRecord]:
    return [
        TokenRecord(t.token_id, market.market_id, market.condition_id, t.outcome, t.index)
        for t in market.tokens
        if t.token_id is not None
    ]


# -- the collector ------------------------------------------------------------------------------


@dataclass
class ScanResult:
    events: dict[str, EventInfo]
    markets: dict[str, MarketInfo]
    rejects: list[Reject]


class MetadataCollector:
    name = "metadata"

    def __init__(
        self,
        gamma: GammaClient,
        pool: asyncpg.Pool,
        catalog: MarketCatalog,
        clock: Callable[[], datetime],
        rejects: RejectSink,
        on_change: Callable[[CatalogDiff], None] | None = None,
    ) -> None:
        self._rejects = rejects
        self._gamma = gamma
        self._pool = pool
        self._catalog = catalog
        self._clock = clock
        self._on_change = on_change
        self.last_diff = CatalogDiff()

    async def cycle(self) -> CycleResult:
        scan = await self.scan()
        now = self._clock()
        rows = await self._store(scan, now)
        diff = self._catalog.apply_scan(scan.markets.values(), now, complete=True)
        if diff.retiered:
            async with self._pool.acquire() as conn:
                await update_tiers(conn, list(diff.retiered))
        self.last_diff = diff
        if diff.new or diff.closed or diff.vanished:
            log.info(
                "markets changed",
                new=len(diff.new),
                closed=len(diff.closed),
                vanished=len(diff.vanished),
            )
        if self._on_change is not None:
            self._on_change(diff)
        return CycleResult(markets=len(scan.markets), rows=rows)

    async def scan(self) -> ScanResult:
        result = ScanResult({}, {}, [])
        async for page in self._gamma.iter_events_keyset(limit=500, closed=False):
            await self._rejects.add("gamma_event", page.rejects)
            for event in page.items:
                result.events[event.event_id] = event
                await self._rejects.add("gamma_market", event.market_rejects)
        async for market_page in self._gamma.iter_markets_keyset(limit=100, closed=False):
            await self._rejects.add("gamma_market", market_page.rejects)
            for market in market_page.items:
                result.markets[market.market_id] = market
        return result

    async def _store(self, scan: ScanResult, now: datetime) -> int:
        tiers = self._catalog.tiers
        categories = {
            e.event_id: e.tags[0].label for e in scan.events.values() if e.tags and e.tags[0].label
        }
        events = [event_record(e) for e in scan.events.values()]
        markets = [market_record(m, now, tiers, categories) for m in scan.markets.values()]
        tokens = [t for m in scan.markets.values() for t in token_records(m)]
        async with self._pool.acquire() as conn:
            stored = await upsert_events(conn, events)
            stored += await upsert_markets(conn, markets)
            stored += await upsert_tokens(conn, tokens)
        return stored
