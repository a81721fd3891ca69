"""Day partitions on plain PostgreSQL: made ahead or on demand, dropped by retention.

The database tests run on the embedded PostgreSQL (plain); the TimescaleDB one checks that
nothing there changes, and is skipped, saying why, without POLYFARM_TEST_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from polyfarm.settings import RetentionSettings, Settings
from polyfarm.store import partitions
from polyfarm.store.database import create_pool, migrate_database
from polyfarm.store.maintenance import apply_retention, run_maintenance
from polyfarm.store.partitions import (
    ALL_PARTITIONED_TABLES,
    PARTITIONED_TABLES,
    Partition,
    PartitionedTable,
    UpkeepReport,
    create_partition,
    ensure_partitions,
    fully_expired,
    make_partitions_for,
    missing_spans,
    partition_name,
    partitioned_tables,
    partitions_of,
    partly_expired,
    series_bytes,
    span_start,
    spans_from,
    spans_holding,
)
from polyfarm.store.rows import (
    BOOK_DELTAS,
    MARKET_FEATURES,
    ORDERBOOK_SNAPSHOTS,
    PRICE_SNAPSHOTS,
    TRADES,
)
from polyfarm.store.writer import BulkWriter

from ..support import as_reader
from .factories import book_row, delta_row, feature_row, price_row, token, trade_row

DAY = timedelta(days=1)
NOW = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)  # T0 of the factories is 2026-03-02 12:00


def day(n: int) -> datetime:
    """Midnight UTC of 2026-03-``n`` (0 and below run into February)."""
    return datetime(2026, 3, 1, tzinfo=UTC) + (n - 1) * DAY


@pytest.fixture
async def plain_pool(plain_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A database migrated without a partition yet: the template's, made for today's date
    like the daemon's, are dropped, so that each test sees only the ones it makes."""
    pool = await create_pool(plain_dsn, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        for table in ALL_PARTITIONED_TABLES:
            for part in await partitions_of(conn, table.name):
                await conn.execute(f"DROP TABLE {part.name}")
    yield pool
    await pool.close()


async def add_default_partitions(conn: asyncpg.Connection) -> None:
    """The DEFAULT partitions migration 0015 made, as a database has them before this version's
    first start (the test template, like the daemon, has retired them)."""
    for table in PARTITIONED_TABLES:
        await conn.execute(
            f"CREATE TABLE {table.default_partition} PARTITION OF {table.name} DEFAULT"
        )


async def located(conn: asyncpg.Connection, table: str) -> dict[str, int]:
    """Rows of ``table`` by the partition holding them."""
    rows = await conn.fetch(
        f"SELECT tableoid::regclass::text AS part, count(*) FROM {table} GROUP BY 1"
    )
    return {r["part"]: r["count"] for r in rows}


# -- naming and bounds ------------------------------------------------------------------------


def test_spans_are_utc_days_counted_from_the_epoch() -> None:
    assert span_start(datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC), DAY) == day(2)
    east = timezone(timedelta(hours=2))
    assert span_start(datetime(2026, 3, 3, 1, 0, tzinfo=east), DAY) == day(2)  # 23:00 UTC
    assert partition_name(PartitionedTable("price_points"), day(2)) == "price_points_p20260302"
    six_hours = PartitionedTable("book_changes", timedelta(hours=6))
    assert span_start(NOW, six_hours.span) == day(2) + timedelta(hours=12)
    assert partition_name(six_hours, day(2) + timedelta(hours=18)) == "book_changes_p20260302_18"
    assert spans_from(NOW, NOW + 3 * DAY, DAY) == [day(2), day(3), day(4), day(5)]


def many_timestamps() -> list[datetime]:
    """A backfill's batch: every minute of days -8 and -7, a few rows of day 9 and the last
    instant of day 4, repeated, shuffled, in two time zones; nothing in days -6 to 3."""
    east = timezone(timedelta(hours=2))
    minutes = [day(-8) + timedelta(minutes=m) for m in range(2 * 1440)]
    rest = [day(9) + timedelta(hours=h) for h in range(0, 24, 5)] + [day(5) - MICROSECOND]
    stamps = [*minutes, *rest, *(t.astimezone(east) for t in minutes[::7]), *minutes[:100]]
    random.Random(4).shuffle(stamps)
    return stamps


