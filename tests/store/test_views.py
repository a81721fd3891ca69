"""Reads through the public views use the compact tables' indexes (migration 0011)."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import asyncpg
import pytest

from polyfarm.settings import RetentionSettings
from polyfarm.store.partitions import ensure_partitions
from polyfarm.store.queries import candles, latest_prices
from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.writer import BulkWriter

from .factories import T0, price_row, token

TOKENS = 200
MINUTES = 120


@pytest.fixture
async def filled(pool: asyncpg.Pool) -> list[str]:
    """Two hours of one row per token per minute, beside a registry of the venue's size (no
    planner scans 40,000 token ids for one), the planner's statistics up to date."""
    rng = random.Random(3)
    async with pool.acquire() as conn:  # plain PostgreSQL: the day partitions, as at start-up
        await ensure_partitions(conn, T0, RetentionSettings())
    ids = [token(rng.randrange(10**70)) for _ in range(TOKENS)]
    rows = [
        price_row(m, tok, round(rng.uniform(0.02, 0.98), 3)) for m in range(MINUTES) for tok in ids
    ]
    writer = BulkWriter(pool, clock=lambda: T0 + timedelta(days=1))
    assert (await writer.write(PRICE_SNAPSHOTS, rows)).inserted == len(rows)
    await pool.execute(
        "INSERT INTO token_keys (token_id, market_id) "
        "SELECT (10::numeric ^ 77 + g)::text, g::text FROM generate_series(1, 40000) g"
    )
    await pool.execute("ANALYZE")
    return ids


async def plan(pool: asyncpg.Pool, sql: str, *args: object) -> str:
    rows = await pool.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", *args)
    return "\n".join(r[0] for r in rows)


async def uses_token_ts_index(pool: asyncpg.Pool, shown: str) -> bool:
    """The plan reads the (token_sid, ts) unique index: on TimescaleDB a chunk's copy (named
    after it), on plain PostgreSQL a partition's (attached to it)."""
    names = {"price_points_token_ts_key"}
    names |= {
        r[0]
        for r in await pool.fetch(
            "SELECT relid::regclass::text FROM pg_partition_tree('price_points_token_ts_key')"
        )
    }
    scans = [line for line in shown.splitlines() if " using " in line]
    return any(name in line for line in scans for name in names)


async def test_a_token_range_read_goes_registry_then_token_ts_index(
    pool: asyncpg.Pool, filled: list[str]
) -> None:
    sql = (
        "SELECT ts, price, best_bid, best_ask, spread FROM price_snapshots "
        "WHERE token_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts"
    )
    shown = await plan(pool, sql, filled[7], T0, T0 + timedelta(hours=1))
    assert "token_keys_token_id_key" in shown, shown
    assert await uses_token_ts_index(pool, shown), shown
    assert "Seq Scan" not in shown, shown
    rows = await pool.fetch(sql, filled[7], T0, T0 + timedelta(hours=1))
    assert len(rows) == 60


async def test_a_tokens_newest_row_is_one_index_probe(
    pool: asyncpg.Pool, filled: list[str]
) -> None:
    """By sid (what polyfarm.store.queries does): no sort of the token's rows. On plain
    PostgreSQL the index of every partition is probed once and the probes merged in ts order
    (a Merge Append: the DEFAULT partition keeps the planner from reading the partitions one
    after the other), on TimescaleDB the chunks' copies."""
    sql = (
        "SELECT ts, price FROM token_keys k CROSS JOIN LATERAL (SELECT ts, price "
        "FROM price_snapshots s WHERE s.token_sid = k.token_sid ORDER BY ts DESC LIMIT 1) p "
        "WHERE k.token_id = $1"
    )
    shown = await plan(pool, sql, filled[3])
    assert not re.search(r"^\s*(->\s+)?Sort\s+\(", shown, re.MULTILINE), shown  # no Sort node
    assert await uses_token_ts_index(pool, shown), shown
    async with pool.acquire() as conn:
        (latest,) = await latest_prices(conn, [filled[3]])
    assert latest.ts == T0 + timedelta(minutes=MINUTES - 1)


async def test_a_count_over_time_does_not_read_the_registry(
    pool: asyncpg.Pool, filled: list[str]
) -> None:
    shown = await plan(pool, "SELECT count(*) FROM price_snapshots WHERE ts >= $1", T0)
    assert "token_keys" not in shown, shown


async def test_minute_candles_read_only_the_asked_range(
    pool: asyncpg.Pool, filled: list[str]
) -> None:
    start, end = T0 + timedelta(minutes=30, seconds=20), T0 + timedelta(minutes=40)
    async with pool.acquire() as conn:
        got = await candles(conn, filled[0], "1m", start, end)
    assert [c.bucket for c in got] == [T0 + timedelta(minutes=m) for m in range(31, 40)]
    assert all(c.samples == 1 for c in got)
