"""TimescaleDB-only assertions; skipped (visibly) without POLYFARM_TEST_DATABASE_URL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from polyfarm.settings import ChunkSettings, RetentionSettings
from polyfarm.store.migrations import migrate
from polyfarm.store.policies import (
    AGGREGATES,
    COMPRESSED_TABLES,
    HISTORY_TABLES,
    STORAGE_TABLES,
    apply_timescale_policies,
)
from polyfarm.store.status import schema_status

from ..conftest import Server

# As the migrations create them; polyfarm.store.policies then sets the settings' intervals for
# the chunks created from then on.
CHUNK_INTERVALS = {
    "price_points": timedelta(days=1),
    "book_samples": timedelta(days=1),
    "trade_fills": timedelta(days=1),
    "book_changes": timedelta(hours=6),
    "feature_samples": timedelta(days=1),
}
# Each aggregate's bucket, and the window its refresh policy recomputes (migration 0011).
BUCKETS = {
    "price_candles_5m": timedelta(minutes=5),
    "price_candles_15m": timedelta(minutes=15),
    "price_candles_1h": timedelta(hours=1),
    "price_candles_4h": timedelta(hours=4),
    "price_candles_1d": timedelta(days=1),
    "trade_flow_1h": timedelta(hours=1),
}
_INTERVALS = """
SELECT coalesce(c.view_name, d.hypertable_name), d.time_interval, s.compress_interval_length
FROM timescaledb_information.dimensions d
LEFT JOIN timescaledb_information.continuous_aggregates c
       ON c.materialization_hypertable_name = d.hypertable_name
LEFT JOIN timescaledb_information.hypertable_compression_settings s
       ON s.hypertable = format('%I.%I', d.hypertable_schema, d.hypertable_name)::regclass