MICROSECOND = timedelta(microseconds=1)


def test_the_spans_holding_many_rows_are_those_of_each_row() -> None:
    stamps = many_timestamps()
    for span in (DAY, timedelta(hours=6), timedelta(hours=1)):
        assert spans_holding(stamps, span) == sorted({span_start(t, span) for t in stamps})
    assert spans_holding(stamps, DAY) == [day(-8), day(-7), day(4), day(9)]
    assert spans_holding([], DAY) == []


def test_missing_spans_leave_out_what_a_partition_covers() -> None:
    existing = [
        Partition("t_default", None, None, is_default=True),
        Partition("t_legacy", None, day(3)),
        Partition("t_p20260305", day(5), day(6)),
    ]
    wanted = [day(1), day(2), day(3), day(4), day(5), day(4)]
    assert missing_spans(wanted, DAY, existing) == [day(3), day(4)]


def test_expired_partitions_go_whole_and_longer_ones_lose_old_rows() -> None:
    default = Partition("t_default", None, None, is_default=True)
    legacy = Partition("t_legacy", None, day(3))
    days = [Partition(f"t_p2026030{n}", day(n), day(n + 1)) for n in (3, 4, 5)]
    existing = [default, legacy, *days]

    early = day(2) + timedelta(hours=12)  # inside the legacy partition's range
    assert fully_expired(existing, early) == []
    assert partly_expired(existing, early) == [default, legacy]

    late = day(4) + timedelta(hours=12)  # inside 2026-03-04: that day is kept whole
    assert fully_expired(existing, late) == [legacy, days[0]]
    assert partly_expired(existing, late) == [default]
    # A day's partition left by a version with a longer span than today's is not legacy.
    assert partly_expired([default, days[1]], day(4) + timedelta(hours=7)) == [default]
    assert not legacy.is_span(DAY)
    assert days[0].is_span(DAY)


# -- upkeep -----------------------------------------------------------------------------------


async def test_partitions_are_made_from_today_to_the_days_ahead(plain_pool: asyncpg.Pool) -> None:
    retention = RetentionSettings(partition_days_ahead=3)
    async with plain_pool.acquire() as conn:
        made = await ensure_partitions(conn, NOW, retention)
        again = await ensure_partitions(conn, NOW, retention)
        listed = {t.name: await partitions_of(conn, t.name) for t in ALL_PARTITIONED_TABLES}
    assert again.created == []
    for table in ALL_PARTITIONED_TABLES:
        if table.name == "book_changes":
            continue
        days = [f"{table.name}_p2026030{n}" for n in (2, 3, 4, 5)]
        assert [p.name for p in listed[table.name]] == days
        assert [(p.lower, p.upper) for p in listed[table.name]] == [
            (day(n), day(n + 1)) for n in (2, 3, 4, 5)
        ]
        assert set(days) <= set(made.created)
    # Book deltas by 6 hours: from the quarter holding now to the one holding now + 3 days.
    quarters = [day(2) + timedelta(hours=12 + 6 * n) for n in range(13)]
    deltas = listed["book_changes"]
    assert [(p.lower, p.upper) for p in deltas] == [(q, q + timedelta(hours=6)) for q in quarters]
    assert [p.name for p in deltas][:2] == [
        "book_changes_p20260302_12",
        "book_changes_p20260302_18",
    ]
    assert deltas[-1].name == "book_changes_p20260305_12"
    assert len(made.created) == 4 * 5 + 13


async def test_start_up_makes_the_partitions_before_any_writer(plain_pool: asyncpg.Pool) -> None:
    settings = Settings(retention=RetentionSettings(partition_days_ahead=1))
    await migrate_database(plain_pool, settings, clock=lambda: NOW)
    async with plain_pool.acquire() as conn:
        names = [p.name for p in await partitions_of(conn, "trade_fills")]
    assert names == ["trade_fills_p20260302", "trade_fills_p20260303"]


