"""Price snapshots go to COPY (as price points) in our own binary encoding, sorted in
unique-index order."""

from __future__ import annotations

import asyncio
import itertools
import random
import struct
from datetime import timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from polyfarm.store.compact import COPY_BINARY_HEADER, PRICE_POINTS, encode_price_points
from polyfarm.store.queries import latest_prices
from polyfarm.store.rows import PRICE_SNAPSHOTS, PriceSnapshotRow
from polyfarm.store.writer import BulkWriter, copy_parts, key_range_groups

from .factories import T0, price_row, token

NOW = T0 + timedelta(hours=1)
FLOATS = PriceSnapshotRow._fields[3:]


def writer(pool: asyncpg.Pool, parallelism: int = 2) -> BulkWriter:
    return BulkWriter(pool, max_future_skew_s=3600, clock=lambda: NOW, parallelism=parallelism)


def many_rows(count: int, tokens: int = 3_000, seed: int = 7) -> list[PriceSnapshotRow]:
    """One row per token per minute, tokens in a random (not index) order."""
    rng = random.Random(seed)
    ids = [token(rng.randrange(10**70)) for _ in range(tokens)]
    return [
        price_row(i // tokens, ids[i % tokens], round(rng.uniform(0.02, 0.98), 3))
        for i in range(count)
    ]


async def stored_rows(pool: asyncpg.Pool) -> set[tuple[Any, ...]]:
    columns = ", ".join(PRICE_SNAPSHOTS.columns)
    return {tuple(r) for r in await pool.fetch(f"SELECT {columns} FROM price_snapshots")}


def sids_for(rows: list[PriceSnapshotRow]) -> dict[str, int]:
    """Sids as the registry hands them out: in order of first sight, not of token id."""
    sids: dict[str, int] = {}
    for row in rows:
        sids.setdefault(row.token_id, len(sids) + 1)
    return sids


def sids_of(payload: memoryview) -> list[int]:
    """The token_sid of every tuple of a binary COPY payload (the first column)."""
    data = bytes(payload)[len(COPY_BINARY_HEADER) : -2]
    sids, offset = [], 0
    while offset < len(data):
        (fields,) = struct.unpack_from(">h", data, offset)
        offset += 2
        for field in range(fields):
            (length,) = struct.unpack_from(">i", data, offset)
            offset += 4
            if field == 0:
                sids.append(struct.unpack_from(">i", data, offset)[0])
            offset += max(length, 0)
    return sids


def with_null(row: PriceSnapshotRow, name: str) -> PriceSnapshotRow:
    """``row`` without ``name``; the spread goes with the bid or the ask it is computed from."""
    row = row._replace(**{name: None})  # type: ignore[arg-type]
    return row._replace(spread=None) if name in ("best_bid", "best_ask") else row


async def test_nulls_time_zones_and_any_text_round_trip(pool: asyncpg.Pool) -> None:
    paris = timezone(timedelta(hours=2))
    nulls: dict[str, Any] = dict.fromkeys(FLOATS)
    rows = [with_null(price_row(i), name) for i, name in enumerate(FLOATS) if name != "spread"]
    rows += [
        price_row(10)._replace(**nulls),
        price_row(11)._replace(ts=(T0 + timedelta(minutes=11)).astimezone(paris)),
        price_row(12)._replace(token_id="é" * 3, market_id="市场"),
        price_row(13)._replace(token_id="9", price=1, volume_24h=Decimal("12.5")),  # type: ignore[arg-type]
        price_row(14)._replace(ts=T0 + timedelta(minutes=14, microseconds=1)),
    ]
    result = await writer(pool).write(PRICE_SNAPSHOTS, rows)
    assert (result.inserted, result.rejected) == (len(rows), [])
    expected = {tuple(float(v) if isinstance(v, Decimal) else v for v in row) for row in rows}
    assert await stored_rows(pool) == expected


def test_parts_are_sorted_disjoint_key_ranges() -> None:
    rows = many_rows(12_000)
    sids = sids_for(rows)
    parts = copy_parts(PRICE_POINTS, rows, sids, 2)
    assert [part.rows for part in parts] == [6_000, 6_000]
    assert all(part.columns[:2] == ("token_sid", "ts") for part in parts)
    first, second = (sids_of(part.payload) for part in parts if part.payload is not None)
    assert first == sorted(first)
    assert second == sorted(second)
    assert first[-1] <= second[0]
    assert sorted(first + second) == sorted(sids[row.token_id] for row in rows)


def test_encoding_does_not_depend_on_batch_order() -> None:
    rows = many_rows(500)
    sids = sids_for(rows)
    shuffled = random.Random(1).sample(rows, len(rows))
    assert sorted(encode_price_points(rows, sids)) == sorted(encode_price_points(shuffled, sids))


async def test_a_large_batch_over_parallel_copies_stores_every_row(pool: asyncpg.Pool) -> None:
    rows = many_rows(12_000)
    result = await writer(pool).write(PRICE_SNAPSHOTS, rows)
    assert (result.inserted, result.duplicates) == (12_000, 0)
    assert await stored_rows(pool) == {tuple(row) for row in rows}


async def test_a_large_overlapping_replay_stores_each_row_once(pool: asyncpg.Pool) -> None:
    rows = many_rows(12_000)
    w = writer(pool)
    assert (await w.write(PRICE_SNAPSHOTS, rows[:8_000])).inserted == 8_000
    replay = await w.write(PRICE_SNAPSHOTS, rows)  # staging path, from the encoded payload
    assert (replay.inserted, replay.duplicates) == (4_000, 8_000)
    again = await writer(pool, parallelism=1).write(PRICE_SNAPSHOTS, rows)
    assert (again.inserted, again.duplicates) == (0, 12_000)
    assert await stored_rows(pool) == {tuple(row) for row in rows}


async def test_duplicates_inside_a_large_batch_are_stored_once(pool: asyncpg.Pool) -> None:
    rows = many_rows(6_000)
    result = await writer(pool).write(PRICE_SNAPSHOTS, rows + rows[:100])
    assert (result.inserted, result.duplicates) == (6_000, 100)
    assert await pool.fetchval("SELECT count(*) FROM price_snapshots") == 6_000


async def test_latest_prices_read_what_parallel_copies_wrote(pool: asyncpg.Pool) -> None:
    rows = many_rows(9_000, tokens=3_000)  # three minutes of 3,000 tokens
    await writer(pool).write(PRICE_SNAPSHOTS, rows)
    expected = {row.token_id: row for row in rows}  # the last minute wins
    async with pool.acquire() as conn:
        latest = await latest_prices(conn, list(expected))
    assert len(latest) == len(expected)
    for found in latest:
        row = expected[found.token_id]
        assert (found.ts, found.price, found.best_bid) == (row.ts, row.price, row.best_bid)
        assert found.ts == T0 + timedelta(minutes=2)


def test_key_range_groups_are_disjoint_and_keep_arrival_order() -> None:
    rows = many_rows(20_000)
    sids = sids_for(rows)
    groups = key_range_groups(rows, sids, 4)
    assert len(groups) == 4
    assert all(3_000 < len(group) < 7_000 for group in groups)
    assert sum(len(group) for group in groups) == len(rows)
    for left, right in itertools.pairwise(groups):
        assert max(sids[row[1]] for row in left) < min(sids[row[1]] for row in right)
    position = {id(row): i for i, row in enumerate(rows)}
    for group in groups:
        assert [position[id(row)] for row in group] == sorted(position[id(row)] for row in group)


async def test_a_failing_part_raises_its_own_error_and_leaves_no_task(
    pool: asyncpg.Pool,
) -> None:
    rows = many_rows(12_000)
    rows[5_000] = rows[5_000]._replace(price=0.123457)  # a price the server is told to refuse
    await pool.execute("ALTER TABLE price_points ADD CONSTRAINT refused CHECK (price <> 123457)")
    with pytest.raises(asyncpg.PostgresError):
        await writer(pool).write(PRICE_SNAPSHOTS, rows)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    await pool.execute("ALTER TABLE price_points DROP CONSTRAINT refused")
    retry = await writer(pool).write(PRICE_SNAPSHOTS, rows)  # parts that committed are kept
    assert retry.inserted + retry.duplicates == 12_000
    assert await stored_rows(pool) == {tuple(row) for row in rows}
