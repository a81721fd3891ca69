"""A sealed day of a table goes into the lake once, whole, with a manifest entry that proves it.

Real parts only: the embedded PostgreSQL, a local folder and an S3-protocol server on loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from polyfarm.data.extract import FileFormat, extract_table
from polyfarm.lake import export as lake_export
from polyfarm.lake import ordering
from polyfarm.lake.connection import ArrowConnection
from polyfarm.lake.decode import storage_read
from polyfarm.lake.export import Chunking, SpanTally, export_day, reader_sqls
from polyfarm.lake.layout import LAKE_TABLES, ManifestEntry, manifest_file, partition_file
from polyfarm.lake.storage import Lake, open_lake
from polyfarm.lake.verify import Verdict, entries, verify_entry
from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.sealing import SEAL_AFTER, seal_finished_days
from polyfarm.store.writer import BulkWriter

from ..store.factories import T0, price_row, token, token_day_rows

PRICES = next(table for table in LAKE_TABLES if table.name == "price_snapshots")
DAY = T0.date()


def test_rows_are_counted_per_partition_span_as_they_pass() -> None:
    def at(*hours: float) -> pa.Table:
        ts = [datetime(2026, 3, 2, tzinfo=UTC) + timedelta(hours=h) for h in hours]
        return pa.table({"ts": pa.array(ts, pa.timestamp("us", "UTC"))})

    tally = SpanTally(timedelta(hours=6))
    tally.add(at(0, 5.99, 6))
    tally.add(at(6.5, 23.999))
    tally.add(at())
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    assert tally.counts() == {
        midnight: 2,
        midnight + timedelta(hours=6): 2,
        midnight + timedelta(hours=18): 1,
    }


async def export(dsn: str, lake: Lake, day: date = DAY) -> tuple[bool, ManifestEntry]:
    result = await asyncio.to_thread(export_day, dsn, lake, PRICES, day, source="test")
    return result.written, result.entry


async def test_a_day_goes_in_once_and_again_only_when_it_changed(
    pool: asyncpg.Pool, db_dsn: str, lake: Lake
) -> None:
    rows = [price_row(i, token(t)) for t in (3, 1, 2) for i in range(5)]
    writer = BulkWriter(pool, clock=lambda: T0 + timedelta(days=1))
    await writer.write(PRICE_SNAPSHOTS, rows)
    written, entry = await export(db_dsn, lake)
    assert written
    data = lake.read(partition_file("price_snapshots", DAY))
    assert data is not None
    assert entry.rows == 15
    assert entry.bytes == len(data)
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert lake.read(manifest_file("price_snapshots", DAY)) is not None
    async with pool.acquire() as conn:
        stored = await conn.fetch(
            "SELECT ts, token_id, market_id, price, best_bid, best_ask, spread, "
            "last_trade_price, volume_24h, liquidity FROM price_snapshots ORDER BY token_id, ts"
        )
    table = pq.read_table(
        lake.fs.open_input_file(lake.path(partition_file("price_snapshots", DAY)))
    )
    assert table.to_pylist() == [dict(r) for r in stored]

    assert (await export(db_dsn, lake))[0] is False  # nothing changed: nothing written
    await writer.write(PRICE_SNAPSHOTS, [price_row(7, token(4))])  # a late repair
    written, again = await export(db_dsn, lake)
    assert written
    assert (again.rows, again.replaces) == (16, entry.sha256)


async def test_verify_finds_a_damaged_or_missing_file(
    pool: asyncpg.Pool, db_dsn: str, lake: Lake
) -> None:
    writer = BulkWriter(pool, clock=lambda: T0 + timedelta(days=1))
    await writer.write(PRICE_SNAPSHOTS, [price_row(i) for i in range(5)])
    await export(db_dsn, lake)
    await export(db_dsn, lake, DAY - timedelta(days=1))  # an empty day: a file of 0 rows
    checks = [verify_entry(lake, check) for check in entries(lake)]
    assert [(c.entry.day if c.entry else None, c.verdict) for c in checks] == [
        (DAY - timedelta(days=1), Verdict.OK),
        (DAY, Verdict.OK),
    ]
    path = partition_file("price_snapshots", DAY)
    data = lake.read(path)
    assert data is not None
    lake.write(path, data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped
    lake.write(manifest_file("price_snapshots", DAY - timedelta(days=1)), b"{not json")
    checks = [verify_entry(lake, check) for check in entries(lake)]
    assert [c.verdict for c in checks] == [Verdict.UNREADABLE, Verdict.CHECKSUM]
    assert "not a polyfarm manifest entry" in checks[0].detail


async def test_a_day_spilled_in_slices_is_the_same_file_as_one_sorted_at_once(
    pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    rows = [price_row(i, token(t)) for i in range(30) for t in (5, 3, 11, 2, 8, 1)]
    await BulkWriter(pool, clock=lambda: T0 + timedelta(days=1)).write(PRICE_SNAPSHOTS, rows)
    at_once, sliced = open_lake(str(tmp_path / "a")), open_lake(str(tmp_path / "b"))
    small_groups = Chunking(row_group_rows=16)  # several row groups, a token across two
    one = await asyncio.to_thread(
        export_day, db_dsn, at_once, PRICES, DAY, source="test", chunking=small_groups
    )
    spilled = Chunking(slice_rows=7, row_group_rows=16)  # a slice of ~one token at a time
    two = await asyncio.to_thread(
        export_day, db_dsn, sliced, PRICES, DAY, source="test", chunking=spilled
    )
    assert one.entry.rows == two.entry.rows == 180
    assert one.entry.sha256 == two.entry.sha256
    path = at_once.path(partition_file("price_snapshots", DAY))
    assert pq.ParquetFile(path).metadata.num_row_groups == 12
    table = pq.read_table(path)
    keys = list(zip(table["token_id"].to_pylist(), table["ts"].to_pylist(), strict=True))
    assert keys == sorted(keys)


async def test_an_extract_of_some_tokens_over_two_days_is_the_views_rows_in_order(
    pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    hours = [price_row(0, token(t))._replace(ts=T0 + timedelta(hours=h)) for h in range(30)
             for t in (4, 2, 7)]  # fmt: skip
    await BulkWriter(pool, clock=lambda: T0 + timedelta(days=3)).write(PRICE_SNAPSHOTS, hours)
    span = (T0 + timedelta(hours=1), T0 + timedelta(hours=25))  # into the next day
    picked = [token(7), token(2), token(99)]
    for file_format in FileFormat:
        done = await asyncio.to_thread(
            extract_table, db_dsn, PRICES, *span, tmp_path, file_format, token_ids=picked
        )
        assert done.rows == 48
    async with pool.acquire() as conn:
        stored = await conn.fetch(
            "SELECT ts, token_id, market_id, price, best_bid, best_ask, spread, "
            "last_trade_price, volume_24h, liquidity FROM price_snapshots "
            "WHERE token_id = ANY($1) AND ts >= $2 AND ts < $3 ORDER BY token_id, ts",
            picked,
            *span,
        )
    assert pq.read_table(tmp_path / "price_snapshots.parquet").to_pylist() == [
        dict(r) for r in stored
    ]
    as_text = pacsv.ConvertOptions(column_types={"token_id": pa.string()})
    csv = pacsv.read_csv(tmp_path / "price_snapshots.csv", convert_options=as_text)
    assert csv["token_id"].to_pylist() == [r["token_id"] for r in stored]


async def test_every_table_in_the_lake_is_its_views_rows_in_order(
    pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    """Price snapshots are decoded in Arrow, the other tables read through their view without
    the ids: each file holds exactly what its public view shows, sorted as the table says."""
    day = T0.replace(hour=0)
    writer = BulkWriter(pool, clock=lambda: day + timedelta(days=2))
    for tok in (token(2), token(1)):
        for spec, rows in token_day_rows(day, tok):
            await writer.write(spec, rows)
    lake = open_lake(str(tmp_path / "lake"))
    spilled = Chunking(slice_rows=500, row_group_rows=1000)
    for table in LAKE_TABLES:
        await asyncio.to_thread(
            export_day, db_dsn, lake, table, day.date(), source="t", chunking=spilled
        )
        async with pool.acquire() as conn:
            stored = await conn.fetch(
                f"SELECT * FROM {table.name} WHERE ts >= $1 AND ts < $2 "
                f"ORDER BY {', '.join(table.order)}",
                day,
                day + timedelta(days=1),
            )
        got = pq.read_table(lake.path(partition_file(table.name, day.date()))).to_pylist()
        for row in got:  # the lake keeps a book's levels as JSON text; the pool decodes jsonb
            row.update({k: json.loads(row[k]) for k in ("bids", "asks") if k in row})
        expected = [{k: v for k, v in dict(r).items() if k != "token_sid"} for r in stored]
        assert len(got) == len(expected) > 0, table.name
        assert got == expected, table.name


async def test_a_day_sealed_in_the_lakes_order_is_read_as_it_lies_into_the_same_file(
    plain_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealing rewrites a day in token id order (not in the order tokens were first seen);
    its export then reads it as it lies, sorting nothing, into the very file a sort gives. A
    day that is not in order after all (here a row written again after the seal, so at the
    heap's end, with no room to set rows aside) is sorted instead, into the same file."""
    pool = await asyncpg.create_pool(plain_dsn, min_size=1, max_size=2)
    first_seen = (7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 6, 4)  # sids in this order, ids in another
    try:
        async with pool.acquire() as conn:
            for t in first_seen:  # one at a time: a batch's new tokens get sids in id order
                await conn.execute(
                    "INSERT INTO token_keys (token_id, market_id) VALUES ($1, 'm')", token(t)
                )
        rows = [price_row(i, token(t)) for i in range(300) for t in first_seen]
        await BulkWriter(pool, clock=lambda: T0 + timedelta(days=1)).write(PRICE_SNAPSHOTS, rows)
        sorted_export = await export(plain_dsn, open_lake(str(tmp_path / "sorted")))
        async with pool.acquire() as conn:
            span_end = datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(days=1)
            assert (await seal_finished_days(conn, span_end + SEAL_AFTER)).sealed
            heap = await conn.fetch(
                "SELECT k.token_id FROM price_points_p20260302 p "
                "JOIN token_keys k USING (token_sid) ORDER BY p.ctid"
            )
        ids = [row["token_id"] for row in heap]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(first_seen)

        sorts: list[int] = []
        original = lake_export.sorted_slices

        def counted(*args: Any, **kwargs: Any) -> Any:
            sorts.append(1)
            return original(*args, **kwargs)

        monkeypatch.setattr(lake_export, "sorted_slices", counted)
        as_stored = await export(plain_dsn, open_lake(str(tmp_path / "stored")))
        assert sorts == []  # read as it lies
        assert as_stored[1].sha256 == sorted_export[1].sha256

        async with pool.acquire() as conn:
            await conn.execute(
                "WITH gone AS (DELETE FROM price_points_p20260302 WHERE ctid = "
                "(SELECT min(ctid) FROM price_points_p20260302) RETURNING *) "
                "INSERT INTO price_points SELECT * FROM gone"
            )
        monkeypatch.setattr(ordering, "ASIDE_ROWS", 0)
        fell_back = await export(plain_dsn, open_lake(str(tmp_path / "fell_back")))
        assert sorts == [1]
        assert fell_back[1].sha256 == sorted_export[1].sha256
    finally:
        await pool.close()


