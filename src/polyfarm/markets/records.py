"""Gamma's markets and events as the dimension tables' rows: pure conversions, shared by the
metadata scan and the stream's announced markets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import orjson

from polyfarm.markets.tiers import tier_for
from polyfarm.polymarket.domain import EventInfo, MarketInfo
from polyfarm.settings import TierSettings
from polyfarm.store.dimensions import EventRecord, MarketRecord, TokenRecord


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def event_record(event: EventInfo, observed_at: datetime) -> EventRecord:
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
        observed_at=observed_at,
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
        protocol_version=None if market.protocol_version is None else market.protocol_version.value,
        observed_at=now,
    )


def token_records(market: MarketInfo) -> list[TokenRecord]:
    return [
        TokenRecord(
            t.token_id,
            market.market_id,
            market.condition_id,
            t.outcome,
            t.index,
            ctf_token_id=t.ctf_token_id,
            position_id=t.position_id,
        )
        for t in market.tokens
        if t.token_id is not None
    ]
