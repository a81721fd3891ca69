"""TimescaleDB compression as polyfarm sets it up (polyfarm.store.policies), run by the policies'
own jobs: short chunks merged into day-long compressed ones, a token-day read back through the
public views equal to what it was before, and the aggregates compressed and still refreshed
after late rows. Skipped (visibly) without POLYFARM_TEST_DATABASE_URL.

The jobs run in the test's session (``CALL run_job``) with the database's scheduler stopped, so
that it does not run them at the same time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from polyfarm.settings import ChunkSettings, RetentionSettings
from polyfarm.store.maintenance import AGGREGATE_VIEWS
from polyfarm.store.policies import (
    AGGREGATES,
    COMPRESSED_TABLES,
    HISTORY_TABLES,
    apply_timescale_policies,
)
from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.writer import BulkWriter

from ..conftest import Server
from ..timescale_jobs import stop_scheduler
from .factories import price_row, token, token_day_rows

# Old enough that every chunk, of the raw tables and of every aggregate (the longest: 180 days
# of daily candles), has ended more than its compress_after ago.
DAY = (datetime.now(UTC) - timedelta(days=400)).replace(hour=0, minute=0, second=0, microsecond=0)
TOKENS = [token(1), token(2)]


@pytest.fixture(params=["timescaledb"])
def server(request: pytest.FixtureRequest) -> Server:
    result: Server = request.getfixturevalue("timescale_server")
    return result


@pytest.fixture
async def ts_conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """Policies as ``polyfarm db migrate`` sets them, the scheduler stopped, two token-days
    written and every aggregate refreshed over them."""
    async with pool.acquire() as conn:
        await apply_timescale_policies(conn, RetentionSettings(), ChunkSettings())
        await stop_scheduler(conn)
        writer = BulkWriter(pool)
        for tok in TOKENS:
            for spec, rows in token_day_rows(DAY, tok):
                result = await writer.write(spec, rows)
                assert result.inserted == len(rows), result
        await refresh(conn, DAY - timedelta(days=1), DAY + timedelta(days=2))
        yield conn


async def refresh(conn: asyncpg.Connection, start: datetime, end: datetime) -> None:
    for view in AGGREGATE_VIEWS:  # in hierarchy order
        await conn.execute(
            "CALL refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz)",
            view,
            start,
            end,
        )


async def run_compression_jobs(conn: asyncpg.Connection) -> int:
    jobs = await conn.fetch(
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression' "
        "ORDER BY job_id"
    )
    for (job_id,) in jobs:
        await conn.execute("CALL run_job($1)", job_id)
    return len(jobs)


async def chunks_of(conn: asyncpg.Connection, relation: str) -> list[tuple[timedelta, bool]]:
    """(length, compressed) of each chunk of a hypertable or continuous aggregate."""
    rows = await conn.fetch(
        """
        SELECT ch.range_end - ch.range_start, ch.is_compressed
        FROM timescaledb_information.chunks ch
        LEFT JOIN timescaledb_information.continuous_aggregates c
               ON c.materialization_hypertable_name = ch.hypertable_name
        WHERE coalesce(c.view_name, ch.hypertable_name) = $1
        ORDER BY ch.range_start
        """,
        relation,
    )
    return [(r[0], r[1]) for r in rows]


async def batches(conn: asyncpg.Connection, table: str) -> int:
    """Compressed batches in every compressed chunk of ``table``."""
    chunks = await conn.fetch(
        """
        SELECT format('%I.%I', cc.schema_name, cc.table_name)
        FROM _timescaledb_catalog.chunk c
        JOIN _timescaledb_catalog.chunk cc ON cc.id = c.compressed_chunk_id
        JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id
        WHERE h.table_name = $1
        """,
        table,
    )
    return sum([await conn.fetchval(f"SELECT count(*) FROM {c}") for (c,) in chunks])


# Every public read of a token-day, each in a total order.
READS = {
    "price_snapshots": "SELECT * FROM price_snapshots WHERE token_id = $1 AND ts >= $2 "
    "AND ts < $3 ORDER BY ts",
    "orderbook_snapshots": "SELECT * FROM orderbook_snapshots WHERE token_id = $1 AND ts >= $2 "
    "AND ts < $3 ORDER BY ts",
    "market_features": "SELECT * FROM market_features WHERE token_id = $1 AND ts >= $2 "
    "AND ts < $3 ORDER BY ts",
    "trades": "SELECT * FROM trades WHERE token_id = $1 AND ts >= $2 AND ts < $3 "
    "ORDER BY ts, trade_key",
    "book_deltas": "SELECT * FROM book_deltas WHERE token_id = $1 AND ts >= $2 AND ts < $3 "
    "ORDER BY ts, seq",
    **{
        view: f"SELECT * FROM {view} WHERE token_id = $1 AND bucket >= $2 AND bucket < $3 "
        "ORDER BY bucket"
        for view in (
            "candles_1m",
            "candles_5m",
            "candles_15m",
            "candles_1h",
            "candles_4h",
            "candles_1d",
            "trade_volume_1h",
        )
    },
}


async def read_token_day(conn: asyncpg.Connection, tok: str) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    window = (DAY, DAY + timedelta(days=1))
    return {
        name: [tuple(r) for r in await conn.fetch(sql, tok, *window)] for name, sql in READS.items()
    }


async def test_a_token_day_reads_the_same_after_the_policies_compress_it(
    ts_conn: asyncpg.Connection,
) -> None:
    before = {tok: await read_token_day(ts_conn, tok) for tok in TOKENS}
    assert len(before[TOKENS[0]]["price_snapshots"]) == 1440
    assert len(before[TOKENS[0]]["candles_5m"]) == 288
    assert len(before[TOKENS[0]]["book_deltas"]) == 2880
    assert await run_compression_jobs(ts_conn) == len(COMPRESSED_TABLES) + len(
        HISTORY_TABLES
    ) + len(AGGREGATES)
    for table in COMPRESSED_TABLES:
        # Written in chunks of a few hours, merged into one compressed chunk of a day.
        assert await chunks_of(ts_conn, table) == [(timedelta(days=1), True)], table
    for aggregate in AGGREGATES:
        chunks = await chunks_of(ts_conn, aggregate.view)
        assert chunks, aggregate.view
        assert all(compressed for _, compressed in chunks), (aggregate.view, chunks)
    # A token's 1,440 price points: one batch for each of the twelve 2-hour chunks merged,
    # until the day's chunk is rebuilt into batches of up to 1,000 rows.
    assert await batches(ts_conn, "price_points") == 12 * len(TOKENS)
    after = {tok: await read_token_day(ts_conn, tok) for tok in TOKENS}
    await ts_conn.execute('CALL polyfarm_rebuild_merged_chunks(NULL, \'{"lookback": "2 years"}\')')
    assert await batches(ts_conn, "price_points") == 2 * len(TOKENS)
    assert await batches(ts_conn, "book_changes") == 3 * len(TOKENS)  # 2,880 rows a token
    rebuilt = {tok: await read_token_day(ts_conn, tok) for tok in TOKENS}
    for tok in TOKENS:
        for name in READS:
            assert after[tok][name] == before[tok][name], (tok, name)
            assert rebuilt[tok][name] == before[tok][name], (tok, name)


async def test_compressed_aggregates_take_late_rows_on_refresh(
    ts_conn: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    await run_compression_jobs(ts_conn)
    late_at = DAY + timedelta(hours=13, minutes=2, seconds=30)
    tok = TOKENS[0]
    candle = (
        "SELECT high, samples FROM candles_{} WHERE token_id = $1 AND bucket <= $2 "
        "ORDER BY bucket DESC LIMIT 1"
    )
    before = {width: await ts_conn.fetchrow(candle.format(width), tok, late_at) for width in
              ("5m", "1h", "1d")}  # fmt: skip
    assert all(row["high"] < 0.97 for row in before.values())
    late = price_row(tok=tok, price=0.97)._replace(ts=late_at)
    assert (await BulkWriter(pool).write(PRICE_SNAPSHOTS, [late])).inserted == 1
    # The late row sits in a compressed raw chunk, its buckets in compressed aggregate chunks,
    # all of them older than any refresh policy's window: an explicit refresh takes it in.
    await refresh(ts_conn, DAY, DAY + timedelta(days=1))
    for width, old in before.items():
        new = await ts_conn.fetchrow(candle.format(width), tok, late_at)
        assert (new["high"], new["samples"]) == (0.97, old["samples"] + 1), width
    for view in ("price_candles_5m", "price_candles_1h", "price_candles_1d"):
        assert all(compressed for _, compressed in await chunks_of(ts_conn, view)), view
    # And the compression policies put the touched chunks back in order.
    assert await run_compression_jobs(ts_conn) == len(COMPRESSED_TABLES) + len(
        HISTORY_TABLES
    ) + len(AGGREGATES)