async def test_readers_of_a_partitioned_day_share_its_pages_once_sealed_or_not(
    plain_dsn: str, tmp_path: Path
) -> None:
    """Two readers take half of the day partition's pages each (a TID range scan), not half
    of its time, which would make each scan every page of a day rewritten in token order:
    together they read every row once, before the rewrite and after it."""
    pool = await asyncpg.create_pool(plain_dsn, min_size=1, max_size=2)
    try:
        rows = [price_row(i, token(t)) for i in range(300) for t in range(12)]
        await BulkWriter(pool, clock=lambda: T0 + timedelta(days=1)).write(PRICE_SNAPSHOTS, rows)
        span = (T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=1))
        read = storage_read(PRICES, ["ts", "token_id", "market_id", "price"])
        for sealed in (False, True):
            if sealed:
                async with pool.acquire() as conn:
                    report = await seal_finished_days(conn, span[1] + SEAL_AFTER)
                assert report.sealed == ["price_points_p20260302"]
            with ArrowConnection(plain_dsn) as conn:
                sqls = reader_sqls(conn, read, span, None, 2)
                assert ["ctid" in sql for sql in sqls] == [True, True]
                parts = [conn.fetch(sql) for sql in sqls]
            assert all(part.num_rows > 0 for part in parts)
            keys = sorted(
                (sid, ts)
                for part in parts
                for sid, ts in zip(
                    part["token_sid"].to_pylist(), part["ts"].to_pylist(), strict=True
                )
            )
            assert len(keys) == len(set(keys)) == 3600
        lake = open_lake(str(tmp_path / "lake"))
        done = await asyncio.to_thread(export_day, plain_dsn, lake, PRICES, DAY, source="t")
        assert done.entry.rows == 3600
    finally:
        await pool.close()