async def test_a_table_whose_span_changed_keeps_its_older_partitions(
    plain_pool: asyncpg.Pool,
) -> None:
    async with plain_pool.acquire() as conn:  # book deltas by the day, as before 6 hours
        await create_partition(conn, PartitionedTable("book_changes", DAY), day(2))
        made = await ensure_partitions(conn, NOW, RetentionSettings(partition_days_ahead=1))
        listed = await partitions_of(conn, "book_changes")
        sizes = await series_bytes(conn, day(3) + timedelta(hours=1))
    assert [p.name for p in listed] == [
        "book_changes_p20260302",
        *(f"book_changes_p20260303_{hour:02d}" for hour in (0, 6, 12)),
    ]
    assert "book_changes_p20260302_12" not in made.created
    assert sizes is not None  # 2026-03-02 is whole in its one partition
    assert sizes.last_day["book_changes"] > 0


async def test_every_time_series_lands_in_its_day_partition(plain_pool: asyncpg.Pool) -> None:
    async with plain_pool.acquire() as conn:
        await ensure_partitions(conn, NOW, RetentionSettings())
    writer = BulkWriter(plain_pool, clock=lambda: NOW)
    batches = {
        (PRICE_SNAPSHOTS, "price_points"): [price_row(i) for i in range(5)],
        (ORDERBOOK_SNAPSHOTS, "book_samples"): [book_row(i) for i in range(5)],
        (MARKET_FEATURES, "feature_samples"): [feature_row(i) for i in range(5)],
        (TRADES, "trade_fills"): [trade_row(i) for i in range(5)],
        (BOOK_DELTAS, "book_changes"): [delta_row(i) for i in range(5)],
    }
    for (spec, _), rows in batches.items():
        assert (await writer.write(spec, rows)).inserted == 5
        # Again: the copy hits the unique key and goes through the staging table.
        again = await writer.write(spec, rows)
        assert (again.inserted, again.duplicates) == (0, 5)
    async with plain_pool.acquire() as conn:
        for _, table in batches:
            span = "_12" if table == "book_changes" else ""  # book deltas by 6 hours
            assert await located(conn, table) == {f"{table}_p20260302{span}": 5}, table


async def test_default_rows_move_into_partitions_and_the_default_goes(
    plain_pool: asyncpg.Pool,
) -> None:
    # A database migrated by 0015 and written to before any upkeep: its rows sit in DEFAULT.
    async with plain_pool.acquire() as conn:
        await add_default_partitions(conn)
    backfilled = [price_row(i)._replace(ts=day(-8) + timedelta(hours=i)) for i in range(3)]
    ahead = price_row(0)._replace(ts=day(9) + timedelta(hours=1), token_id=token(7))
    expired = price_row(0)._replace(ts=NOW - 200 * DAY, token_id=token(8))
    rows = [*backfilled, ahead, expired]
    written = await BulkWriter(plain_pool, clock=lambda: day(10)).write(PRICE_SNAPSHOTS, rows)
    assert written.inserted == 5
    async with plain_pool.acquire() as conn:
        assert await located(conn, "price_points") == {"price_points_default": 5}
        before = await conn.fetch("SELECT * FROM price_snapshots ORDER BY token_id, ts")
        made = await ensure_partitions(conn, NOW, RetentionSettings())
        after = await conn.fetch("SELECT * FROM price_snapshots ORDER BY token_id, ts")
        where = await located(conn, "price_points")
        names = [p.name for p in await partitions_of(conn, "price_points")]
    assert {"price_points_p20250814", "price_points_p20260220", "price_points_p20260309"} <= set(
        made.created
    )
    assert made.moved_rows == 5
    # The expired row too gets a partition, which retention then drops whole.
    assert where == {
        "price_points_p20250814": 1,
        "price_points_p20260220": 3,
        "price_points_p20260309": 1,
    }
    assert after == before
    assert made.retired == [table.default_partition for table in PARTITIONED_TABLES]
    assert "price_points_default" not in names


