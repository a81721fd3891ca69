"""Archive, then drop: on plain PostgreSQL retention drops an expired partition only once the
lake holds every row of it. Real parts: the embedded PostgreSQL and a lake folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from structlog.testing import capture_logs

from polyfarm.lake.archive import archive, plan_days
from polyfarm.lake.storage import Lake, open_lake
from polyfarm.settings import RetentionSettings
from polyfarm.store.database import create_pool
from polyfarm.store.maintenance import apply_retention
from polyfarm.store.partitions import partitions_of
from polyfarm.store.rows import BOOK_DELTAS, PRICE_SNAPSHOTS
from polyfarm.store.writer import BulkWriter

from ..store.factories import T0, delta_row, price_row, token

DAY = timedelta(days=1)
LATER = T0 + 30 * DAY  # when retention runs: both days long expired
RETENTION = RetentionSettings(raw_days=7, book_deltas_days=7, archive_before_drop=True)


@pytest.fixture
async def plain_pool(plain_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(plain_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def export_everything(pool: asyncpg.Pool, dsn: str, lake: Lake) -> list[str]:
    async with pool.acquire() as conn:
        jobs = await plan_days(conn, datetime.now(UTC), timedelta(hours=2))
    report = await archive(pool, dsn, lake, jobs)
    return report.unverified


async def names(pool: asyncpg.Pool, table: str) -> list[str]:
    async with pool.acquire() as conn:
        return [p.name for p in await partitions_of(conn, table)]


async def test_only_what_the_lake_holds_is_dropped(
    plain_pool: asyncpg.Pool, plain_dsn: str, tmp_path: Path
) -> None:
    writer = BulkWriter(plain_pool, clock=lambda: T0 + 2 * DAY)
    # 2026-03-02 and 03-03 of prices; book deltas of 03-02 at 12:00 (a 6-hour partition).
    await writer.write(PRICE_SNAPSHOTS, [price_row(i) for i in (0, 1, 1440)])
    # Two changes each sent on both tokens of the market: four rows of the view in two stored
    # rows, each folded with its mirror (migration 0020); the lake must hold all four.
    mirrored = [
        delta_row(i, token(2))._replace(side="SELL", price=0.51, seq=100 + i) for i in (0, 1)
    ]
    await writer.write(BOOK_DELTAS, [delta_row(0), delta_row(1), *mirrored])
    async with plain_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM book_changes") == 2
    lake = open_lake(str(tmp_path / "lake"))
    assert await export_everything(plain_pool, plain_dsn, lake) == []
    async with plain_pool.acquire() as conn:
        recorded = await conn.fetch(
            "SELECT storage_table, span_start, rows FROM lake_archive ORDER BY 1, 2"
        )
    deltas = [
        (r["span_start"], r["rows"]) for r in recorded if r["storage_table"] == "book_changes"
    ]
    day0 = T0.replace(hour=0)
    assert deltas == [(day0 + timedelta(hours=h), 4 if h == 12 else 0) for h in (0, 6, 12, 18)]

    # A late row of 03-03 after the export: that day's partition waits for the next export.
    await writer.write(PRICE_SNAPSHOTS, [price_row(1441)])
    async with plain_pool.acquire() as conn:
        with capture_logs() as logs:
            await apply_retention(conn, RETENTION, LATER)
    prices = await names(plain_pool, "price_points")
    assert "price_points_p20260302" not in prices
    assert "price_points_p20260303" in prices
    assert not any(
        n.startswith("book_changes_p20260302") for n in await names(plain_pool, "book_changes")
    )
    kept = [e for e in logs if e["event"].startswith("RETENTION: expired partitions kept")]
    assert [e["partitions"] for e in kept if e["table"] == "price_points"] == [
        ["price_points_p20260303"]
    ]
    dropped = [
        e for e in logs if e["event"] == "RETENTION: partition dropped, its rows are in the lake"
    ]
    assert {e["partition"] for e in dropped} >= {
        "price_points_p20260302",
        "book_changes_p20260302_12",
    }

    assert await export_everything(plain_pool, plain_dsn, lake) == []
    async with plain_pool.acquire() as conn:
        await apply_retention(conn, RETENTION, LATER)
    assert "price_points_p20260303" not in await names(plain_pool, "price_points")


async def test_without_the_lake_an_expired_partition_stays(plain_pool: asyncpg.Pool) -> None:
    await BulkWriter(plain_pool, clock=lambda: T0 + DAY).write(PRICE_SNAPSHOTS, [price_row()])
    async with plain_pool.acquire() as conn:
        await apply_retention(conn, RETENTION, LATER)
        assert await conn.fetchval("SELECT count(*) FROM price_snapshots") == 1
        await apply_retention(
            conn, RETENTION.model_copy(update={"archive_before_drop": False}), LATER
        )
        assert await conn.fetchval("SELECT count(*) FROM price_snapshots") == 0