@pytest.mark.timescale
async def test_a_compressed_day_is_shared_out_by_token_and_read_whole(
    timescale_dsn: str, tmp_path: Path
) -> None:
    """On TimescaleDB, once a day's chunks are all compressed, each reader takes the tokens
    of its share (TimescaleDB then skips the others' batches) instead of a stretch of time:
    together they read every row once, and every table's file is still its view's rows."""
    pool = await asyncpg.create_pool(timescale_dsn, min_size=1, max_size=2)
    day = T0.replace(hour=0)
    span = (day, day + timedelta(days=1))
    try:
        writer = BulkWriter(pool, clock=lambda: day + timedelta(days=2))
        for tok in (token(2), token(1), token(3)):
            for spec, rows in token_day_rows(day, tok):
                await writer.write(spec, rows)
        for table in LAKE_TABLES:
            read = storage_read(table, ["ts", "token_id"])
            with ArrowConnection(timescale_dsn) as conn:
                assert not any("%" in sql for sql in reader_sqls(conn, read, span, None, 2))
            async with pool.acquire() as conn:
                await conn.execute(f"SELECT compress_chunk(c) FROM show_chunks('{read.stored}') c")
            with ArrowConnection(timescale_dsn) as conn:
                sqls = reader_sqls(conn, read, span, None, 2)
                parts = [conn.fetch(sql) for sql in sqls]
            assert ["token_sid % 2 =" in sql for sql in sqls] == [True, True], table.name
            async with pool.acquire() as conn:
                total = await conn.fetchval(
                    f"SELECT count(*) FROM {table.name} WHERE ts >= $1 AND ts < $2",
                    *span,
                )
            assert sum(part.num_rows for part in parts) == total > 0, table.name
            assert all(part.num_rows for part in parts), table.name
            lake = open_lake(str(tmp_path / "lake"))
            done = await asyncio.to_thread(export_day, timescale_dsn, lake, table, DAY, source="t")
            assert done.entry.rows == total, table.name
    finally:
        await pool.close()
