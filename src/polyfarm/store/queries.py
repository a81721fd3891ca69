"""Typed reads used by the API, the exports and the tests.

A token's newest row is read by joining ``token_keys`` and filtering the view on
``token_sid``: the planner then reads the (token_sid, ts) index in order and stops at the first
row, which it cannot see through the view's own join (migration 0011).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from polyfarm.errors import DatabaseError

CANDLE_VIEWS = {
    "1m": "candles_1m",
    "5m": "candles_5m",
    "15m": "candles_15m",
    "1h": "candles_1h",
    "4h": "candles_4h",
    "1d": "candles_1d",
}
# The aggregates behind the candle views (plain PostgreSQL: materialized views, readable once
# refreshed); 1-minute candles come straight from the raw rows.
CANDLE_AGGREGATES: dict[str, str | None] = {
    "1m": None,
    "5m": "price_candles_5m",
    "15m": "price_candles_15m",
    "1h": "price_candles_1h",
    "4h": "price_candles_4h",
    "1d": "price_candles_1d",
}
# 1-minute candles straight from the raw points, with the time range on ``ts`` (the candles_1m
# view's ``bucket`` is an expression no index bounds): a bucket in [start, end) holds points in
# [start - 1 min, end + 1 min), and the outer filter keeps exactly the buckets asked for. Open
# and close by array_agg, which runs in C on both flavours, where plain PostgreSQL's
# SQL-language first() and last() took four times as long for a token-day (BENCHMARKS.md,
# "Footprint").
_MINUTE_CANDLES = """
    SELECT bucket, open, high, low, close, samples FROM (
        SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket,
               (array_agg(price ORDER BY ts))[1] AS open, max(price) AS high,
               min(price) AS low, (array_agg(price ORDER BY ts DESC))[1] AS close,
               count(price) AS samples
        FROM price_snapshots
        WHERE token_id = $1 AND price IS NOT NULL
          AND ts >= $2::timestamptz - INTERVAL '1 minute'
          AND ts < $3::timestamptz + INTERVAL '1 minute'
        GROUP BY 1) c
    WHERE bucket >= $2 AND bucket < $3 ORDER BY bucket
"""
# By sid, looked up first: on TimescaleDB a candle view joined to token_keys on token_id would
# aggregate every token's real-time buckets before joining (a continuous aggregate is a UNION
# the join cannot reach into): 28 ms for a token-day of 5-minute candles, 1.7 ms by sid.
_AGGREGATE_CANDLES = """
    SELECT bucket, open, high, low, close, samples FROM {view}
    WHERE token_sid = (SELECT token_sid FROM token_keys WHERE token_id = $1)
      AND bucket >= $2 AND bucket < $3
    ORDER BY bucket
"""


@dataclass(frozen=True)
class LatestPrice:
    token_id: str
    ts: datetime
    price: float | None
    best_bid: float | None
    best_ask: float | None


@dataclass(frozen=True)
class Candle:
    bucket: datetime
    open: float
    high: float
    low: float
    close: float
    samples: int


@dataclass(frozen=True)
class Trade:
    ts: datetime
    token_id: str
    price: float
    size: float
    side: str
    source: str


@dataclass(frozen=True)
class CoverageRow:
    hour: datetime
    tier: int | None
    markets: int
    snapshots: int


async def latest_prices(conn: asyncpg.Connection, token_ids: Sequence[str]) -> list[LatestPrice]:
    rows = await conn.fetch(
        """
        SELECT t.token_id, p.ts, p.price, p.best_bid, p.best_ask
        FROM unnest($1::text[]) AS t(token_id)
        JOIN token_keys k USING (token_id)
        CROSS JOIN LATERAL (
            SELECT ts, price, best_bid, best_ask FROM price_snapshots s
            WHERE s.token_sid = k.token_sid ORDER BY ts DESC LIMIT 1
        ) p
        """,
        list(token_ids),
    )
    return [LatestPrice(**dict(r)) for r in rows]


async def candles(
    conn: asyncpg.Connection, token_id: str, interval: str, start: datetime, end: datetime
) -> list[Candle]:
    view = CANDLE_VIEWS.get(interval)
    if view is None:
        raise DatabaseError(
            f"unknown candle interval {interval!r}; use one of {list(CANDLE_VIEWS)}"
        )
    if CANDLE_AGGREGATES[interval] is None:
        rows = await conn.fetch(_MINUTE_CANDLES, token_id, start, end)
    else:
        rows = await conn.fetch(_AGGREGATE_CANDLES.format(view=view), token_id, start, end)
    return [Candle(**dict(r)) for r in rows]


async def trades(
    conn: asyncpg.Connection, token_id: str, start: datetime, end: datetime, limit: int = 10_000
) -> list[Trade]:
    rows = await conn.fetch(
        """
        SELECT ts, token_id, price, size, side, source FROM trades
        WHERE token_id = $1 AND ts >= $2 AND ts < $3
        ORDER BY ts, exchange_ms NULLS FIRST LIMIT $4
        """,
        token_id,
        start,
        end,
        limit,
    )
    return [Trade(**dict(r)) for r in rows]


async def coverage(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[CoverageRow]:
    """Price snapshots per hour and tier, with how many markets contributed."""
    rows = await conn.fetch(
        """
        SELECT time_bucket(INTERVAL '1 hour', s.ts) AS hour, m.tier,
               count(DISTINCT s.market_id) AS markets, count(*) AS snapshots
        FROM price_snapshots s JOIN markets m USING (market_id)
        WHERE s.ts >= $1 AND s.ts < $2
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        start,
        end,
    )
    return [CoverageRow(**dict(r)) for r in rows]