async def test_a_row_outside_every_partition_gets_one(plain_pool: asyncpg.Pool) -> None:
    async with plain_pool.acquire() as conn:
        await ensure_partitions(conn, NOW, RetentionSettings())  # 03-02 to 03-05, no DEFAULT
    backfilled = [price_row(i)._replace(ts=day(-8) + timedelta(hours=i)) for i in range(3)]
    ahead = price_row(0)._replace(ts=day(9) + timedelta(hours=1), token_id=token(7))
    deltas = [delta_row(i)._replace(ts=day(-8) + timedelta(hours=7 * i)) for i in range(3)]
    writer = BulkWriter(plain_pool, clock=lambda: day(10))
    with capture_logs() as logs:
        assert (await writer.write(PRICE_SNAPSHOTS, [*backfilled, ahead])).inserted == 4
        assert (await writer.write(BOOK_DELTAS, deltas)).inserted == 3
    again = await writer.write(PRICE_SNAPSHOTS, [*backfilled, ahead])
    async with plain_pool.acquire() as conn:
        prices = await located(conn, "price_points")
        changes = await located(conn, "book_changes")
    assert (again.inserted, again.duplicates) == (0, 4)
    assert prices == {"price_points_p20260220": 3, "price_points_p20260309": 1}
    assert changes == {
        "book_changes_p20260220_00": 1,
        "book_changes_p20260220_06": 1,
        "book_changes_p20260220_12": 1,
    }
    made = [e for e in logs if e["event"].startswith("partitions made for rows outside")]
    assert [e["partitions"] for e in made] == [
        ["price_points_p20260220", "price_points_p20260309"],
        ["book_changes_p20260220_00", "book_changes_p20260220_06", "book_changes_p20260220_12"],
    ]
    assert all(e["log_level"] == "warning" for e in made)


async def test_many_rows_outside_the_partitions_get_their_days_only(
    plain_pool: asyncpg.Pool,
) -> None:
    async with plain_pool.acquire() as conn:
        made = await make_partitions_for(conn, "history_points", many_timestamps())
        again = await make_partitions_for(conn, "history_points", many_timestamps())
        names = [p.name for p in await partitions_of(conn, "history_points")]
    days = ["history_points_p20260220", "history_points_p20260221", "history_points_p20260304",
            "history_points_p20260309"]  # fmt: skip
    assert made == names == days
    assert again == []


async def test_a_token_s_newest_row_reads_the_newest_partition_only(
    plain_pool: asyncpg.Pool,
) -> None:
    async with plain_pool.acquire() as conn:
        await ensure_partitions(conn, NOW - 6 * DAY, RetentionSettings(partition_days_ahead=9))
    rows = [price_row(0)._replace(ts=day(n) + timedelta(hours=1)) for n in range(-4, 4)]
    await BulkWriter(plain_pool, clock=lambda: NOW).write(PRICE_SNAPSHOTS, rows)
    async with plain_pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")  # as at scale: a day is millions of rows
        sid = await conn.fetchval("SELECT token_sid FROM price_points LIMIT 1")
        plan = await conn.fetchval(
            "EXPLAIN (ANALYZE, COSTS OFF, FORMAT JSON) SELECT ts FROM price_points "
            f"WHERE token_sid = {int(sid)} ORDER BY ts DESC LIMIT 1"
        )
    nodes = _plan_nodes(plan[0]["Plan"])  # the pool decodes json
    assert "Merge Append" not in {node["Node Type"] for node in nodes}
    probed = {n["Relation Name"] for n in nodes if n.get("Actual Loops") and "Relation Name" in n}
    # Newest first: the two empty days ahead, then the day with the row, and no further.
    assert probed == {f"price_points_p2026030{n}" for n in (3, 4, 5)}


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in _plan_nodes(child))]


async def upkeep_while_read(pool: asyncpg.Pool, dsn: str) -> UpkeepReport:
    """The upkeep while another session is inside a long read of all of price_points."""
    reader = await asyncpg.connect(dsn)
    try:
        async with reader.transaction():
            await reader.fetchval("SELECT count(*) FROM price_points")
            async with pool.acquire() as conn:
                return await ensure_partitions(conn, NOW, RetentionSettings())
    finally:
        await reader.close()


async def test_a_long_read_does_not_hold_up_a_new_partition(
    plain_pool: asyncpg.Pool, plain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "100ms")
    made = await upkeep_while_read(plain_pool, plain_dsn)  # ATTACH does not wait for readers
    assert made.postponed == []
    assert {f"price_points_p2026030{n}" for n in (2, 3, 4, 5)} <= set(made.created)


