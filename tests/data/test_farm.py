"""``Farm`` reads the lake for old days and the database for the rest, once each, and says
where the recording has holes. Real parts: the embedded PostgreSQL and a lake folder."""

from __future__ import annotations

import asyncio
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import polars as pl
import pytest

from polyfarm.data.bars import price_candles
from polyfarm.data.farm import Farm, HoleWarning
from polyfarm.lake.export import export_day
from polyfarm.lake.layout import TABLES_BY_NAME
from polyfarm.lake.storage import open_lake
from polyfarm.store.partitions import partitions_of
from polyfarm.store.rows import PRICE_SNAPSHOTS, TRADES
from polyfarm.store.writer import BulkWriter

from ..store.factories import T0, price_row, token, trade_row

DAY0 = T0.replace(hour=0)  # 2026-03-02 00:00 UTC
HOUR = timedelta(hours=1)


def _frame_of(row: object) -> pl.DataFrame:
    return pl.DataFrame([row._asdict()])  # type: ignore[attr-defined]


async def expire_before(conn: asyncpg.Connection, cutoff: datetime) -> None:
    """What retention does at ``cutoff``: partitions or chunks wholly before it go."""
    if await conn.fetchval("SELECT to_regclass('timescaledb_information.chunks') IS NOT NULL"):
        await conn.execute(
            "SELECT drop_chunks('price_points', older_than => $1::timestamptz)", cutoff
        )
        return
    for part in await partitions_of(conn, "price_points"):
        if part.upper is not None and part.upper <= cutoff:
            await conn.execute(f"DROP TABLE {part.name}")


async def three_days(pool: asyncpg.Pool) -> None:
    """Two tokens, a snapshot every hour from 03-02 to 03-04, prices moving."""
    rows = [
        price_row(0, token(t))._replace(ts=DAY0 + h * HOUR, price=round(0.3 + 0.01 * (h % 17), 2))
        for t in (1, 2)
        for h in range(72)
    ]
    await BulkWriter(pool, clock=lambda: DAY0 + timedelta(days=4)).write(PRICE_SNAPSHOTS, rows)


async def test_the_seam_between_lake_and_database_loses_and_repeats_nothing(
    pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    await three_days(pool)
    tokens = [token(1), token(2)]
    with Farm(db_dsn) as farm:
        everything = farm.prices(tokens, DAY0, DAY0 + timedelta(days=3))
    assert everything.height == 144
    lake = open_lake(str(tmp_path / "lake"))
    for day in range(3):
        await asyncio.to_thread(
            export_day,
            db_dsn,
            lake,
            TABLES_BY_NAME["price_snapshots"],
            (DAY0 + timedelta(days=day)).date(),
            source="test",
        )
    # A late repair of the third day after its export: the database has it, the lake not yet.
    late = price_row(0, token(1))._replace(ts=DAY0 + timedelta(days=2, minutes=150))
    await BulkWriter(pool, clock=lambda: DAY0 + timedelta(days=4)).write(PRICE_SNAPSHOTS, [late])
    everything = pl.concat([everything, _frame_of(late)], how="vertical_relaxed")
    everything = everything.sort("token_id", "ts")
    # Retention took the first day and most of the second, as it does (whole day partitions on
    # plain PostgreSQL, 2-hour chunks on TimescaleDB): the database's oldest whole day is the
    # third, so the first two come from the lake, the third from the database.
    async with pool.acquire() as conn:
        await expire_before(conn, DAY0 + timedelta(days=1, hours=20))
    with Farm(db_dsn, lake) as farm:
        assert farm.prices(tokens, DAY0, DAY0 + timedelta(days=3)).equals(everything)
        candles = farm.candles(tokens, "4h", DAY0, DAY0 + timedelta(days=3))
        inside = farm.prices(token(2), DAY0 + 30 * HOUR, DAY0 + 50 * HOUR)
    assert inside["ts"].to_list() == [DAY0 + h * HOUR for h in range(30, 50)]
    assert candles.equals(price_candles(everything, "4h"))
    # A lake alone (another machine, the bucket only): the days it has.
    with Farm(None, lake) as farm:
        cold = farm.prices(tokens, DAY0, DAY0 + timedelta(days=3))
    assert cold.height == 144  # the three days as exported, before the late repair


async def test_a_read_over_a_hole_says_so(pool: asyncpg.Pool, db_dsn: str) -> None:
    await three_days(pool)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO feed_gaps (stream, token_id, gap_start, gap_end, reason) "
            "VALUES ('prices', $1, $2, $3, 'collector down')",
            token(1),
            DAY0 + 5 * HOUR,
            DAY0 + 6 * HOUR,
        )
    with Farm(db_dsn) as farm:
        with pytest.warns(HoleWarning, match="1 known holes \\(prices\\)") as said:
            farm.prices(token(1), DAY0, DAY0 + timedelta(days=1))
        assert said[0].filename == __file__  # the reader's line, not polyfarm's
        with warnings.catch_warnings():  # the same window, known from the read before
            warnings.simplefilter("error", HoleWarning)
            farm.prices(token(2), DAY0, DAY0 + timedelta(days=1))  # token 1's hole only
        with pytest.warns(HoleWarning, match="1 known holes") as said:
            farm.candles([token(2), token(1)], "1h", DAY0, DAY0 + timedelta(days=1))
        assert said[0].filename == __file__
        holes = farm.holes(DAY0, DAY0 + timedelta(days=1), token(1))
        assert holes.select("stream", "reason").rows() == [("prices", "collector down")]
        assert farm.holes(DAY0 + 7 * HOUR, DAY0 + 8 * HOUR).height == 0
        assert isinstance(farm.prices(token(2), DAY0 + 7 * HOUR, DAY0 + 8 * HOUR), pl.DataFrame)


async def test_a_read_by_sid_gives_the_views_rows_and_types(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    """Price snapshots are read from their storage table and decoded in Arrow; trades through
    their view by sid: either way, the very rows, values and types the public view shows."""
    prices = [price_row(i, token(t), price=0.3 + 0.0001 * i) for t in (3, 1) for i in range(40)]
    prices[5] = prices[5]._replace(best_bid=None, spread=None)  # a one-sided book
    prices[50] = prices[50]._replace(price=None, last_trade_price=None, volume_24h=None)
    writer = BulkWriter(pool, clock=lambda: DAY0 + timedelta(days=2))
    await writer.write(PRICE_SNAPSHOTS, prices)
    await writer.write(TRADES, [trade_row(i, token(t)) for t in (1, 3) for i in range(0, 90, 7)])
    tokens = [token(1), token(3), token(9)]  # token 9: never seen, no rows
    window = (DAY0, DAY0 + timedelta(days=1))
    with Farm(db_dsn) as farm:
        for table, read in (("price_snapshots", farm.prices), ("trades", farm.trades)):
            got = read(tokens, *window)
            expected = farm._query(  # the public view, as every reader saw it before
                f"SELECT * FROM {table} WHERE token_id = ANY(string_to_array($1, ',')) "
                "AND ts >= $2 AND ts < $3 ORDER BY token_id, ts",
                ",".join(tokens),
                *window,
            ).drop("token_sid")
            assert got.height == expected.height > 0
            assert got.schema == expected.schema
            assert got.equals(expected, null_equal=True)
            # A read of a few columns (the server asked for those alone): the same values.
            few = ("spread", "price") if table == "price_snapshots" else ("side", "size")
            narrow = farm.rows(table, tokens, *window, columns=few)
            order = TABLES_BY_NAME[table].order
            assert narrow.equals(got.select(*order, *few), null_equal=True)
