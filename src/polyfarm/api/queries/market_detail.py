"""Reads behind ``/api/markets/{id}``: metadata, resolution, candles, book, trades, features.

Candles come from the aggregate views (``candles_1m`` … ``candles_1d``). On plain PostgreSQL
those are refreshed every few minutes, so the buckets since the last refresh are computed from
the raw snapshots of this one token (an index range scan), as TimescaleDB's real-time
aggregates do by themselves. The window ends at the token's newest snapshot, so a closed market
still shows its last days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from polyfarm.api.schemas import (
    BookLevel,
    CandleOut,
    MarketDetail,
    OrderBookOut,
    Resolution,
    TokenInfo,
    TradeOut,
)
from polyfarm.settings import WhaleSettings
from polyfarm.store.queries import CANDLE_AGGREGATES, candles

INTERVALS = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
MAX_BUCKETS = 180
FEATURE_SKIP = frozenset({"ts", "token_id", "market_id", "token_sid"})

_RAW_CANDLES = """
    SELECT time_bucket($2::interval, ts) AS bucket, first(price, ts) AS open, max(price) AS high,
           min(price) AS low, last(price, ts) AS close, count(price) AS samples
    FROM price_snapshots
    WHERE token_id = $1 AND ts >= $3 AND ts < $4 AND price IS NOT NULL
    GROUP BY 1 ORDER BY 1
"""


async def market_row(conn: asyncpg.Connection, market_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        SELECT m.*, e.title AS event_title,
               coalesce((SELECT array_agg(tag ->> 'label' ORDER BY ord)
                         FROM jsonb_array_elements(coalesce(e.tags, '[]'))
                              WITH ORDINALITY AS t(tag, ord)), '{}') AS tag_labels
        FROM markets m LEFT JOIN events e USING (event_id)
        WHERE m.market_id = $1
        """,
        market_id,
    )
    return row


async def tokens_with_prices(conn: asyncpg.Connection, market_id: str) -> list[TokenInfo]:
    rows = await conn.fetch(
        """
        SELECT t.token_id, t.outcome, t.outcome_index, p.price, p.ts AS price_at
        FROM tokens t LEFT JOIN token_keys k USING (token_id) LEFT JOIN LATERAL (
            SELECT price, ts FROM price_snapshots s
            WHERE s.token_sid = k.token_sid ORDER BY ts DESC LIMIT 1) p ON true
        WHERE t.market_id = $1 ORDER BY t.outcome_index
        """,
        market_id,
    )
    return [TokenInfo(**dict(r)) for r in rows]


async def resolution(conn: asyncpg.Connection, market_id: str) -> Resolution | None:
    row = await conn.fetchrow(
        "SELECT resolved_at, outcome_kind, winning_outcome, winning_token_id, final_prices, "
        "method, source FROM market_resolutions WHERE market_id = $1",
        market_id,
    )
    return None if row is None else Resolution(**dict(row))


async def snapshot_span(
    conn: asyncpg.Connection, token_id: str
) -> tuple[datetime, datetime] | None:
    row = await conn.fetchrow(
        """
        SELECT (SELECT ts FROM price_snapshots WHERE token_sid = k.token_sid
                ORDER BY ts LIMIT 1) AS first,
               (SELECT ts FROM price_snapshots WHERE token_sid = k.token_sid
                ORDER BY ts DESC LIMIT 1) AS last
        FROM token_keys k WHERE k.token_id = $1
        """,
        token_id,
    )
    if row is None or row["first"] is None:
        return None
    return row["first"], row["last"]


def auto_interval(span: timedelta) -> str:
    """The finest interval that shows the whole span in at most MAX_BUCKETS candles."""
    for name, width in INTERVALS.items():
        if span / width <= MAX_BUCKETS:
            return name
    return "1d"


async def _view_populated(conn: asyncpg.Connection, view: str | None) -> bool:
    # Plain PostgreSQL refuses to read a materialized view never refreshed; TimescaleDB's
    # continuous aggregates are not listed in pg_matviews and are always readable, and
    # 1-minute candles (no aggregate) come from the raw rows.
    if view is None:
        return True
    populated: bool | None = await conn.fetchval(
        "SELECT ispopulated FROM pg_matviews WHERE schemaname = 'public' AND matviewname = $1",
        view,
    )
    return populated is not False


async def candle_series(
    conn: asyncpg.Connection, token_id: str, interval: str, last: datetime
) -> list[CandleOut]:
    width = INTERVALS[interval]
    end = last + width
    start = end - MAX_BUCKETS * width
    stored = []
    if await _view_populated(conn, CANDLE_AGGREGATES[interval]):
        stored = await candles(conn, token_id, interval, start, end)
    # Recompute the newest stored bucket (it may have been partial) and everything after it.
    tail_start = stored[-1].bucket if stored else start
    tail = await conn.fetch(_RAW_CANDLES, token_id, width, tail_start, end)
    series = [CandleOut(**c.__dict__) for c in stored if c.bucket < tail_start]
    series += [CandleOut(**dict(r)) for r in tail]
    return series