async def test_a_busy_default_partition_postpones_its_retirement(
    plain_pool: asyncpg.Pool, plain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "100ms")
    async with plain_pool.acquire() as conn:
        await add_default_partitions(conn)
    busy = await upkeep_while_read(plain_pool, plain_dsn)  # the read holds DEFAULT
    async with plain_pool.acquire() as conn:
        later = await ensure_partitions(conn, NOW, RetentionSettings())
    days = [f"price_points_p2026030{n}" for n in (2, 3, 4, 5)]
    assert busy.postponed == [*days, "price_points_default"]
    assert not any(name.startswith("price_points") for name in busy.created)
    assert "price_points_default" not in busy.retired
    assert later.created == days
    assert later.retired == ["price_points_default"]


async def test_the_reader_role_reads_new_partitions(
    plain_pool: asyncpg.Pool, plain_dsn: str
) -> None:
    async with plain_pool.acquire() as conn:
        await ensure_partitions(conn, NOW, RetentionSettings())
    await BulkWriter(plain_pool, clock=lambda: NOW).write(PRICE_SNAPSHOTS, [price_row()])
    reader = await asyncpg.connect(as_reader(plain_dsn))
    try:
        assert await reader.fetchval("SELECT count(*) FROM price_snapshots") == 1
        assert await reader.fetchval("SELECT count(*) FROM price_points_p20260302") == 1
    finally:
        await reader.close()


# -- retention --------------------------------------------------------------------------------


async def test_retention_drops_expired_days_whole(
    plain_pool: asyncpg.Pool,
) -> None:
    retention = RetentionSettings(raw_days=10, partition_days_ahead=13)
    async with plain_pool.acquire() as conn:
        await ensure_partitions(conn, NOW - 13 * DAY, retention)  # 2026-02-17 to 03-02
    daily = [price_row()._replace(ts=day(n) + timedelta(hours=6)) for n in range(-11, 3)]
    stray = price_row()._replace(ts=day(-40), token_id=token(9))  # gets a partition of its own
    await BulkWriter(plain_pool, clock=lambda: NOW).write(PRICE_SNAPSHOTS, [*daily, stray])
    async with plain_pool.acquire() as conn:
        with capture_logs() as logs:
            deleted = await apply_retention(conn, retention, NOW)
        left = [r["ts"] for r in await conn.fetch("SELECT ts FROM price_snapshots ORDER BY ts")]
        names = [p.name for p in await partitions_of(conn, "price_points")]
    # The cutoff, 2026-02-20 12:30, lies inside 2026-02-20: that day is kept whole.
    assert names[:2] == ["price_points_p20260220", "price_points_p20260221"]
    assert left == [row.ts for row in daily[3:]]
    assert deleted["price_snapshots"] == 4  # four days dropped
    drops = [e for e in logs if e["event"].startswith("RETENTION")]
    assert all("gone for good" in e["event"] for e in drops)
    prices = [(e["log_level"], e["day"], e["rows"]) for e in drops if e["table"] == "price_points"]
    days = ["2026-01-19", *(f"2026-02-{d}" for d in (17, 18, 19))]
    assert prices == [("warning", d, 1) for d in days]
    # Kept 10 days as well; order books 183 days and book deltas 14 lose nothing.
    assert {e["table"] for e in drops} == {"price_points", "trade_fills", "feature_samples"}


async def test_maintenance_expires_then_makes_the_days_ahead(plain_pool: asyncpg.Pool) -> None:
    retention = RetentionSettings(raw_days=1, orderbook_days=1, book_deltas_days=1)
    async with plain_pool.acquire() as conn:
        await ensure_partitions(conn, NOW, retention)
        report = await run_maintenance(conn, retention, NOW + 3 * DAY)
        names = [p.name for p in await partitions_of(conn, "trade_fills")]
    # 03-02 and 03-03 are past one day of retention at 03-05 12:30; 03-06 to 03-08 are new.
    assert names == [f"trade_fills_p2026030{n}" for n in range(4, 9)]
    assert "trade_fills_p20260308" in report.partitions.created


