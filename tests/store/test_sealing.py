"""Finished days of price snapshots rewritten in token order (plain PostgreSQL, embedded)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from polyfarm.settings import RetentionSettings
from polyfarm.store import sealing
from polyfarm.store.maintenance import run_maintenance
from polyfarm.store.partitions import (
    ALL_PARTITIONED_TABLES,
    Partition,
    ensure_partitions,
    partitions_of,
)
from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.sealing import SEAL_AFTER, due_for_sealing, seal_finished_days
from polyfarm.store.writer import BulkWriter

from .factories import price_row, token

DAY = timedelta(days=1)
YESTERDAY = datetime(2026, 3, 1, tzinfo=UTC)
TODAY = YESTERDAY + DAY
NOW = TODAY + timedelta(hours=12)
SEALED = "price_points_p20260301"
# First seen (so given their sids) in an order unlike their ids' (the lake's order).
TOKENS = [token(n) for n in (3, 1, 5, 0, 4, 2)]
MINUTES = 90


@pytest.fixture
async def plain_pool(plain_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """Yesterday's and today's partitions, each holding 90 minutes of six tokens' snapshots
    written as the collector writes them: a minute of every token at a time."""
    pool = await asyncpg.create_pool(plain_dsn, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        for table in ALL_PARTITIONED_TABLES:
            for part in await partitions_of(conn, table.name):
                await conn.execute(f"DROP TABLE {part.name}")
        await ensure_partitions(conn, YESTERDAY, RetentionSettings(partition_days_ahead=1))
        for tok in TOKENS:  # one at a time: a batch's new tokens get sids in id order
            await conn.execute("INSERT INTO token_keys (token_id, market_id) VALUES ($1, 'm')", tok)
    writer = BulkWriter(pool, clock=lambda: NOW)
    for start in (YESTERDAY, TODAY):
        for minute in range(MINUTES):
            rows = [
                price_row(0, tok, price=0.01 * (1 + (n + minute) % 90))._replace(
                    ts=start + timedelta(minutes=minute)
                )
                for n, tok in enumerate(TOKENS)
            ]
            await writer.write(PRICE_SNAPSHOTS, rows)
    yield pool
    await pool.close()


async def stored(conn: asyncpg.Connection, relation: str) -> list[tuple[object, ...]]:
    """Every row of ``relation`` as it lies on disk (heap order)."""
    rows = await conn.fetch(f"SELECT * FROM {relation} ORDER BY ctid")
    return [tuple(row.values()) for row in rows]


async def in_token_order(
    conn: asyncpg.Connection, rows: list[tuple[object, ...]], columns: list[str]
) -> bool:
    """Whether ``rows`` are in the lake's order: token id (byte order), then time."""
    sid, ts = columns.index("token_sid"), columns.index("ts")
    token_of_sid = dict(await conn.fetch("SELECT token_sid, token_id FROM token_keys"))
    keys = [(token_of_sid[row[sid]].encode(), row[ts]) for row in rows]
    return keys == sorted(keys)  # type: ignore[type-var]


def in_sid_order(rows: list[tuple[object, ...]], columns: list[str]) -> bool:
    sid, ts = columns.index("token_sid"), columns.index("ts")
    keys = [(row[sid], row[ts]) for row in rows]
    return keys == sorted(keys)  # type: ignore[type-var]


async def index_shapes(conn: asyncpg.Connection, relation: str) -> list[tuple[str, str]]:
    """``relation``'s indexes without their names, each with the parent index it is attached
    to."""
    found = await conn.fetch(
        "SELECT regexp_replace(pg_get_indexdef(x.indexrelid), 'INDEX \\S+ ON \\S+', 'INDEX ON') "
        "AS shape, p.inhparent::regclass::text AS parent FROM pg_index x "
        "JOIN pg_inherits p ON p.inhrelid = x.indexrelid "
        "WHERE x.indrelid = to_regclass($1) AND x.indisvalid ORDER BY 1",
        relation,
    )
    return [(row["shape"], row["parent"]) for row in found]


async def columns_of(conn: asyncpg.Connection, relation: str) -> list[str]:
    found = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        relation,
    )
    return [row["attname"] for row in found]


