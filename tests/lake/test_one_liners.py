"""The README's one-liners: DuckDB and polars read the lake and get the database's numbers.

DuckDB reads the local lake (its S3 support is an extension it downloads at run time, which
this machine cannot); polars reads it on the S3-protocol server on loopback too.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg
import duckdb
import polars as pl

from polyfarm.lake.export import export_day
from polyfarm.lake.layout import TABLES_BY_NAME
from polyfarm.lake.storage import Lake, open_lake
from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.writer import BulkWriter

from ..store.factories import T0, price_row, token

PRICES = TABLES_BY_NAME["price_snapshots"]


async def two_days_in(pool: asyncpg.Pool, dsn: str, lake: Lake) -> tuple[int, float]:
    minutes = range(0, 2160, 3)  # 03-02 12:00 to 03-04 00:00: two whole days in the lake
    rows = [price_row(i, token(t), price=0.01 * (1 + i % 90)) for t in (1, 2) for i in minutes]
    await BulkWriter(pool, clock=lambda: T0 + timedelta(days=3)).write(PRICE_SNAPSHOTS, rows)
    for day in (T0.date(), T0.date() + timedelta(days=1)):
        await asyncio.to_thread(export_day, dsn, lake, PRICES, day, source="test")
    async with pool.acquire() as conn:
        count, total = await conn.fetchrow("SELECT count(*), sum(price) FROM price_snapshots")
    return count, total


async def test_duckdb_reads_the_local_lake(pool: asyncpg.Pool, db_dsn: str, tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path / "lake"))
    count, total = await two_days_in(pool, db_dsn, lake)
    # The README's one-liner, with the lake's folder for <lake>:
    got = duckdb.sql(
        f"SELECT count(*), sum(price), count(DISTINCT date) FROM read_parquet("
        f"'{tmp_path}/lake/price_snapshots/*/*.parquet', hive_partitioning = true)"
    ).fetchall()[0]
    assert (got[0], round(got[1], 6), got[2]) == (count, round(total, 6), 2)


async def test_polars_reads_the_lake_on_s3(
    pool: asyncpg.Pool, db_dsn: str, s3_lake: Lake, s3_endpoint: str
) -> None:
    count, total = await two_days_in(pool, db_dsn, s3_lake)
    # The README's one-liner, with the endpoint and keys of a local S3-compatible store:
    frame = (
        pl.scan_parquet(
            f"{s3_lake.url}/price_snapshots/**/*.parquet",
            hive_partitioning=True,
            storage_options={
                "aws_endpoint_url": s3_endpoint,
                "aws_access_key_id": "test",
                "aws_secret_access_key": "test",
                "aws_region": "us-east-1",
                "aws_allow_http": "true",
            },
        )
        .select(pl.len(), pl.col("price").sum())
        .collect()
    )
    assert frame.row(0)[0] == count
    assert round(frame.row(0)[1], 6) == round(total, 6)
