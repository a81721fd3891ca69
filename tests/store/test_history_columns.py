"""A backfill's points (``HistoryBatch``) go into ``history_points`` as one binary COPY: the
rows are those asyncpg's own encoders stored for the same values (the per-row path before it),
each stored once, and the days no partition holds get theirs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

from polyfarm.store.compact import to_micros
from polyfarm.store.history_columns import HISTORY_COLUMNS, micros
from polyfarm.store.history_writes import HistoryBatch, HistoryRouteCode, store_history_points
from polyfarm.store.keys import TokenKeys
from polyfarm.store.partitions import partitions_of

from .factories import token

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
START = datetime(2024, 5, 1, 23, 0, tzinfo=UTC)  # long before the partitions made ahead
US = 1_000_000
# Rounding at half a micro-unit, either side of it, and the ends of the price range.
EDGE_PRICES = [0.0, 1.0, 0.0000005, 0.0000015, 0.1234565, 0.9999995, 0.5, 1e-7, 0.49999949999]


def batch(
    n: int, minutes: list[int], prices: list[float], fidelity_s: int = 60,
    route: HistoryRouteCode = HistoryRouteCode.CLOB, extra_us: int = 0,
) -> HistoryBatch:  # fmt: skip
    start_us = (START - EPOCH) // timedelta(microseconds=1)
    return HistoryBatch(
        token(n), "100", fidelity_s, route,
        np.array([start_us + m * 60 * US + extra_us for m in minutes], np.int64),
        np.array(prices, np.float64),
    )  # fmt: skip


def per_row_records(batches: list[HistoryBatch], sids: dict[str, int]) -> list[tuple[Any, ...]]:
    """The records the per-row path copied: a datetime and ``to_micros`` of each price."""
    return [
        (EPOCH + timedelta(microseconds=ts), sids[b.token_id], to_micros(price), b.fidelity_s,
         int(b.route))
        for b in batches
        for ts, price in zip(b.ts_us.tolist(), b.price.tolist(), strict=True)
    ]  # fmt: skip


async def stored(conn: asyncpg.Connection, table: str) -> list[tuple[Any, ...]]:
    columns = ", ".join(HISTORY_COLUMNS)
    rows = await conn.fetch(f"SELECT {columns} FROM {table} ORDER BY token_sid, ts")
    return [tuple(r) for r in rows]


def test_micros_round_as_to_micros() -> None:
    rng = np.random.default_rng(5)
    prices = np.concatenate([np.array(EDGE_PRICES), rng.random(100_000)])
    assert micros(prices).tolist() == [to_micros(p) for p in prices.tolist()]


async def test_batches_store_the_per_row_path_s_rows_once_each(pool: asyncpg.Pool) -> None:
    rng = np.random.default_rng(3)
    minutes = list(range(0, 3 * 1440, 1))  # three days from 23:00: four days' partitions
    batches = [
        batch(1, minutes, rng.random(len(minutes)).round(5).tolist()),
        batch(2, list(range(len(EDGE_PRICES))), EDGE_PRICES, 300, HistoryRouteCode.DATA_API),
        # Millisecond timestamps the venue might send: instants to the microsecond.
        batch(3, [0, 1, 2], [0.25, 0.5, 0.75], extra_us=123_000),
        # Of two points of one token and instant, the first stored is kept.
        batch(1, [0, 5, 10_000], [0.99, 0.98, 0.97], 300, HistoryRouteCode.DATA_API),
    ]
    keys = TokenKeys()
    async with pool.acquire() as conn:
        before = {p.name for p in await partitions_of(conn, "history_points")}

    new = await store_history_points(pool, keys, batches)
    again = await store_history_points(pool, keys, batches)

    sids = {b.token_id: (await keys.resolve(pool, [(None, b.token_id, "100")]))[b.token_id]
            for b in batches}  # fmt: skip
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TEMP TABLE per_row (LIKE history_points INCLUDING DEFAULTS); "
            "CREATE UNIQUE INDEX ON per_row (token_sid, ts)"
        )
        for record in per_row_records(batches, sids):  # one at a time: the first one stays
            await conn.execute(
                "INSERT INTO per_row (ts, token_sid, price, fidelity_s, route) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                *record,
            )
        want = await stored(conn, "per_row")
        got = await stored(conn, "history_points")
        made = {p.name for p in await partitions_of(conn, "history_points")} - before
        partitioned = await conn.fetchval(
            "SELECT relkind = 'p' FROM pg_class WHERE relname = 'history_points'"
        )
    assert got == want
    assert new == len(want) == sum(len(b) for b in batches) - 2
    assert again == 0
    last = START + timedelta(minutes=10_000)
    days = {START.date() + timedelta(days=d) for d in range(4)} | {last.date()}
    if partitioned:  # plain PostgreSQL; TimescaleDB makes its chunks itself
        assert made == {f"history_points_p{d:%Y%m%d}" for d in days}


async def test_a_batch_partly_stored_adds_only_its_new_points(pool: asyncpg.Pool) -> None:
    keys = TokenKeys()
    first = [batch(1, [0, 1, 2], [0.1, 0.2, 0.3])]
    assert await store_history_points(pool, keys, first) == 3
    overlapping = [batch(1, [2, 3], [0.9, 0.4]), batch(4, [2], [0.5])]
    assert await store_history_points(pool, keys, overlapping) == 2
    rows = await pool.fetch("SELECT price FROM price_history")
    assert await store_history_points(pool, keys, []) == 0
    assert sorted(r["price"] for r in rows) == [0.1, 0.2, 0.3, 0.4, 0.5]