def test_only_whole_days_over_for_an_hour_and_not_yet_sealed_are_due() -> None:
    def part(name: str, lower: datetime | None, length: timedelta = DAY) -> Partition:
        return Partition(name, lower, None if lower is None else lower + length)

    existing = [
        part("legacy", None),
        part("quarter", YESTERDAY - DAY, timedelta(hours=6)),
        part("done_before", YESTERDAY - DAY),
        part("done", YESTERDAY),
        part("today", TODAY),
    ]
    just_over = TODAY + SEAL_AFTER
    assert [p.name for p in due_for_sealing(existing, set(), just_over)] == ["done_before", "done"]
    assert [p.name for p in due_for_sealing(existing, {"done"}, just_over)] == ["done_before"]
    assert due_for_sealing(existing, set(), TODAY + SEAL_AFTER / 2)[-1].name == "done_before"


async def test_a_finished_day_is_rewritten_in_token_order_and_nothing_else_changes(
    plain_pool: asyncpg.Pool,
) -> None:
    async with plain_pool.acquire() as conn:
        columns = await columns_of(conn, SEALED)
        before = await stored(conn, SEALED)
        today_before = await stored(conn, "price_points_p20260302")
        bounds_before = await partitions_of(conn, "price_points")
        indexes_before = await index_shapes(conn, SEALED)
        assert len(indexes_before) == 2  # the unique key and the BRIN index on ts
        assert not await in_token_order(
            conn, before, columns
        )  # written a minute of every token at a time

        report = await seal_finished_days(conn, NOW)

        assert report.sealed == [SEALED]
        assert report.rows == len(TOKENS) * MINUTES
        after = await stored(conn, SEALED)
        assert sorted(after) == sorted(before)  # type: ignore[type-var]
        assert await in_token_order(conn, after, columns)
        assert not in_sid_order(after, columns)  # first seen in another order
        assert await stored(conn, "price_points_p20260302") == today_before
        assert await partitions_of(conn, "price_points") == bounds_before
        # The same indexes, each attached to the parent's (so none was built at the swap).
        assert await index_shapes(conn, SEALED) == indexes_before
        # The table's unique key covers the new partition: a second snapshot of a token's
        # minute is refused there as before.
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(f"INSERT INTO price_points SELECT * FROM {SEALED} LIMIT 1")
        assert await conn.fetchval("SELECT to_regclass($1)", f"{SEALED}_sealing") is None
        # Analysed as it was made: the planner knows the new order at once.
        correlation = await conn.fetchval(
            "SELECT correlation FROM pg_stats WHERE tablename = $1 AND attname = 'ts'", SEALED
        )
        assert abs(correlation) < 0.5  # written by time: 1.0
        # Once only.
        assert (await seal_finished_days(conn, NOW + DAY / 2)).sealed == []


async def test_a_day_with_a_write_in_progress_waits_for_the_next_round(
    plain_pool: asyncpg.Pool, plain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sealing, "LOCK_TIMEOUT", "200ms")
    late = await asyncpg.connect(plain_dsn)
    try:
        async with plain_pool.acquire() as conn:
            first_row = await conn.fetchrow(f"SELECT * FROM {SEALED} LIMIT 1")
            transaction = late.transaction()
            await transaction.start()
            # A late row of yesterday, not yet committed: the day is being written to.
            await late.execute(
                "INSERT INTO price_points SELECT ts + interval '30 seconds', volume_24h, "
                f"liquidity, token_sid, price, best_bid, best_ask, last_trade_price "
                f"FROM {SEALED} WHERE token_sid = $1 AND ts = $2",
                first_row["token_sid"],
                first_row["ts"],
            )
            postponed = await seal_finished_days(conn, NOW)
            assert (postponed.sealed, postponed.postponed) == ([], [SEALED])
            await transaction.commit()
            done = await seal_finished_days(conn, NOW)
            assert done.sealed == [SEALED]
            assert done.rows == len(TOKENS) * MINUTES + 1  # the late row is in the new copy
    finally:
        await late.close()


