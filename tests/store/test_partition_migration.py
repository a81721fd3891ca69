"""Migration 0015 on a populated database: every row and aggregate reads back as before.

The database is built at 0014 and filled through the writer (several days, every time
series), the aggregates brought up to date, everything read; then 0015 is applied and
everything is read again, without another refresh. On plain PostgreSQL the old tables become
the legacy partitions (their indexes attached, not rebuilt), every view reads the new
parents, and owners and privileges are as they were; on TimescaleDB nothing changes.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from polyfarm.settings import RetentionSettings
from polyfarm.store.database import create_pool
from polyfarm.store.maintenance import AGGREGATE_VIEWS, apply_retention, refresh_aggregates
from polyfarm.store.migrations import default_migrations_dir, migrate
from polyfarm.store.partitions import PARTITIONED_TABLES, ensure_partitions, partitions_of
from polyfarm.store.rows import (
    BOOK_DELTAS,
    MARKET_FEATURES,
    ORDERBOOK_SNAPSHOTS,
    PRICE_SNAPSHOTS,
    TRADES,
)
from polyfarm.store.writer import BulkWriter

from ..conftest import Server
from .factories import as_before_0020, book_row, delta_row, feature_row, price_row, token, trade_row

START = datetime(2026, 3, 2, tzinfo=UTC)
DAY = timedelta(days=1)
PUBLIC_NAMES = {
    "price_snapshots": "token_id, ts",
    "trades": "token_id, ts, trade_key",
    "book_deltas": "token_id, ts, seq",
    "orderbook_snapshots": "token_id, ts",
    "market_features": "token_id, ts",
    "candles_1m": "token_id, bucket",
    "candles_5m": "token_id, bucket",
    "candles_15m": "token_id, bucket",
    "candles_1h": "token_id, bucket",
    "candles_4h": "token_id, bucket",
    "candles_1d": "token_id, bucket",
    "trade_volume_1h": "token_id, bucket",
    "my_prices": "token_id, ts",  # an operator's own view over a public one
}
UNIQUE_INDEXES = {
    "price_points": "price_points_token_ts_key",
    "trade_fills": "trade_fills_token_ts_key",
    "book_changes": "book_changes_token_ts_seq_key",
    "book_samples": "book_samples_token_ts_key",
    "feature_samples": "feature_samples_token_ts_key",
}
# Views reading a partition rather than its parent: none may be left.
VIEWS_ON_PARTITIONS = """
SELECT DISTINCT r.ev_class::regclass::text
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class t ON t.oid = d.refobjid
WHERE d.classid = 'pg_rewrite'::regclass AND t.relispartition AND r.ev_class <> t.oid
"""


def venue_days() -> dict[Any, list[Any]]:
    """Six tokens over three days: every time series, rows every 15 minutes or so."""
    batches: dict[Any, list[Any]] = {
        PRICE_SNAPSHOTS: [], ORDERBOOK_SNAPSHOTS: [], MARKET_FEATURES: [], TRADES: [],
        BOOK_DELTAS: [],
    }  # fmt: skip
    seq = 0
    for n in range(1, 7):
        tok = token(n)
        for step in range(3 * 24 * 4):
            ts = START + step * timedelta(minutes=15) + timedelta(seconds=n)
            price = round(0.1 * n + (step % 10) / 100, 2)
            batches[PRICE_SNAPSHOTS].append(price_row(0, tok, price)._replace(ts=ts))
            if step % 8 == 0:
                batches[ORDERBOOK_SNAPSHOTS].append(book_row(0, tok)._replace(ts=ts))
                batches[MARKET_FEATURES].append(feature_row(0, tok)._replace(ts=ts))
            if step % 3 == 0:
                side = "BUY" if step % 2 else "SELL"
                batches[TRADES].append(
                    trade_row(0, tok, side)._replace(ts=ts.replace(microsecond=0))
                )
                seq += 1
                batches[BOOK_DELTAS].append(delta_row(seq, tok)._replace(ts=ts, received_at=ts))
    return batches


async def refresh_everything(conn: asyncpg.Connection, flavor: str) -> None:
    if flavor == "plain":
        await refresh_aggregates(conn)
        return
    for view in AGGREGATE_VIEWS:
        await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")


async def read_all(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {name} ORDER BY {order}")]
        for name, order in PUBLIC_NAMES.items()
    }


async def access_of(conn: asyncpg.Connection, names: list[str]) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT c.relname, c.relowner, coalesce(c.relacl::text[], '{}') AS acl FROM pg_class c "
        "WHERE c.relname = ANY($1)",
        names,
    )
    return {r["relname"]: (r["relowner"], sorted(r["acl"])) for r in rows}


@dataclass
class Migrated:
    conn: asyncpg.Connection
    pool: asyncpg.Pool
    before: dict[str, list[tuple[Any, ...]]]
    indexes: dict[str, int]  # unique index name -> oid, before
    populated: dict[str, bool]  # materialized view -> populated, before
    access: dict[str, Any]  # relation -> (owner, privileges), before


@pytest.fixture
async def migrated(server: Server, empty_dsn: str, tmp_path: Path) -> AsyncIterator[Migrated]:
    """A database at 0014 with rows, then 0015 applied; with what was read before it."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for path in default_migrations_dir().glob("*.sql"):
        if int(path.name[:4]) <= 14:
            shutil.copy(path, directory)
    conn = await asyncpg.connect(empty_dsn)
    pool = await create_pool(empty_dsn, min_size=1, max_size=2)
    try:
        await migrate(conn, directory)
        writer = BulkWriter(pool, clock=lambda: START + 10 * DAY)
        for spec, rows in venue_days().items():
            written = await writer.write(as_before_0020(spec), rows)
            assert written.inserted == len(rows), spec.name
        await conn.execute(
            "CREATE VIEW my_prices AS SELECT token_id, ts, price FROM price_snapshots;"
            "GRANT SELECT ON price_points, candles_1h TO PUBLIC"
        )
        await refresh_everything(conn, server.flavor)
        populated = dict(await conn.fetch("SELECT matviewname, ispopulated FROM pg_matviews"))
        names = [*(t.name for t in PARTITIONED_TABLES), *PUBLIC_NAMES, *AGGREGATE_VIEWS]
        state = Migrated(
            conn,
            pool,
            await read_all(conn),
            dict(await conn.fetch("SELECT relname, oid FROM pg_class WHERE relkind = 'i'")),
            populated,
            await access_of(conn, names),
        )
        shutil.copy(default_migrations_dir() / "0015_time_partitions.sql", directory)
        assert (await migrate(conn, directory)).applied == ["0015_time_partitions.sql"]
        yield state
    finally:
        await pool.close()
        await conn.close()


