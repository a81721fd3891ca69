"""Upserts of the dimension tables: events, markets, tokens, resolutions.

Each batch is copied into a staging table and merged with one ``INSERT … ON CONFLICT DO
UPDATE``: a full metadata scan of 20,000 markets is a handful of statements, not 20,000.
``first_seen`` is set once; ``updated_at`` moves on every upsert.

Events and markets carry ``observed_at``, when their data was read from the venue (the start of
the scan that read it). A row is only replaced by an observation at least as new: with two
collectors sharing the database, a slow scan that finishes after a newer one does not turn a
closed market open again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from polyfarm.logs import get_logger

log = get_logger(__name__)


class EventRecord(NamedTuple):
    event_id: str
    slug: str | None
    title: str | None
    description: str | None
    category: str | None
    tags: str | None  # JSON text
    neg_risk: bool
    neg_risk_market_id: str | None
    start_date: datetime | None
    end_date: datetime | None
    active: bool | None
    closed: bool
    archived: bool
    volume: float | None
    liquidity: float | None
    raw: str | None  # JSON text
    observed_at: datetime  # when the venue said so


class MarketRecord(NamedTuple):
    market_id: str
    event_id: str | None
    condition_id: str
    question_id: str | None
    slug: str | None
    question: str | None
    description: str | None
    category: str | None
    tags: str | None
    outcomes: str | None
    neg_risk: bool
    neg_risk_market_id: str | None
    neg_risk_request_id: str | None
    group_item_title: str | None
    tick_size: float | None
    min_size: float | None
    active: bool | None
    closed: bool
    archived: bool
    accepting_orders: bool | None
    enable_order_book: bool | None
    start_date: datetime | None
    end_date: datetime | None
    closed_time: datetime | None
    volume: float | None
    volume_24h: float | None
    liquidity: float | None
    tier: int | None
    raw: str | None
    observed_at: datetime  # when the venue said so
    protocol_version: str | None = None  # v1 | v2; None while unknown


class TokenRecord(NamedTuple):
    token_id: str  # the trading id
    market_id: str
    condition_id: str
    outcome: str | None
    outcome_index: int
    ctf_token_id: str | None = None  # the clobTokenIds entry
    position_id: str | None = None  # the positionIds entry


class ResolutionRecord(NamedTuple):
    market_id: str
    condition_id: str
    resolved_at: datetime
    outcome_kind: str  # winner | fifty_fifty | void | unknown
    winning_outcome: str | None
    winning_token_id: str | None
    final_prices: str | None  # JSON text {"Yes": 1.0, "No": 0.0}
    method: str
    source: str


async def _merge(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    records: Sequence[Sequence[Any]],
    merge_sql: str,
    *,
    displace_sql: str | None = None,
) -> int:
    """Stage ``records`` and merge them; ``displace_sql`` first removes rows that the staged
    ones replace under another key (counted and logged)."""
    if not records:
        return 0
    stage = f"_stage_{table}"
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table(stage, records=records, columns=columns)
        if displace_sql is not None:
            displaced = _row_count(await conn.execute(displace_sql.format(stage=stage)))
            if displaced:
                log.info("rows replaced under a new key", table=table, rows=displaced)
        status = await conn.execute(merge_sql.format(stage=stage))
    return _row_count(status)


def _row_count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


def _assignments(columns: Sequence[str], keep: Sequence[str]) -> str:
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in keep)


def _not_older(table: str) -> str:
    """The upsert's condition: the stored row is replaced only by a newer observation."""
    return f"WHERE {table}.observed_at <= EXCLUDED.observed_at"


async def upsert_events(conn: asyncpg.Connection, records: Sequence[EventRecord]) -> int:
    columns = EventRecord._fields
    listed = ", ".join(columns)
    sql = (
        f"INSERT INTO events ({listed}) SELECT DISTINCT ON (event_id) {listed} FROM {{stage}} "
        f"ON CONFLICT (event_id) DO UPDATE SET {_assignments(columns, ['event_id'])}, "
        f"updated_at = now() {_not_older('events')}"
    )
    return await _merge(conn, "events", columns, records, sql)


async def upsert_markets(conn: asyncpg.Connection, records: Sequence[MarketRecord]) -> int:
    """Upsert markets. An event id we have not stored is kept out (NULL) rather than failing
    the batch on the foreign key; the next metadata scan fills it in."""
    columns = MarketRecord._fields
    listed = ", ".join(columns)
    selected = ", ".join("e.event_id" if c == "event_id" else f"s.{c}" for c in columns)
    sql = (
        f"INSERT INTO markets ({listed}) SELECT DISTINCT ON (s.market_id) {selected} "
        "FROM {stage} s LEFT JOIN events e ON e.event_id = s.event_id "
        f"ON CONFLICT (market_id) DO UPDATE SET {_assignments(columns, ['market_id'])}, "
        f"updated_at = now() {_not_older('markets')}"
    )
    return await _merge(conn, "markets", columns, records, sql)


async def upsert_tokens(conn: asyncpg.Connection, records: Sequence[TokenRecord]) -> int:
    """Upsert tokens. An outcome whose trading id changed (a Protocol V2 market first stored
    under its CTF ids, before polyfarm chose ids by version) gets its new id: the old row
    goes, as the catalogue now names the other."""
    columns = TokenRecord._fields
    listed = ", ".join(columns)
    displace = (
        "DELETE FROM tokens t USING {stage} s WHERE t.market_id = s.market_id "
        "AND t.outcome_index = s.outcome_index AND t.token_id <> s.token_id"
    )
    sql = (
        f"INSERT INTO tokens ({listed}) SELECT DISTINCT ON (s.token_id) {listed} FROM {{stage}} s "
        "WHERE EXISTS (SELECT 1 FROM markets m WHERE m.market_id = s.market_id) "
        f"ON CONFLICT (token_id) DO UPDATE SET {_assignments(columns, ['token_id'])}"
    )
    return await _merge(conn, "tokens", columns, records, sql, displace_sql=displace)


async def record_resolutions(conn: asyncpg.Connection, records: Sequence[ResolutionRecord]) -> int:
    """Insert new resolutions; an existing one is only replaced while its outcome is unknown."""
    columns = ResolutionRecord._fields
    listed = ", ".join(columns)
    sql = (
        f"INSERT INTO market_resolutions ({listed}) "
        f"SELECT DISTINCT ON (s.market_id) {listed} FROM {{stage}} s "
        "WHERE EXISTS (SELECT 1 FROM markets m WHERE m.market_id = s.market_id) "
        f"ON CONFLICT (market_id) DO UPDATE SET {_assignments(columns, ['market_id'])}, "
        "detected_at = now() WHERE market_resolutions.outcome_kind = 'unknown'"
    )
    return await _merge(conn, "market_resolutions", columns, records, sql)


async def update_tiers(conn: asyncpg.Connection, tiers: Sequence[tuple[str, int | None]]) -> None:
    await conn.executemany(
        "UPDATE markets SET tier = $2 WHERE market_id = $1 AND tier IS DISTINCT FROM $2", tiers
    )