async def test_a_busy_table_postpones_its_drop(
    plain_pool: asyncpg.Pool, plain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "100ms")
    retention = RetentionSettings(raw_days=1)
    async with plain_pool.acquire() as conn:
        await ensure_partitions(conn, NOW, retention)
    reader = await asyncpg.connect(plain_dsn)
    try:
        async with reader.transaction():  # any read of the table holds it against a drop
            await reader.fetchval("SELECT count(*) FROM price_points WHERE ts >= $1", NOW)
            async with plain_pool.acquire() as conn:
                await apply_retention(conn, retention, NOW + 3 * DAY)
                kept = [p.name for p in await partitions_of(conn, "price_points")]
    finally:
        await reader.close()
    async with plain_pool.acquire() as conn:
        await apply_retention(conn, retention, NOW + 3 * DAY)
        gone = [p.name for p in await partitions_of(conn, "price_points")]
    assert "price_points_p20260302" in kept
    assert "price_points_p20260302" not in gone


# -- TimescaleDB ------------------------------------------------------------------------------


async def test_timescaledb_keeps_its_hypertables(timescale_dsn: str) -> None:
    conn = await asyncpg.connect(timescale_dsn)
    try:
        assert await partitioned_tables(conn) == []
        made = await ensure_partitions(conn, NOW, RetentionSettings())
        hypertables = await conn.fetchval(
            "SELECT count(*) FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = ANY($1)",
            [t.name for t in PARTITIONED_TABLES],
        )
        strays = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname ~ '_(default|legacy|p[0-9]{8})$'"
        )
    finally:
        await conn.close()
    assert made.created == []
    assert hypertables == len(PARTITIONED_TABLES)
    assert strays == 0


async def test_two_collectors_starting_together_make_each_partition_once(
    plain_pool: asyncpg.Pool, plain_dsn: str
) -> None:
    """Both start-ups make the same partitions; under the schema lock one makes them and the
    other finds them made (without it, one fails on a partition the other just created)."""
    settings = Settings(retention=RetentionSettings(partition_days_ahead=3))
    other = await create_pool(plain_dsn, min_size=1, max_size=2)
    try:
        for attempt in range(4):
            now = NOW + timedelta(days=10 * attempt)
            await asyncio.gather(
                migrate_database(plain_pool, settings, clock=lambda now=now: now),
                migrate_database(other, settings, clock=lambda now=now: now),
            )
    finally:
        await other.close()
    async with plain_pool.acquire() as conn:
        names = [p.name for p in await partitions_of(conn, "trade_fills")]
    assert len(names) == len(set(names)) == 4 * 4  # today and three days ahead, 4 times


async def test_writers_making_the_same_partition_at_once_all_go_on(plain_dsn: str) -> None:
    """Rows of a day without a partition reach several writers at once (a backfill's workers):
    each finds it missing and makes it. The ones that lose the race see PostgreSQL's
    duplicate table, type or key (which one depends on where they collide) and use the
    winner's: none fails, and the day has one partition."""
    conns = [await asyncpg.connect(plain_dsn) for _ in range(6)]
    try:
        for part in await partitions_of(conns[0], "trade_fills"):
            await conns[0].execute(f"DROP TABLE {part.name}")
        for n in range(-12, 0):
            stamps = [day(n) + timedelta(hours=3)]
            made = await asyncio.gather(
                *(make_partitions_for(conn, "trade_fills", stamps) for conn in conns)
            )
            assert sorted(name for names in made for name in names) == [
                partition_name(partitions.TABLES_BY_NAME["trade_fills"], day(n))
            ]
        # Two collectors' maintenance making the days ahead at the same moment.
        ahead = RetentionSettings(partition_days_ahead=3)
        before = {p.name for p in await _all_partitions(conns[0])}
        reports = await asyncio.gather(*(ensure_partitions(conn, day(20), ahead) for conn in conns))
        made_ahead = sorted(name for report in reports for name in report.created)
        assert made_ahead == sorted({p.name for p in await _all_partitions(conns[0])} - before)
    finally:
        for conn in conns:
            await conn.close()


async def _all_partitions(conn: asyncpg.Connection) -> list[Partition]:
    return [p for t in ALL_PARTITIONED_TABLES for p in await partitions_of(conn, t.name)]