async def test_every_row_and_aggregate_reads_back_equal(server: Server, migrated: Migrated) -> None:
    conn = migrated.conn
    after = await read_all(conn)
    assert all(migrated.before.values()), [n for n, rows in migrated.before.items() if not rows]
    assert len(migrated.before["price_snapshots"]) == 6 * 3 * 24 * 4
    for name in PUBLIC_NAMES:
        assert after[name] == migrated.before[name], name
    populated = dict(await conn.fetch("SELECT matviewname, ispopulated FROM pg_matviews"))
    assert populated == migrated.populated
    assert await conn.fetch(VIEWS_ON_PARTITIONS) == []
    names = list(migrated.access)
    assert await access_of(conn, names) == migrated.access
    if server.flavor == "timescaledb":
        partitioned = await conn.fetchval("SELECT count(*) FROM pg_class WHERE relkind = 'p'")
        assert partitioned == 0
        for index in UNIQUE_INDEXES.values():
            oid = await conn.fetchval("SELECT oid FROM pg_class WHERE relname = $1", index)
            assert oid == migrated.indexes[index], index


async def test_the_old_tables_are_attached_as_they_were(server: Server, migrated: Migrated) -> None:
    if server.flavor != "plain":
        pytest.skip("TimescaleDB keeps its hypertables: nothing is partitioned there")
    conn = migrated.conn
    tomorrow = await conn.fetchval(
        "SELECT (date_trunc('day', now() AT TIME ZONE 'UTC') + INTERVAL '1 day') AT TIME ZONE 'UTC'"
    )
    for table in PARTITIONED_TABLES:
        parts = await partitions_of(conn, table.name)
        assert [(p.name, p.lower, p.upper) for p in parts] == [
            (table.default_partition, None, None),
            (f"{table.name}_legacy", None, tomorrow),
        ]
        index = UNIQUE_INDEXES[table.name]
        legacy_index = index.replace(table.name, f"{table.name}_legacy", 1)
        oid = await conn.fetchval("SELECT oid FROM pg_class WHERE relname = $1", legacy_index)
        assert oid == migrated.indexes[index], f"{index} was rebuilt"
        assert (
            await conn.fetchval(
                "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = $1", oid
            )
            == index
        )
    reader_can = await conn.fetchval(
        "SELECT has_table_privilege('polyfarm_reader', 'price_points_default', 'SELECT')"
    )
    assert reader_can


