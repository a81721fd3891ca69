"""A lake day read for a few tokens is the whole day filtered, decoding only their row groups."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from polyfarm.lake.export import Chunking, export_day
from polyfarm.lake.layout import TABLES_BY_NAME, partition_file
from polyfarm.lake.reader import DayReader, footer_of, groups_for
from polyfarm.lake.storage import open_lake
from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.writer import BulkWriter

from ..store.factories import T0, price_row, token

DAY = T0.date()


async def test_a_token_filtered_read_is_the_whole_day_filtered_afterwards(
    pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    rows = [price_row(i, token(t), 0.2 + 0.01 * t) for i in range(20) for t in range(1, 9)]
    await BulkWriter(pool, clock=lambda: T0 + timedelta(days=1)).write(PRICE_SNAPSHOTS, rows)
    lake = open_lake(str(tmp_path / "lake"))
    prices = TABLES_BY_NAME["price_snapshots"]
    chunking = Chunking(row_group_rows=16)  # 10 groups; token 3's 20 rows span two of them
    await asyncio.to_thread(export_day, db_dsn, lake, prices, DAY, source="t", chunking=chunking)
    reader = DayReader(lake)
    whole = reader.read("price_snapshots", DAY)
    assert whole is not None
    assert whole.num_rows == 160
    window = (T0 + timedelta(minutes=3), T0 + timedelta(minutes=17))
    for wanted in ([token(3)], [token(1), token(8)], [token(99)]):
        got = reader.read("price_snapshots", DAY, wanted, window)
        keep = pc.and_(
            pc.is_in(whole["token_id"], value_set=pc.cast(wanted, "string")),
            pc.and_(pc.greater_equal(whole["ts"], window[0]), pc.less(whole["ts"], window[1])),
        )
        assert got is not None
        assert got.equals(whole.filter(keep))
        narrow = reader.read("price_snapshots", DAY, wanted, window, columns=["price"])
        assert narrow is not None
        assert narrow.column_names == ["token_id", "ts", "price"]
        assert narrow["price"].equals(whole.filter(keep)["price"])
    path = lake.path(partition_file("price_snapshots", DAY))
    footer = footer_of(pq.read_metadata(path))
    assert groups_for(footer, [token(3)]) == [2, 3]  # its rows 40..59: groups of 32.. and 48..
    assert groups_for(footer, [token(99)]) == []
    assert reader.read("price_snapshots", DAY + timedelta(days=1), [token(3)]) is None