async def latest_book(conn: asyncpg.Connection, token_id: str) -> OrderBookOut | None:
    row = await conn.fetchrow(
        """
        SELECT b.ts, b.source, b.bids, b.asks, b.best_bid, b.best_ask, b.spread, b.midpoint,
               b.bid_depth_usd, b.ask_depth_usd, b.bid_levels, b.ask_levels, b.imbalance
        FROM token_keys k CROSS JOIN LATERAL (
            SELECT * FROM orderbook_snapshots s WHERE s.token_sid = k.token_sid
            ORDER BY s.ts DESC LIMIT 1) b
        WHERE k.token_id = $1
        """,
        token_id,
    )
    if row is None:
        return None
    values = dict(row)
    for side in ("bids", "asks"):
        values[side] = [BookLevel(price=p, size=s) for p, s in values[side]]
    return OrderBookOut(**values)


def whale_tier(notional: float, whales: WhaleSettings) -> int | None:
    thresholds = (whales.tier3_usdc, whales.tier2_usdc, whales.tier1_usdc)
    for tier, threshold in zip((3, 2, 1), thresholds, strict=True):
        if notional >= threshold:
            return tier
    return None


async def recent_trades(
    conn: asyncpg.Connection, market_id: str, whales: WhaleSettings, limit: int
) -> list[TradeOut]:
    """Newest first: the newest ``limit`` of each of the market's tokens (an index range
    each), merged; the stream's whale tier when it recorded one, otherwise the configured
    notional thresholds."""
    rows = await conn.fetch(
        """
        SELECT t.ts, t.token_id, o.outcome, t.price, t.size, t.price * t.size AS notional,
               t.side, t.source, w.whale_tier
        FROM token_keys k
        CROSS JOIN LATERAL (
            SELECT * FROM trades s WHERE s.token_sid = k.token_sid
            ORDER BY s.ts DESC, s.exchange_ms DESC NULLS LAST LIMIT $2) t
        LEFT JOIN tokens o ON o.token_id = t.token_id
        LEFT JOIN whale_events w
               ON w.token_id = t.token_id AND w.trade_key = t.trade_key AND w.ts = t.ts
        WHERE k.market_id = $1
        ORDER BY t.ts DESC, t.exchange_ms DESC NULLS LAST LIMIT $2
        """,
        market_id,
        limit,
    )
    trades = []
    for r in rows:
        values = dict(r)
        values["whale_tier"] = values["whale_tier"] or whale_tier(values["notional"], whales)
        trades.append(TradeOut(**values))
    return trades


async def latest_features(
    conn: asyncpg.Connection, token_id: str
) -> tuple[datetime | None, dict[str, float | int | bool | None]]:
    row = await conn.fetchrow(
        """
        SELECT f.* FROM token_keys k CROSS JOIN LATERAL (
            SELECT * FROM market_features s WHERE s.token_sid = k.token_sid
            ORDER BY s.ts DESC LIMIT 1) f
        WHERE k.token_id = $1
        """,
        token_id,
    )
    if row is None:
        return None, {}
    return row["ts"], {k: v for k, v in dict(row).items() if k not in FEATURE_SKIP}


MARKET_FIELDS = (
    "market_id", "condition_id", "question", "description", "slug", "category", "tier",
    "active", "closed", "neg_risk", "start_date", "end_date", "closed_time", "volume",
    "volume_24h", "liquidity", "first_seen", "updated_at", "event_title",
)  # fmt: skip


@dataclass(frozen=True)
class DetailRequest:
    interval: str = "auto"  # or a key of INTERVALS
    outcome: int = 0  # outcome index of the token shown
    trades: int = 50


async def token_series(
    conn: asyncpg.Connection, token_id: str, interval: str
) -> tuple[str, list[CandleOut]]:
    """The chosen interval (``auto`` resolved) and the token's candles at it."""
    span = await snapshot_span(conn, token_id)
    if span is None:
        return ("1m" if interval == "auto" else interval), []
    chosen = auto_interval(span[1] - span[0]) if interval == "auto" else interval
    return chosen, await candle_series(conn, token_id, chosen, span[1])


async def read_market(
    conn: asyncpg.Connection, market_id: str, request: DetailRequest, whales: WhaleSettings
) -> MarketDetail | None:
    row = await market_row(conn, market_id)
    if row is None:
        return None
    tokens = await tokens_with_prices(conn, market_id)
    token = next((t.token_id for t in tokens if t.outcome_index == request.outcome), None)
    interval, series = "1m", list[CandleOut]()
    book, features_at, features = None, None, dict[str, float | int | bool | None]()
    if token is not None:
        interval, series = await token_series(conn, token, request.interval)
        book = await latest_book(conn, token)
        features_at, features = await latest_features(conn, token)
    return MarketDetail(
        **{name: row[name] for name in MARKET_FIELDS},
        tags=list(row["tag_labels"]),
        tokens=tokens,
        resolution=await resolution(conn, market_id),
        token_id=token,
        interval=interval,
        candles=series,
        book=book,
        trades=await recent_trades(conn, market_id, whales, request.trades),
        features_at=features_at,
        features=features,
    )
