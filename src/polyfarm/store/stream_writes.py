"""Writes of the WebSocket stream outside the bulk time series: gaps, whale events, closures.

``feed_gaps`` rows are written when a hole is detected (``repaired = false``) and flipped to
``repaired = true`` once a repair proved the window complete, so at every moment the table
lists every hole not known to be filled. Whale events are inserted once (idempotent on their
key) and their impact columns filled in later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import asyncpg


class GapRecord(NamedTuple):
    stream: str  # ws_trades | ws_book_deltas
    token_id: str | None
    market_id: str | None
    gap_start: datetime
    gap_end: datetime
    reason: str


class WhaleEventRow(NamedTuple):
    """``whale_events`` columns as first written (impact columns still empty)."""

    ts: datetime
    token_id: str
    market_id: str
    trade_key: bytes
    price: float
    size: float
    notional: float
    side: str
    whale_tier: int
    price_before: float | None


class ImpactUpdate(NamedTuple):
    token_id: str
    trade_key: bytes
    ts: datetime
    minutes: int  # 1 or 5
    price_after: float | None
    impact: float | None


class OpenGap(NamedTuple):
    id: int
    market_id: str | None
    gap_start: datetime
    gap_end: datetime
    reason: str


async def insert_gaps(conn: asyncpg.Connection, gaps: Sequence[GapRecord]) -> list[int]:
    """Record holes as not repaired; returns their ids in order."""
    if not gaps:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO feed_gaps (stream, token_id, market_id, gap_start, gap_end, reason)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[],
                             $4::timestamptz[], $5::timestamptz[], $6::text[])
        RETURNING id
        """,
        *(list(column) for column in zip(*gaps, strict=True)),
    )
    return [row["id"] for row in rows]


async def extend_gap(conn: asyncpg.Connection, gap_id: int, end: datetime) -> None:
    """Move a hole's end on (a hole still open: it grows while its cause lasts)."""
    await conn.execute(
        "UPDATE feed_gaps SET gap_end = greatest(gap_end, $2) WHERE id = $1", gap_id, end
    )


async def close_gaps(
    conn: asyncpg.Connection, ids: Sequence[int], *, repaired: bool, note: str | None = None
) -> None:
    """Mark holes repaired, or append why they could not be (they stay ``repaired = false``)."""
    if not ids:
        return
    await conn.execute(
        """
        UPDATE feed_gaps SET repaired = $2,
               reason = CASE WHEN $3::text IS NULL THEN reason ELSE reason || '; ' || $3 END
        WHERE id = ANY($1::bigint[])
        """,
        list(ids),
        repaired,
        note,
    )


async def open_trade_gaps(conn: asyncpg.Connection, since: datetime) -> list[OpenGap]:
    """Unrepaired trade holes ending after ``since`` (picked up again after a restart)."""
    rows = await conn.fetch(
        "SELECT id, market_id, gap_start, gap_end, reason FROM feed_gaps "
        "WHERE stream = 'ws_trades' AND NOT repaired AND market_id IS NOT NULL "
        "AND gap_end >= $1 ORDER BY gap_start",
        since,
    )
    return [OpenGap(**dict(row)) for row in rows]


async def insert_whale_events(conn: asyncpg.Connection, events: Sequence[WhaleEventRow]) -> int:
    """Insert new whale events; one already stored (same token, key, time) is left as it is."""
    if not events:
        return 0
    status = await conn.execute(
        """
        INSERT INTO whale_events (ts, token_id, market_id, trade_key, price, size, notional,
                                  side, whale_tier, price_before)
        SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bytea[],
                             $5::float8[], $6::float8[], $7::float8[], $8::text[],
                             $9::smallint[], $10::float8[])
        ON CONFLICT (token_id, trade_key, ts) DO NOTHING
        """,
        *(list(column) for column in zip(*events, strict=True)),
    )
    return int(status.rsplit(" ", 1)[-1])


async def update_whale_impacts(conn: asyncpg.Connection, updates: Sequence[ImpactUpdate]) -> None:
    def of(minutes: int) -> list[tuple[object, ...]]:
        return [
            (u.token_id, u.trade_key, u.ts, u.price_after, u.impact)
            for u in updates
            if u.minutes == minutes
        ]

    one, five = of(1), of(5)
    if one:
        await conn.executemany(
            "UPDATE whale_events SET price_after_1m = $4, impact_1m = $5, updated_at = now() "
            "WHERE token_id = $1 AND trade_key = $2 AND ts = $3",
            one,
        )
    if five:
        await conn.executemany(
            "UPDATE whale_events SET price_after_5m = $4, impact_5m = $5, updated_at = now() "
            "WHERE token_id = $1 AND trade_key = $2 AND ts = $3",
            five,
        )


async def market_identities(
    conn: asyncpg.Connection, market_ids: Sequence[str]
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Condition id and token ids of stored markets (for markets no longer in the catalogue)."""
    rows = await conn.fetch(
        "SELECT market_id, condition_id, array_agg(token_id ORDER BY outcome_index) AS tokens "
        "FROM tokens WHERE market_id = ANY($1::text[]) GROUP BY market_id, condition_id",
        list(market_ids),
    )
    return {r["market_id"]: (r["condition_id"], tuple(r["tokens"])) for r in rows}


async def markets_open_since(conn: asyncpg.Connection, since: datetime) -> list[str]:
    """Markets stored as open, or closed at or after ``since``: they may have traded since."""
    rows = await conn.fetch(
        "SELECT market_id FROM markets WHERE NOT closed OR closed_time >= $1", since
    )
    return [r["market_id"] for r in rows]


async def mark_market_closed(conn: asyncpg.Connection, market_id: str) -> None:
    """A market the WebSocket saw resolved: closed at once, the scans fill in the rest."""
    await conn.execute(
        "UPDATE markets SET closed = true, tier = NULL, updated_at = now() "
        "WHERE market_id = $1 AND NOT closed",
        market_id,
    )
