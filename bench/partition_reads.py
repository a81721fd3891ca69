"""What a read without a time bound costs over half a year of partitions, with and without a
DEFAULT partition (plain PostgreSQL).

The dashboard's market list, market page and Data quality page ask for each token's newest price
snapshot with no time bound (``ORDER BY ts DESC LIMIT 1``). Over range partitions without a
DEFAULT one, PostgreSQL reads the partitions newest first and stops at the first row; a DEFAULT
partition (migration 0015 made one; the upkeep now retires it) has no bounds, so the planner
probes every partition's index and merges them. This script measures both in the same run:

1. A fresh, fully migrated database (the embedded PostgreSQL, or a new one on ``--dsn``) with
   ``--days`` daily partitions of price snapshots (the writer makes those outside the spans
   made ahead, as for a backfill), each token once a day.
2. The newest snapshot of ``--tokens`` tokens, the Data quality page's lateral query over all
   of them, ``--runs`` times: the median per token.
3. A DEFAULT partition attached (empty, as it would be), analysed, and the same reads again.

    python bench/partition_reads.py [--tokens 2000] [--days 183] [--runs 7] [--dsn URL] [--json]

``--json`` ends the output with one line: ``newest_row_us_per_token`` (no DEFAULT partition),
``newest_row_us_per_token_with_default`` (the baseline), ``speedup`` (baseline over now),
``partitions``, ``tokens``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from datetime import timedelta
from typing import Any

import asyncpg

from polyfarm.store.database import create_pool
from polyfarm.store.partitions import partitions_of
from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.writer import BulkWriter
from row_bytes import START, make_tokens, price_row, write
from scratch_db import admin_server, drop_database, fresh_database

# The shape of polyfarm.api.queries.quality.stale_markets: every token's newest snapshot.
NEWEST = """
    SELECT count(p.ts) FROM token_keys k
    LEFT JOIN LATERAL (SELECT ts FROM price_snapshots s WHERE s.token_sid = k.token_sid
                       ORDER BY ts DESC LIMIT 1) p ON true
"""


async def load(pool: asyncpg.Pool, tokens: int, days: int, seed: int) -> None:
    """Every token once a day at noon for ``days`` days up to START."""
    rng = random.Random(seed)
    universe = make_tokens(tokens, rng)
    writer = BulkWriter(pool, clock=lambda: START + timedelta(days=1))
    for day in range(days, 0, -1):
        ts = START - timedelta(days=day) + timedelta(hours=12)
        await write(writer, PRICE_SNAPSHOTS, [price_row(ts, token, rng) for token in universe])


async def time_newest(conn: asyncpg.Connection, tokens: int, runs: int) -> float:
    """Microseconds per token, the median of ``runs`` (one warm-up run first)."""
    assert await conn.fetchval(NEWEST) == tokens
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await conn.fetchval(NEWEST)
        samples.append((time.perf_counter() - started) * 1e6 / tokens)
    return statistics.median(samples)


async def measure(admin_dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    dsn = await fresh_database(admin_dsn, "partition_reads", now=START)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        await load(pool, args.tokens, args.days, args.seed)
        async with pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE price_points")
            partitions = len(await partitions_of(conn, "price_points"))
            now = await time_newest(conn, args.tokens, args.runs)
            await conn.execute(
                "CREATE TABLE price_points_default PARTITION OF price_points DEFAULT"
            )
            await conn.execute("ANALYZE price_points")
            baseline = await time_newest(conn, args.tokens, args.runs)
    finally:
        await pool.close()
        await drop_database(admin_dsn, dsn)
    return {
        "tokens": args.tokens,
        "partitions": partitions,
        "newest_row_us_per_token": round(now, 2),
        "newest_row_us_per_token_with_default": round(baseline, 2),
        "speedup": round(baseline / now, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=183, help="daily partitions of history")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--dsn", help="a plain PostgreSQL server (default: an embedded one)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    with admin_server(args.dsn, "partition-reads") as (admin_dsn, _):
        result = asyncio.run(measure(admin_dsn, args))
    print(
        f"{result['tokens']:,} tokens over {result['partitions']} partitions: newest row "
        f"{result['newest_row_us_per_token']} us a token, "
        f"{result['newest_row_us_per_token_with_default']} us with a DEFAULT partition "
        f"({result['speedup']}x)"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
