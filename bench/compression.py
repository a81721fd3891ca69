"""Compressed bytes per row of every time series at production segment sizes (TimescaleDB).

``bench/row_bytes.py`` compresses what 25 minutes wrote: about 25 rows a segment (one token in
one chunk), where production compresses hundreds to ~1,440. This script loads a simulated venue
day (``venue_day.py``: order books moved by deltas, trades in transactions, heavy-tailed
activity, the farm's own feature maths and unchanged-row skipping) through polyfarm's
``BulkWriter`` into a fresh, fully migrated database on the TimescaleDB server ``--dsn`` names,
with the policies polyfarm sets at start-up (``apply_timescale_policies``; the jobs are paused so
that the script, not the scheduler, compresses). Then:

1. **Variants** (``--variant-tokens``, 0 skips them): the rows of that many tokens copied into
   scratch hypertables with other chunk intervals, order-by columns, merging and rebuilding,
   each compressed the same way, so the settings are chosen by measurement.
2. **As configured**: per table, rows, heap + indexes + TOAST per row before compression, the
   index bytes per row of the uncompressed chunks (what must stay in memory while a chunk takes
   writes), then every chunk compressed oldest first, as the compression policy does (merging
   into day-long compressed chunks where ``compress_chunk_time_interval`` says so), the merged
   chunks rebuilt as migration 0016's job does, and bytes per row after, rows per compressed
   batch and the ratio. GB/day applies the issue's venue rows per minute
   (``VENUE_ROWS_PER_MIN``) and the simulator's venue mix's (``VENUE_MIX_ROWS_PER_MIN``); the
   indexes of the chunks being written at those rates follow from the chunk intervals.
3. **Aggregates**: the continuous aggregates refreshed over the day, each day repeated over one
   production chunk and compressed as migration 0016 sets it; GB/day at 40,000 tokens.

With ``--json`` the last line holds, per table under ``tables`` (and per aggregate under
``aggregates``), ``bytes_per_row_raw``, ``bytes_per_row_compressed``, ``compression_ratio`` and
``gb_per_day_compressed``, and ``gb_per_day_compressed_total`` for all tables.

    python bench/compression.py --dsn URL [--tokens 2000] [--hours 24] [--variant-tokens 400]
        [--seed 1] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from polyfarm.settings import ChunkSettings, RetentionSettings
from polyfarm.store.database import create_pool
from polyfarm.store.maintenance import AGGREGATE_VIEWS
from polyfarm.store.policies import AGGREGATES, apply_timescale_policies
from polyfarm.store.rows import (
    BOOK_DELTAS,
    MARKET_FEATURES,
    ORDERBOOK_SNAPSHOTS,
    PRICE_SNAPSHOTS,
    REPRESENTED_ROWS,
    TRADES,
)
from polyfarm.store.writer import BulkWriter
from scratch_db import admin_server, drop_database, fresh_database
from venue_day import START, MinuteRows, VenueDay

# The venue's rows per minute at 40,000 tokens (issue 14): what GB/day is reckoned at.
VENUE_TOKENS = 40_000
VENUE_ROWS_PER_MIN = {
    "price_points": 40_000,
    "book_samples": 50_000,
    "feature_samples": 50_000,
    "book_changes": 107_000,
    "trade_fills": 11_000,
}
# The simulator's venue mix under the collector with default cadences (BENCHMARKS.md,
# "Before any storage change, venue-like mix": most markets in T0, whose books and features
# come every 5 and 60 minutes, and unchanged rows not yet skipped then), with price snapshots at
# their 60 s cadence for every token (that run fell behind on them).
VENUE_MIX_ROWS_PER_MIN = {
    "price_points": 40_000,
    "book_samples": 13_790,
    "feature_samples": 9_712,
    "book_changes": 109_468,
    "trade_fills": 1_107,
}
SPECS = (
    ("prices", PRICE_SNAPSHOTS),
    ("books", ORDERBOOK_SNAPSHOTS),
    ("features", MARKET_FEATURES),
    ("deltas", BOOK_DELTAS),
    ("trades", TRADES),
)
FLUSH_ROWS = 40_000
GB = 1e9


# -- loading ----------------------------------------------------------------------------------


async def load_day(pool: asyncpg.Pool, tokens: int, hours: float, seed: int) -> float:
    day = VenueDay(tokens, seed)
    writer = BulkWriter(pool, clock=lambda: START + timedelta(days=30))
    pending = MinuteRows()
    started = time.perf_counter()
    minutes = round(hours * 60)
    for minute in range(minutes):
        rows = day.minute(minute)
        for name, _ in SPECS:
            getattr(pending, name).extend(getattr(rows, name))
        if len(pending.deltas) >= FLUSH_ROWS or minute == minutes - 1:
            await flush(writer, pending)
            pending = MinuteRows()
        if minute % 60 == 59:
            print(f"  hour {(minute + 1) // 60} of {hours:g}", file=sys.stderr)
    return time.perf_counter() - started


async def flush(writer: BulkWriter, pending: MinuteRows) -> None:
    for name, spec in SPECS:
        rows = getattr(pending, name)
        for start in range(0, len(rows), FLUSH_ROWS):
            batch = rows[start : start + FLUSH_ROWS]
            result = await writer.write(spec, batch)
            assert result.inserted == len(batch), (spec.name, result)
            assert not result.rejected, (spec.name, result.rejected[:3])


# -- measuring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    rows: int
    total: int  # heap + indexes + TOAST, every chunk (compressed ones included)
    index: int  # indexes of the uncompressed chunks

    def per_row(self, value: int | None = None) -> float | None:
        return round((self.total if value is None else value) / self.rows, 2) if self.rows else None


async def size_of(conn: asyncpg.Connection, table: str) -> Size:
    """The public rows ``table`` holds (bytes per row are per public row) and its bytes."""
    represented = REPRESENTED_ROWS.get(table, "1")
    rows = int(
        await conn.fetchval(f"SELECT coalesce(sum({represented}), 0) FROM {table}")  # noqa: S608
    )
    total = int(await conn.fetchval("SELECT hypertable_size($1::regclass)", table) or 0)
    index = await conn.fetchval(
        "SELECT coalesce(sum(index_bytes), 0) FROM chunks_detailed_size($1::regclass)", table
    )
    return Size(rows, total, int(index))


async def batch_rows(conn: asyncpg.Connection, table: str) -> float | None:
    """Mean rows per compressed batch over the compressed chunks of ``table``."""
    chunks = await conn.fetch(
        """
        SELECT format('%I.%I', cc.schema_name, cc.table_name)
        FROM _timescaledb_catalog.chunk c
        JOIN _timescaledb_catalog.chunk cc ON cc.id = c.compressed_chunk_id
        JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id
        WHERE h.id = (SELECT id FROM _timescaledb_catalog.hypertable
                      WHERE format('%I.%I', schema_name, table_name)::regclass = $1::regclass)
        """,
        table,
    )
    batches = rows = 0
    for (chunk,) in chunks:
        got = await conn.fetchrow(
            f"SELECT count(*), coalesce(sum(_ts_meta_count), 0) FROM {chunk}"  # noqa: S608
        )
        batches, rows = batches + got[0], rows + got[1]
    return round(rows / batches, 1) if batches else None


async def compress_oldest_first(conn: asyncpg.Connection, table: str) -> None:
    """Every chunk, in time order, one call each: as the compression policy does, so that
    chunks merge into the previous compressed one where ``compress_chunk_time_interval``
    allows."""
    chunks = await conn.fetch(
        "SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks "
        "WHERE format('%I.%I', hypertable_schema, hypertable_name)::regclass = $1::regclass "
        "ORDER BY range_start",
        table,
    )
    for (chunk,) in chunks:
        await conn.execute("SELECT compress_chunk($1::regclass, if_not_compressed => true)", chunk)


def table_figures(name: str, raw: Size, packed: Size, batch: float | None) -> dict[str, Any]:
    raw_b, packed_b = raw.per_row(), packed.per_row()
    per_day = VENUE_ROWS_PER_MIN.get(name, 0) * 1440
    return {
        "rows": raw.rows,
        "bytes_per_row_raw": raw_b,
        "index_bytes_per_row": raw.per_row(raw.index),
        "bytes_per_row_compressed": packed_b,
        "compression_ratio": round(raw_b / packed_b, 1) if raw_b and packed_b else None,
        "rows_per_batch": batch,
        "venue_rows_per_min": VENUE_ROWS_PER_MIN.get(name),
        "gb_per_day_raw": round(per_day * (raw_b or 0) / GB, 2),
        "gb_per_day_compressed": round(per_day * (packed_b or 0) / GB, 2),
        "gb_per_day_compressed_venue_mix": round(
            VENUE_MIX_ROWS_PER_MIN.get(name, 0) * 1440 * (packed_b or 0) / GB, 2
        ),
    }


async def raw_sizes(conn: asyncpg.Connection) -> dict[str, Size]:
    await conn.execute("VACUUM ANALYZE")
    return {name: await size_of(conn, name) for name in VENUE_ROWS_PER_MIN}


async def compress_tables(
    conn: asyncpg.Connection, raw: dict[str, Size]
) -> dict[str, dict[str, Any]]:
    """Every chunk compressed (and merged) as the compression policy does, then the merged
    chunks rebuilt as migration 0016's job does (its lookback stretched to this old day)."""
    for name in VENUE_ROWS_PER_MIN:
        await compress_oldest_first(conn, name)
    if await conn.fetchval("SELECT to_regproc('polyfarm_rebuild_merged_chunks') IS NOT NULL"):
        await conn.execute(
            'CALL polyfarm_rebuild_merged_chunks(NULL, \'{"lookback": "100 years"}\')'
        )
    out = {}
    for name in VENUE_ROWS_PER_MIN:
        packed = await size_of(conn, name)
        out[name] = table_figures(name, raw[name], packed, await batch_rows(conn, name))
    return out


