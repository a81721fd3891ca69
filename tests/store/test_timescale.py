"""TimescaleDB-only assertions; skipped (visibly) without POLYFARM_TEST_DATABASE_URL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from polyfarm.settings import RetentionSettings
from polyfarm.store.migrations import migrate
from polyfarm.store.policies import COMPRESSED_TABLES, apply_timescale_policies
from polyfarm.store.status import schema_status

from ..conftest import Server

CHUNK_INTERVALS = {
    "price_points": timedelta(days=1),
    "book_samples": timedelta(days=1),
    "trade_fills": timedelta(days=1),
    "book_changes": timedelta(hours=6),
    "feature_samples": timedelta(days=1),
}


@pytest.fixture
async def ts_conn(timescale_server: Server, pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        yield conn


@pytest.fixture(params=["timescaledb"])
def server(request: pytest.FixtureRequest) -> Server:
    result: Server = request.getfixturevalue("timescale_server")
    return result


async def test_hypertables_and_chunk_intervals(ts_conn: asyncpg.Connection) -> None:
    rows = await ts_conn.fetch(
        "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions "
        "WHERE hypertable_name NOT LIKE '\\_materialized%'"
    )
    assert dict((r[0], r[1]) for r in rows) == CHUNK_INTERVALS


async def test_compression_settings(ts_conn: asyncpg.Connection) -> None:
    rows = await ts_conn.fetch(
        "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, "
        "orderby_asc FROM timescaledb_information.compression_settings"
    )
    by_table: dict[str, dict[str, tuple]] = {}
    for r in rows:
        by_table.setdefault(r[0], {})[r[1]] = (r[2], r[3], r[4])
    assert set(by_table) == set(COMPRESSED_TABLES)
    for table, columns in by_table.items():
        assert columns["token_sid"][0] == 1, table
        assert columns["ts"][1] == 1, table
        assert columns["ts"][2] is False, table
    assert by_table["trade_fills"]["trade_key"][1] == 2
    assert by_table["book_changes"]["seq"][1] == 2


async def test_policies_follow_the_settings(ts_conn: asyncpg.Connection) -> None:
    await apply_timescale_policies(ts_conn, RetentionSettings())
    assert await apply_timescale_policies(ts_conn, RetentionSettings()) == 0
    changed = await apply_timescale_policies(
        ts_conn, RetentionSettings(raw_days=30, compress_after_days=2)
    )
    assert changed == 3 + len(COMPRESSED_TABLES)
    jobs = await ts_conn.fetch(
        "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
        "WHERE hypertable_name IS NOT NULL"
    )
    retention = {j[1]: j[2]["drop_after"] for j in jobs if j[0] == "policy_retention"}
    compression = {j[1]: j[2]["compress_after"] for j in jobs if j[0] == "policy_compression"}
    assert retention["price_points"] == "30 days"
    assert retention["book_changes"] == "14 days"
    assert set(compression) == set(COMPRESSED_TABLES)
    assert set(compression.values()) == {"2 days"}


async def test_continuous_aggregates_are_hierarchical_with_policies(
    ts_conn: asyncpg.Connection,
) -> None:
    rows = await ts_conn.fetch(
        "SELECT view_name, hypertable_name, materialized_only "
        "FROM timescaledb_information.continuous_aggregates"
    )
    views = {r[0]: r for r in rows}
    assert set(views) == {
        "price_candles_5m",
        "price_candles_15m",
        "price_candles_1h",
        "price_candles_4h",
        "price_candles_1d",
        "trade_flow_1h",
    }
    assert all(not r[2] for r in rows), "real-time aggregation must be on"
    assert views["price_candles_5m"][1] == "price_points"
    # 15m on 5m, 1h on 15m, ...: each reads the materialisation of the one below it.
    assert views["price_candles_15m"][1].startswith("_materialized_hypertable_")
    assert views["trade_flow_1h"][1] == "trade_fills"
    # The 1-minute candles are a plain view over the raw rows: nothing to materialise.
    assert await ts_conn.fetchval("SELECT count(*) FROM pg_views WHERE viewname = 'candles_1m'")
    policies = await ts_conn.fetch(
        "SELECT hypertable_name FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_refresh_continuous_aggregate'"
    )
    assert len(policies) == len(views)


async def test_status_reports_timescale_features(ts_conn: asyncpg.Connection) -> None:
    await apply_timescale_policies(ts_conn, RetentionSettings())
    status = await schema_status(ts_conn)
    assert status.flavor == "timescaledb"
    assert status.timescaledb
    kinds = {t.name: t.kind for t in status.tables}
    assert {n for n, k in kinds.items() if k == "hypertable"} == set(CHUNK_INTERVALS)
    assert all(t.compression for t in status.tables if t.kind == "hypertable")
    assert len([a for a in status.aggregates if a[1] == "continuous aggregate"]) == 6
    assert {j[0] for j in status.jobs} >= {"policy_retention", "policy_compression"}


async def test_the_job_scheduler_runs_again_after_migrating(empty_dsn: str) -> None:
    """Migrations stop the database's job scheduler (polyfarm.store.timescale_scheduler) and
    start it again when they are done."""
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn)
        for _ in range(50):
            running = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type LIKE '%TimescaleDB Background Worker Scheduler%'"
            )
            if running:
                break
            await asyncio.sleep(0.1)
        assert running == 1
        assert not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM aggregate_backfills)")
    finally:
        await conn.close()