"""


async def intervals(conn: asyncpg.Connection) -> dict[str, tuple[timedelta, str | None]]:
    """Chunk interval and compressed-chunk interval of every hypertable and aggregate."""
    return {r[0]: (r[1], r[2]) for r in await conn.fetch(_INTERVALS)}


@pytest.fixture
async def ts_conn(timescale_server: Server, pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        yield conn


@pytest.fixture(params=["timescaledb"])
def server(request: pytest.FixtureRequest) -> Server:
    result: Server = request.getfixturevalue("timescale_server")
    return result


async def test_hypertables_and_chunk_intervals(ts_conn: asyncpg.Connection) -> None:
    migrated = await intervals(ts_conn)
    assert {name: migrated[name][0] for name in CHUNK_INTERVALS} == CHUNK_INTERVALS


async def test_chunk_intervals_follow_the_settings(ts_conn: asyncpg.Connection) -> None:
    chunks = ChunkSettings()
    await apply_timescale_policies(ts_conn, RetentionSettings(), chunks)
    found = await intervals(ts_conn)
    for name, hours in chunks.by_table().items():
        assert found[STORAGE_TABLES[name]] == (timedelta(hours=hours), "1 day"), name
    for aggregate in AGGREGATES:
        assert found[aggregate.view] == (aggregate.chunk, None), aggregate.view
    assert await apply_timescale_policies(ts_conn, RetentionSettings(), chunks) == 0
    changed = ChunkSettings(book_deltas_hours=2, compressed_hours=12)
    # One chunk interval, and the compressed-chunk interval of every table.
    assert await apply_timescale_policies(ts_conn, RetentionSettings(), changed) == 1 + 5
    found = await intervals(ts_conn)
    assert found["book_changes"] == (timedelta(hours=2), "12:00:00")
    assert found["price_points"] == (timedelta(hours=2), "12:00:00")
    # New chunks take the interval in force when they are created.
    await ts_conn.execute(
        "INSERT INTO book_changes (ts, received_at, size, token_sid, seq, price, side) "
        "VALUES ('2026-03-02 13:30+00', now(), 1, 1, 1, 500000, 1)"
    )
    length = await ts_conn.fetchval(
        "SELECT range_end - range_start FROM timescaledb_information.chunks "
        "WHERE hypertable_name = 'book_changes'"
    )
    assert length == timedelta(hours=2)


async def test_compression_settings(ts_conn: asyncpg.Connection) -> None:
    rows = await ts_conn.fetch(
        "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, "
        "orderby_asc FROM timescaledb_information.compression_settings"
    )
    by_table: dict[str, dict[str, tuple]] = {}
    for r in rows:
        if not r[0].startswith("_materialized_hypertable_"):  # the aggregates: see below
            by_table.setdefault(r[0], {})[r[1]] = (r[2], r[3], r[4])
    assert set(by_table) == set(COMPRESSED_TABLES) | set(HISTORY_TABLES)
    for table, columns in by_table.items():
        assert columns["token_sid"][0] == 1, table
        assert columns["ts"][1] == 1, table
        assert columns["ts"][2] is False, table
    assert by_table["trade_fills"]["trade_key"][1] == 2
    assert by_table["book_changes"]["seq"][1] == 2
    # The bloom filters TimescaleDB would add on its own, listed so that chunks merge (0016).
    indexes = {
        str(r[0]): [i for i in r[1] if i["type"] == "bloom"]
        for r in await ts_conn.fetch(
            "SELECT hypertable, index FROM timescaledb_information.hypertable_compression_settings"
        )
    }
    assert indexes["trade_fills"] == [
        {"type": "bloom", "column": ["ts", "trade_key"], "source": "config"}
    ]
    assert indexes["book_changes"] == [
        {"type": "bloom", "column": ["ts", "seq"], "source": "config"}
    ]


async def test_aggregates_are_compressed_past_their_refresh_window(
    ts_conn: asyncpg.Connection,
) -> None:
    await apply_timescale_policies(ts_conn, RetentionSettings(), ChunkSettings())
    rows = await ts_conn.fetch(
        """
        SELECT c.view_name, c.compression_enabled, s.segmentby, s.orderby,
               (r.config ->> 'start_offset')::interval AS refreshed_from,
               (p.config ->> 'compress_after')::interval AS compress_after
        FROM timescaledb_information.continuous_aggregates c
        JOIN timescaledb_information.hypertable_compression_settings s
          ON s.hypertable = format('%I.%I', c.materialization_hypertable_schema,
                                   c.materialization_hypertable_name)::regclass
        JOIN timescaledb_information.jobs r
          ON r.hypertable_name = c.view_name
         AND r.proc_name = 'policy_refresh_continuous_aggregate'
        JOIN timescaledb_information.jobs p
          ON p.hypertable_name = c.view_name AND p.proc_name = 'policy_compression'
        """
    )
    assert {r["view_name"] for r in rows} == set(BUCKETS) == {a.view for a in AGGREGATES}
    for r in rows:
        assert r["compression_enabled"], r
        assert (r["segmentby"], r["orderby"]) == ("token_sid", "bucket DESC"), r
        # A refresh starts at the bucket holding its window's start: compressed chunks end
        # before that.
        assert r["compress_after"] >= r["refreshed_from"] + BUCKETS[r["view_name"]], r


async def compression_jobs(conn: asyncpg.Connection) -> dict[str, timedelta]:
    jobs = await conn.fetch(
        "SELECT hypertable_name, (config ->> 'compress_after')::interval "
        "FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"
    )
    return {j[0]: j[1] for j in jobs}


async def test_policies_follow_the_settings(ts_conn: asyncpg.Connection) -> None:
    chunks = ChunkSettings()
    await apply_timescale_policies(ts_conn, RetentionSettings(), chunks)
    assert await apply_timescale_policies(ts_conn, RetentionSettings(), chunks) == 0
    compression = await compression_jobs(ts_conn)
    assert {compression[table] for table in COMPRESSED_TABLES} == {timedelta(hours=6)}
    changed = await apply_timescale_policies(
        ts_conn, RetentionSettings(raw_days=30, compress_after_hours=2.5), chunks
    )
    assert changed == 3 + len(COMPRESSED_TABLES) + len(HISTORY_TABLES)
    jobs = await ts_conn.fetch(
        "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
        "WHERE hypertable_name IS NOT NULL"
    )
    retention = {j[1]: j[2]["drop_after"] for j in jobs if j[0] == "policy_retention"}
    compression = await compression_jobs(ts_conn)
    assert retention["price_points"] == "30 days"
    assert retention["book_changes"] == "14 days"
    assert set(compression) == {*COMPRESSED_TABLES, *HISTORY_TABLES} | {a.view for a in AGGREGATES}
    live_and_history = (*COMPRESSED_TABLES, *HISTORY_TABLES)
    assert {compression[table] for table in live_and_history} == {timedelta(hours=2.5)}
    # The aggregates' follow their refresh windows, not the setting.
    assert {a.view: compression[a.view] for a in AGGREGATES} == {
        a.view: a.compress_after for a in AGGREGATES
    }


async def test_the_deprecated_days_setting_still_sets_compression(
    ts_conn: asyncpg.Connection,
) -> None:
    retention = RetentionSettings(compress_after_days=2)
    await apply_timescale_policies(ts_conn, retention, ChunkSettings())
    compression = await compression_jobs(ts_conn)
    assert {compression[table] for table in COMPRESSED_TABLES} == {timedelta(days=2)}


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
    await apply_timescale_policies(ts_conn, RetentionSettings(), ChunkSettings())
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