async def chunk_intervals(conn: asyncpg.Connection) -> dict[str, timedelta]:
    rows = await conn.fetch(
        "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions"
    )
    return {r[0]: r[1] for r in rows if r[0] in VENUE_ROWS_PER_MIN}


def index_memory(
    intervals: dict[str, timedelta], tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The chunks that take writes, at the venue's rates: every hypertable has one, and its
    B-tree is written at random places (every token's rows arrive each minute), so all of it
    must stay in memory for writes to stay fast."""
    chunks: dict[str, dict[str, float]] = {}
    for name, interval in intervals.items():
        rows = VENUE_ROWS_PER_MIN[name] * interval.total_seconds() / 60
        index = tables[name]["index_bytes_per_row"] or 0
        heap = (tables[name]["bytes_per_row_raw"] or 0) - index
        chunks[name] = {
            "chunk_hours": interval.total_seconds() / 3600,
            "rows_per_chunk": round(rows),
            "index_mb_per_chunk": round(rows * index / 1e6),
            "chunk_mb": round(rows * (heap + index) / 1e6),
        }
    return {
        "tables": chunks,
        "total_index_mb": sum(c["index_mb_per_chunk"] for c in chunks.values()),
        "total_chunk_mb": sum(c["chunk_mb"] for c in chunks.values()),
    }


async def aggregate_views(conn: asyncpg.Connection) -> list[tuple[str, str, bool]]:
    """(view, materialization hypertable, compression enabled), in hierarchy order."""
    rows = await conn.fetch(
        "SELECT view_name, format('%I.%I', materialization_hypertable_schema, "
        "materialization_hypertable_name), compression_enabled "
        "FROM timescaledb_information.continuous_aggregates"
    )
    found = {r[0]: (r[0], r[1], r[2]) for r in rows}
    return [found[view] for view in AGGREGATE_VIEWS if view in found]


async def aggregate_copy(
    conn: asyncpg.Connection, materialization: str, chunk: timedelta
) -> tuple[Size, Size, float | None]:
    """The loaded day of an aggregate repeated, a day later each time, over one production
    chunk (``AggregateStorage.chunk``) and compressed as migration 0016 sets it: sizes before
    and after, and rows per batch. A day of hourly candles holds 24 rows a token where a
    production chunk holds 240."""
    name = "bench_aggregate"
    days = max(1, round(chunk / timedelta(days=1)))
    columns = await conn.fetchval(
        "SELECT string_agg(CASE attname WHEN 'bucket' THEN 'm.bucket + d * INTERVAL ''1 day''' "
        "ELSE format('m.%I', attname) END, ', ' ORDER BY attnum) "
        "FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
        materialization,
    )
    await conn.execute(f"DROP TABLE IF EXISTS {name}")
    await conn.execute(
        f"CREATE TABLE {name} (LIKE {materialization} INCLUDING DEFAULTS INCLUDING INDEXES)"
    )
    await conn.execute(
        f"SELECT create_hypertable('{name}', by_range('bucket', $1::interval), "
        "create_default_indexes => false)",
        chunk,
    )
    await conn.execute(
        f"ALTER TABLE {name} SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'token_sid', "
        "timescaledb.compress_orderby = 'bucket DESC')"
    )
    await conn.execute(
        f"INSERT INTO {name} SELECT {columns} FROM {materialization} m, "  # noqa: S608
        "generate_series(0, $1 - 1) d",
        days,
    )
    await conn.execute(f"VACUUM ANALYZE {name}")
    raw = await size_of(conn, name)
    await compress_oldest_first(conn, name)
    packed, batch = await size_of(conn, name), await batch_rows(conn, name)
    await conn.execute(f"DROP TABLE {name}")
    return raw, packed, batch


async def measure_aggregates(
    conn: asyncpg.Connection, tokens: int, hours: float
) -> dict[str, dict[str, Any]]:
    """Refreshed over the loaded day; compressed at production chunk sizes; GB/day at the
    venue's token count."""
    out = {}
    chunks = {a.view: a.chunk for a in AGGREGATES}
    for view, _, _ in await aggregate_views(conn):
        await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
    await conn.execute("VACUUM ANALYZE")
    for view, materialization, _ in await aggregate_views(conn):
        rows = (await size_of(conn, materialization)).rows
        raw, packed, batch = await aggregate_copy(conn, materialization, chunks[view])
        figures = table_figures(view, raw, packed, batch)
        for key in ("venue_rows_per_min", "gb_per_day_compressed_venue_mix"):
            del figures[key]  # an aggregate's rows follow the tokens and buckets, not the mix
        figures["rows"] = rows
        per_day = rows * (VENUE_TOKENS / tokens) * (24 / hours)
        figures["venue_rows_per_day"] = round(per_day)
        figures["gb_per_day_raw"] = round(per_day * (raw.per_row() or 0) / GB, 3)
        figures["gb_per_day_compressed"] = round(per_day * (packed.per_row() or 0) / GB, 3)
        out[view] = figures
    return out


# -- variants ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    table: str
    chunk: str  # chunk_time_interval
    orderby: str
    merge: str | None = None  # compress_chunk_time_interval: merge into chunks this long
    rebuild: bool = False  # then rebuild every merged chunk (batches of up to 1,000 rows)
    segmentby: str = "token_sid"
    index: str | None = None  # compress_index: sparse indexes (as migration 0016 sets them)

    @property
    def label(self) -> str:
        merged = f" merged to {self.merge}" if self.merge else ""
        rebuilt = " + rebuild" if self.rebuild else ""
        return f"{self.chunk} chunks{merged}{rebuilt}, order by {self.orderby}"


def _variants(
    table: str, orderby: str, chunks: tuple[str, ...], small: str, index: str | None = None
) -> list[Variant]:
    found = [Variant(table, chunk, orderby, index=index) for chunk in chunks]
    found.append(Variant(table, small, orderby, merge="1 day", index=index))
    found.append(Variant(table, small, orderby, merge="1 day", rebuild=True, index=index))
    return found


VARIANTS = (
    *_variants("price_points", "ts DESC", ("1 day", "6 hours", "2 hours"), "2 hours"),
    *_variants("book_samples", "ts DESC", ("1 day", "6 hours", "2 hours"), "2 hours"),
    *_variants("feature_samples", "ts DESC", ("1 day", "6 hours", "2 hours"), "2 hours"),
    *_variants(
        "book_changes", "ts DESC, seq", ("6 hours", "2 hours", "1 hour"), "1 hour", "bloom(ts, seq)"
    ),
    *_variants(
        "trade_fills", "ts DESC, trade_key", ("1 day", "4 hours"), "4 hours", "bloom(ts, trade_key)"
    ),
    Variant("trade_fills", "1 day", "ts DESC"),
    Variant("trade_fills", "1 day", "ts DESC, transaction_hash"),
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def run_variant(conn: asyncpg.Connection, variant: Variant, tokens: int) -> dict[str, Any]:
    name = "bench_variant"
    options = [
        "timescaledb.compress",
        f"timescaledb.compress_segmentby = {_literal(variant.segmentby)}",
        f"timescaledb.compress_orderby = {_literal(variant.orderby)}",
    ]
    if variant.merge:
        options.append(f"timescaledb.compress_chunk_time_interval = {_literal(variant.merge)}")
    if variant.index:
        options.append(f"timescaledb.compress_index = {_literal(variant.index)}")
    await conn.execute(f"DROP TABLE IF EXISTS {name}")
    await conn.execute(
        f"CREATE TABLE {name} (LIKE {variant.table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING INDEXES)"
    )
    await conn.execute(
        f"SELECT create_hypertable('{name}', by_range('ts', $1::text::interval), "
        "create_default_indexes => false)",
        variant.chunk,
    )
    await conn.execute(f"ALTER TABLE {name} SET ({', '.join(options)})")
    await conn.execute(
        f"INSERT INTO {name} SELECT * FROM {variant.table} WHERE token_sid <= $1 ORDER BY ts",  # noqa: S608
        tokens,
    )
    await conn.execute(f"VACUUM ANALYZE {name}")
    raw = await size_of(conn, name)
    await compress_oldest_first(conn, name)
    if variant.rebuild:
        for (chunk,) in await conn.fetch("SELECT c::text FROM show_chunks($1::regclass) c", name):
            await conn.execute(
                "CALL _timescaledb_functions.rebuild_columnstore($1::regclass)", chunk
            )
    packed = await size_of(conn, name)
    figures = {"table": variant.table, "variant": variant.label}
    figures |= table_figures(variant.table, raw, packed, await batch_rows(conn, name))
    await conn.execute(f"DROP TABLE {name}")
    return figures


async def run_variants(conn: asyncpg.Connection, tokens: int) -> list[dict[str, Any]]:
    out = []
    for variant in VARIANTS:
        started = time.perf_counter()
        out.append(await run_variant(conn, variant, tokens))
        seconds = time.perf_counter() - started
        print(f"  variant {variant.table}: {variant.label} ({seconds:.0f} s)", file=sys.stderr)
    return out


# -- the run ----------------------------------------------------------------------------------


async def pause_jobs(conn: asyncpg.Connection) -> None:
    """The policies stay as set, but the scheduler runs none of them: this script compresses."""
    await conn.execute(
        "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
    )


async def measure(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_timescale_policies(conn, RetentionSettings(), ChunkSettings())
            await pause_jobs(conn)
            if not args.mirror_folding:  # as a database whose writers have not begun folding
                await conn.execute("UPDATE mirror_folding SET fold_from = NULL")
        seconds = await load_day(pool, args.tokens, args.hours, args.seed)
        async with pool.acquire() as conn:
            raw = await raw_sizes(conn)
            result: dict[str, Any] = {"load_seconds": round(seconds)}
            if args.variant_tokens:
                result["variants"] = await run_variants(conn, args.variant_tokens)
            tables = await compress_tables(conn, raw)
            result["tables"] = tables
            result["gb_per_day_compressed_total"] = round(
                sum(t["gb_per_day_compressed"] for t in tables.values()), 2
            )
            result["gb_per_day_raw_total"] = round(
                sum(t["gb_per_day_raw"] for t in tables.values()), 2
            )
            result["gb_per_day_compressed_venue_mix_total"] = round(
                sum(t["gb_per_day_compressed_venue_mix"] for t in tables.values()), 2
            )
            result["index_memory"] = index_memory(await chunk_intervals(conn), tables)
            aggregates = await measure_aggregates(conn, args.tokens, args.hours)
            result["aggregates"] = aggregates
            result["aggregates_gb_per_day_compressed_total"] = round(
                sum(a["gb_per_day_compressed"] for a in aggregates.values()), 3
            )
            result["aggregates_gb_per_day_raw_total"] = round(
                sum(a["gb_per_day_raw"] for a in aggregates.values()), 3
            )
    finally:
        await pool.close()
    return result


async def run(args: argparse.Namespace, admin_dsn: str) -> dict[str, Any]:
    dsn = await fresh_database(admin_dsn, "compression")
    try:
        result: dict[str, Any] = {
            "tokens": args.tokens,
            "hours": args.hours,
            "variant_tokens": args.variant_tokens,
            "mirror_folding": args.mirror_folding,
        }
        result |= await measure(dsn, args)
    finally:
        if args.keep:
            print(f"  kept {dsn}", file=sys.stderr)
        else:
            await drop_database(admin_dsn, dsn)
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def print_tables(result: dict[str, Any]) -> None:
    print(f"{result['tokens']:,} tokens x {result['hours']:g} h, as configured:")
    print(f"  {'table':<17}{'rows':>11} {'raw B/row':>10} {'index B/row':>12} "
          f"{'compressed':>11} {'ratio':>6} {'rows/batch':>11} {'GB/day':>7}")  # fmt: skip
    for name, t in {**result["tables"], **result["aggregates"]}.items():
        print(f"  {name:<17}{t['rows']:>11,} {t['bytes_per_row_raw'] or 0:>10.1f} "
              f"{t['index_bytes_per_row'] or 0:>12.1f} {t['bytes_per_row_compressed'] or 0:>11.1f} "
              f"{t['compression_ratio'] or 0:>5.1f}x {t['rows_per_batch'] or 0:>11.1f} "
              f"{t['gb_per_day_compressed']:>7.2f}")  # fmt: skip
    print(f"  all tables: {result['gb_per_day_compressed_total']:.2f} GB/day compressed "
          f"({result['gb_per_day_raw_total']:.2f} uncompressed) at the issue's venue rates, "
          f"{result['gb_per_day_compressed_venue_mix_total']:.2f} at the venue mix's")  # fmt: skip
    print(f"  aggregates: {result['aggregates_gb_per_day_compressed_total']:.3f} GB/day "
          f"compressed ({result['aggregates_gb_per_day_raw_total']:.3f} uncompressed)")  # fmt: skip
    memory = result["index_memory"]
    print(f"  hot chunks: indexes {memory['total_index_mb']:,} MB, "
          f"heap + indexes {memory['total_chunk_mb']:,} MB at the venue's rates")  # fmt: skip
    for v in result.get("variants", []):
        print(f"  variant {v['table']:<16} {v['variant']:<58} raw {v['bytes_per_row_raw']:>6.1f} "
              f"-> {v['bytes_per_row_compressed']:>6.1f} B/row, {v['rows_per_batch']:>6.1f} "
              "rows/batch")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="admin DSN of a TimescaleDB server")
    parser.add_argument("--tokens", type=int, default=2_000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--variant-tokens", type=int, default=400, help="0: no variants")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--mirror-folding",
        choices=("on", "off"),
        default="on",
        help="store a market's mirrored book changes once (migration 0020), or each",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database, to look into it")
    args = parser.parse_args()
    args.mirror_folding = args.mirror_folding == "on"
    with admin_server(args.dsn, "compression") as (admin_dsn, _):
        result = asyncio.run(run(args, admin_dsn))
    print_tables(result)
    if args.json:
        print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