async def test_new_rows_reach_every_view(server: Server, migrated: Migrated) -> None:
    if server.flavor != "plain":
        pytest.skip("TimescaleDB keeps its hypertables: nothing is partitioned there")
    conn = migrated.conn
    now = datetime.now(UTC)
    await ensure_partitions(conn, now, RetentionSettings())
    # Today is the legacy partition's last day; tomorrow has a partition of its own.
    tomorrow = (await partitions_of(conn, "price_points"))[1].upper
    assert tomorrow is not None
    fresh = price_row(0, token(99))._replace(ts=tomorrow + timedelta(hours=1))
    writer = BulkWriter(migrated.pool, clock=lambda: tomorrow + timedelta(hours=2))
    assert (await writer.write(PRICE_SNAPSHOTS, [fresh])).inserted == 1
    where = await conn.fetchval(
        "SELECT tableoid::regclass::text FROM price_points WHERE ts = $1", fresh.ts
    )
    assert where == f"price_points_p{tomorrow:%Y%m%d}"
    for view in ("price_snapshots", "my_prices", "candles_1m"):
        seen = await conn.fetchval(f"SELECT count(*) FROM {view} WHERE token_id = $1", token(99))
        assert seen == 1, view
    await refresh_aggregates(conn)
    assert await conn.fetchval("SELECT count(*) FROM candles_5m WHERE token_id = $1", token(99))


async def test_the_legacy_partition_expires_row_by_row_then_whole(
    server: Server, migrated: Migrated
) -> None:
    if server.flavor != "plain":
        pytest.skip("TimescaleDB keeps its hypertables: nothing is partitioned there")
    conn = migrated.conn
    retention = RetentionSettings(raw_days=10)
    await apply_retention(conn, retention, START + 11 * DAY + timedelta(hours=6))
    left = await conn.fetchval("SELECT min(ts) FROM price_snapshots")
    legacy = (await partitions_of(conn, "price_points"))[1]
    assert legacy.name == "price_points_legacy"
    assert left >= START + DAY + timedelta(hours=6)
    assert left < START + DAY + timedelta(hours=7)
    assert legacy.upper is not None
    await conn.execute("ANALYZE price_points_legacy")  # the drop reports the planner's count
    with capture_logs() as logs:
        await apply_retention(conn, retention, legacy.upper + 10 * DAY)
    assert [p.name for p in await partitions_of(conn, "price_points")] == ["price_points_default"]
    (dropped,) = [e for e in logs if e.get("partition") == "price_points_legacy"]
    assert dropped["log_level"] == "warning"
    assert (dropped["from_ts"], dropped["to_ts"]) == (None, legacy.upper.isoformat())
    # What the first pass left: each token's rows from 2026-03-03 06:00 on.
    assert (dropped["rows"], dropped["rows_counted"]) == (6 * (3 * 24 * 4 - 30 * 4), False)
