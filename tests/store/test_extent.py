"""The days a stored table holds rows for, read off its partitions or chunks instead of a scan
of every row. Real parts: the embedded PostgreSQL, and TimescaleDB when one is configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from polyfarm.store.extent import Span, stored_days
from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.writer import BulkWriter

from .factories import T0, price_row

DAY = timedelta(days=1)


def midnight(day: int) -> datetime:
    return datetime(2026, 3, day, tzinfo=UTC)


def test_a_span_lies_in_one_day_only_when_it_ends_by_the_next_midnight() -> None:
    assert Span(midnight(2), midnight(3)).one_day() == date(2026, 3, 2)
    assert Span(midnight(2) + timedelta(hours=18), midnight(3)).one_day() == date(2026, 3, 2)
    assert Span(midnight(2), midnight(3) + timedelta(microseconds=1)).one_day() is None
    assert Span(midnight(2), midnight(9)).one_day() is None  # a week's chunk
    assert Span(None, midnight(3)).one_day() is None  # the legacy partition


async def test_the_days_of_a_stored_table_on_either_flavour(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await stored_days(conn, "price_points") is None
    writer = BulkWriter(pool, clock=lambda: T0 + 3 * DAY)
    # 2026-03-02 12:00, 03-03 12:00 and 03-05 11:59: a day without rows in between.
    await writer.write(PRICE_SNAPSHOTS, [price_row(i) for i in (0, 1440, 4319)])
    async with pool.acquire() as conn:
        assert await stored_days(conn, "price_points") == (date(2026, 3, 2), date(2026, 3, 5))
        if await conn.fetchval("SELECT to_regclass('timescaledb_information.chunks') IS NULL"):
            return
        # Compressed chunks keep no rows of their own: the days are still found.
        await conn.execute("ALTER TABLE price_points SET (timescaledb.compress)")
        await conn.execute("SELECT compress_chunk(c) FROM show_chunks('price_points') c")
        assert await stored_days(conn, "price_points") == (date(2026, 3, 2), date(2026, 3, 5))


@pytest.fixture
async def series(plain_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A table partitioned as an upgraded database's are: a legacy partition up to 03-03, day
    partitions from there (some empty), and a DEFAULT partition."""
    conn = await asyncpg.connect(plain_dsn)
    await conn.execute(
        """
        CREATE TABLE series (ts timestamptz NOT NULL, v int) PARTITION BY RANGE (ts);
        CREATE TABLE series_legacy PARTITION OF series FOR VALUES FROM (MINVALUE)
            TO ('2026-03-03T00:00Z');
        CREATE TABLE series_p20260303 PARTITION OF series FOR VALUES FROM ('2026-03-03T00:00Z')
            TO ('2026-03-04T00:00Z');
        CREATE TABLE series_p20260304 PARTITION OF series FOR VALUES FROM ('2026-03-04T00:00Z')
            TO ('2026-03-05T00:00Z');
        CREATE TABLE series_p20260305_06 PARTITION OF series
            FOR VALUES FROM ('2026-03-05T06:00Z') TO ('2026-03-05T12:00Z');
        CREATE TABLE series_p20260306 PARTITION OF series FOR VALUES FROM ('2026-03-06T00:00Z')
            TO ('2026-03-07T00:00Z');
        CREATE TABLE series_default PARTITION OF series DEFAULT;
        """
    )
    yield conn
    await conn.close()


async def insert(conn: asyncpg.Connection, *at: datetime) -> None:
    await conn.executemany("INSERT INTO series VALUES ($1, 0)", [(t,) for t in at])


async def test_partitions_are_asked_from_both_ends(series: asyncpg.Connection) -> None:
    assert await stored_days(series, "series") is None
    await insert(series, midnight(4) + timedelta(hours=23, minutes=59))
    assert await stored_days(series, "series") == (date(2026, 3, 4), date(2026, 3, 4))
    await insert(series, midnight(5) + timedelta(hours=11, minutes=59))  # a 6-hour partition
    assert await stored_days(series, "series") == (date(2026, 3, 4), date(2026, 3, 5))


async def test_the_legacy_partition_is_scanned_for_its_own_first_day(
    series: asyncpg.Connection,
) -> None:
    await insert(series, midnight(1) + timedelta(hours=7), midnight(3))
    assert await stored_days(series, "series") == (date(2026, 3, 1), date(2026, 3, 3))


async def test_rows_in_the_default_partition_count_at_either_end(
    series: asyncpg.Connection,
) -> None:
    await insert(series, midnight(4))
    # A row no partition takes: before the 6-hour partition of 03-05, and long after the last.
    await insert(series, midnight(5) + timedelta(hours=1))
    assert await stored_days(series, "series") == (date(2026, 3, 4), date(2026, 3, 5))
    await insert(series, midnight(20))
    assert await stored_days(series, "series") == (date(2026, 3, 4), date(2026, 3, 20))


async def test_a_table_neither_partitioned_nor_chunked_is_scanned(plain_dsn: str) -> None:
    conn = await asyncpg.connect(plain_dsn)
    try:
        await conn.execute("CREATE TABLE flat (ts timestamptz NOT NULL)")
        assert await stored_days(conn, "flat") is None
        await conn.execute("INSERT INTO flat VALUES ('2026-03-02T05:00Z'), ('2026-03-09T23:00Z')")
        assert await stored_days(conn, "flat") == (date(2026, 3, 2), date(2026, 3, 9))
    finally:
        await conn.close()