async def test_a_long_reader_postpones_the_swap_and_leaves_the_day_as_it_was(
    plain_pool: asyncpg.Pool, plain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sealing, "SWAP_TRIES", 2)
    monkeypatch.setattr(sealing, "SWAP_RETRY_S", 0.05)
    reader = await asyncpg.connect(plain_dsn)
    try:
        async with plain_pool.acquire() as conn:
            before = await stored(conn, SEALED)
            async with reader.transaction():
                await reader.fetchval("SELECT count(*) FROM price_points")
                report = await seal_finished_days(conn, NOW)
            assert (report.sealed, report.postponed) == ([], [SEALED])
            assert await stored(conn, SEALED) == before
            assert await conn.fetchval("SELECT to_regclass($1)", f"{SEALED}_sealing") is None
    finally:
        await reader.close()


async def test_rows_written_while_a_day_is_sealed_are_all_kept(
    plain_pool: asyncpg.Pool,
) -> None:
    writer = BulkWriter(plain_pool, clock=lambda: NOW)
    late = [
        price_row(0, tok)._replace(ts=YESTERDAY + timedelta(hours=5, seconds=n))
        for n, tok in enumerate(TOKENS)
    ]
    current = [price_row(0, tok)._replace(ts=NOW) for tok in TOKENS]

    async def seal() -> list[str]:
        async with plain_pool.acquire() as conn:
            return (await seal_finished_days(conn, NOW)).sealed

    sealed, *_ = await asyncio.gather(
        seal(), writer.write(PRICE_SNAPSHOTS, late), writer.write(PRICE_SNAPSHOTS, current)
    )
    # A late row that came during the copy makes the day wait for the next round (the writer
    # and the swap would otherwise wait for each other); no row is lost either way.
    if sealed != [SEALED]:
        assert await seal() == [SEALED]
    async with plain_pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {SEALED}") == (
            len(TOKENS) * (MINUTES + 1)
        )
        assert await conn.fetchval("SELECT count(*) FROM price_points WHERE ts = $1", NOW) == 6


async def test_maintenance_seals_finished_days_unless_told_not_to(
    plain_pool: asyncpg.Pool,
) -> None:
    async with plain_pool.acquire() as conn:
        kept = await run_maintenance(conn, RetentionSettings(seal_finished_days=False), NOW)
        assert kept.sealed == []
        report = await run_maintenance(conn, RetentionSettings(), NOW)
        assert report.sealed == [SEALED]


async def test_a_late_row_during_the_copy_gets_through_and_the_day_waits(
    plain_pool: asyncpg.Pool, plain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer holds the table and waits for the day; the swap then waits for the table:
    the day is given up, not the writer's row."""
    writer = await asyncpg.connect(plain_dsn)
    swap = sealing._swap
    inserting: list[asyncio.Task[str]] = []

    async def swap_with_a_writer_waiting(conn: asyncpg.Connection, *args: str) -> None:
        inserting.append(
            asyncio.create_task(
                writer.execute(
                    "INSERT INTO price_points SELECT ts + interval '1 second', volume_24h, "
                    "liquidity, token_sid, price, best_bid, best_ask, last_trade_price "
                    f"FROM {SEALED} ORDER BY ts LIMIT 1"
                )
            )
        )
        await asyncio.sleep(0.5)  # the insert now holds the table and waits for the day
        assert not inserting[0].done()
        await swap(conn, *args)

    monkeypatch.setattr(sealing, "_swap", swap_with_a_writer_waiting)
    try:
        async with plain_pool.acquire() as conn:
            report = await seal_finished_days(conn, NOW)
            assert (report.sealed, report.postponed) == ([], [SEALED])
            assert await inserting[0] == "INSERT 0 1"
            assert await conn.fetchval(f"SELECT count(*) FROM {SEALED}") == (
                len(TOKENS) * MINUTES + 1
            )
    finally:
        await writer.close()


async def test_a_round_rewrites_the_newest_finished_day_only(plain_pool: asyncpg.Pool) -> None:
    """Two finished days: the newer one first, the older at the next round."""
    async with plain_pool.acquire() as conn:
        later = NOW + DAY
        first = await seal_finished_days(conn, later)
        second = await seal_finished_days(conn, later)
        third = await seal_finished_days(conn, later)
    assert (first.sealed, second.sealed, third.sealed) == (
        ["price_points_p20260302"],
        [SEALED],
        [],
    )
