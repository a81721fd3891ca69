"""What a read of ``orderbook_snapshots`` costs a row, now and as migration 0012's hex decoding
with every depth stored (before migrations 0023 and 0024), in the same run.

The view decodes each row's packed levels (``book_levels``), its best bid and ask
(``top_price``) and, since 0023, the depths the writer left to it (``levels_depth``). This
script:

1. makes a fresh, fully migrated database (the embedded PostgreSQL, or a new one on ``--dsn``)
   and writes ``--rows`` order books through the writer: sides of 0 to 60 levels, sizes with
   0 to 6 decimals, the top 5 levels stored (``orderbook.depth``'s default);
2. reads every row of the view (``SELECT *``), ``--runs`` times: the median per row;
3. puts back the hex decoding of migration 0012 (read from the migration; and a ``levels_depth``
   decoding the same way),
   stores every depth the writer left to the view, and reads again: the baseline.

    python bench/book_reads.py [--rows 40000] [--runs 5] [--dsn URL] [--json]

``--json`` ends the output with one line: ``read_us_per_row``, ``read_us_per_row_before``,
``speedup`` (before over now), ``rows``, ``depths_left_to_view`` (the share of depth values not
stored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from polyfarm.markets.book_stats import Wall, book_stats
from polyfarm.store.database import create_pool
from polyfarm.store.migrations import default_migrations_dir
from polyfarm.store.rows import ORDERBOOK_SNAPSHOTS, OrderBookSnapshotRow
from polyfarm.store.writer import BulkWriter
from scratch_db import admin_server, drop_database, fresh_database

START = datetime(2026, 12, 1, tzinfo=UTC)
STORED_LEVELS = 5
DEPTHS = [f"{side}_depth_{n}" for side in ("bid", "ask") for n in (5, 10, 20, 50)]

# Before 0023, a depth stored; had the view computed it then, it would have read the sizes as
# 0012's book_levels() does, through hex text.
HEX_DEPTH = """
CREATE OR REPLACE FUNCTION levels_depth(packed bytea, levels integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT coalesce(sum(('x' || encode(substr(packed, i + 4, 8), 'hex'))::bit(64)::bigint),
                    0)::float8 / 1e6::float8
    FROM generate_series(1, least(length(packed), 12 * levels), 12) AS i
$$;
"""


def hex_decoding() -> str:
    """Migration 0012's ``book_levels`` and ``top_price``, as it wrote them, put back."""
    sql = (default_migrations_dir() / "0012_compact_order_books.sql").read_text()
    functions = re.findall(r"CREATE FUNCTION (?:book_levels|top_price)\(.*?\n\$\$;", sql, re.S)
    if len(functions) != 2:
        raise SystemExit("migration 0012 no longer defines book_levels and top_price")
    return "\n".join(f.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION") for f in functions)


def side(rng: random.Random, best: float, step: float) -> list[tuple[float, float]]:
    count = rng.choice((0, 1, 3, 5, 8, 12, 25, 40, 60))
    return [
        (round(best + i * step, 2), round(rng.uniform(1, 90_000), rng.choice((0, 2, 6))))
        for i in range(count)
    ]


def wall(found: Wall | None) -> tuple[float | None, float | None]:
    return (found.price, found.size) if found else (None, None)


def book(rng: random.Random, i: int) -> OrderBookSnapshotRow:
    bids, asks = side(rng, 0.49, -0.01), side(rng, 0.51, 0.01)
    stats = book_stats(bids, asks, 5.0)
    return OrderBookSnapshotRow(
        START + timedelta(seconds=i), f"{10**20 + i % 400}", "1", "ws",
        json.dumps(bids[:STORED_LEVELS]), json.dumps(asks[:STORED_LEVELS]), stats.best_bid,
        stats.best_ask, stats.spread, stats.midpoint, stats.bid_depth_usd, stats.ask_depth_usd,
        stats.bid_levels, stats.ask_levels, *stats.bid_depth, *stats.ask_depth, stats.imbalance,
        *wall(stats.bid_wall), *wall(stats.ask_wall), f"{i:040x}", None,
    )  # fmt: skip


async def time_reads(conn: asyncpg.Connection, runs: int) -> tuple[float, list[Any]]:
    """Microseconds per row, the median of ``runs`` (one warm-up read first), and the rows."""
    sql = "SELECT * FROM orderbook_snapshots ORDER BY token_sid, ts"
    rows = await conn.fetch(sql)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await conn.fetch(sql)
        samples.append((time.perf_counter() - started) * 1e6 / len(rows))
    return statistics.median(samples), rows


async def measure(admin_dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    dsn = await fresh_database(admin_dsn, "book_reads", now=START)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    rng = random.Random(args.seed)
    try:
        writer = BulkWriter(pool, clock=lambda: START + timedelta(days=2))
        books = [book(rng, i) for i in range(args.rows)]
        for at in range(0, len(books), 5_000):
            await writer.write(ORDERBOOK_SNAPSHOTS, books[at : at + 5_000])
        async with pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE book_samples")
            nulls = " + ".join(f"({name} IS NULL)::int" for name in DEPTHS)
            left = await conn.fetchval(f"SELECT avg({nulls}) / 8.0 FROM book_samples")  # noqa: S608
            now, read = await time_reads(conn, args.runs)
            await conn.execute(hex_decoding() + HEX_DEPTH)
            for name in DEPTHS:
                side_name, levels = name.split("_depth_")
                computed = f"levels_depth({side_name}s, {levels})"
                await conn.execute(
                    f"UPDATE book_samples SET {name} = {computed} WHERE {name} IS NULL"  # noqa: S608
                )
            await conn.execute("VACUUM ANALYZE book_samples")
            before, read_before = await time_reads(conn, args.runs)
            if [tuple(r) for r in read] != [tuple(r) for r in read_before]:
                raise SystemExit("the two decodings read different rows")
    finally:
        await pool.close()
        await drop_database(admin_dsn, dsn)
    return {
        "rows": args.rows,
        "depths_left_to_view": round(float(left), 3),
        "read_us_per_row": round(now, 2),
        "read_us_per_row_before": round(before, 2),
        "speedup": round(before / now, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--dsn", help="a PostgreSQL server (default: an embedded one)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    with admin_server(args.dsn, "book-reads") as (admin_dsn, _):
        result = asyncio.run(measure(admin_dsn, args))
    print(
        f"{result['rows']:,} order books, {result['depths_left_to_view']:.1%} of depths left to"
        f" the view: a read {result['read_us_per_row']} us a row, "
        f"{result['read_us_per_row_before']} us with the hex decoding and every depth stored "
        f"({result['speedup']}x)"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
