"""The lake and the research API: export speed and memory, bytes per row, read latency, and a
training set, against the pandas path in the same run.

A fresh, fully migrated database (the embedded PostgreSQL, or a new one on ``--dsn``) gets
``--rows`` venue-shaped price snapshots (``bench/row_bytes.py``'s random walks: tokens once a
minute over one UTC day) and ``--feature-rows`` feature snapshots. Then:

1. **Export**: ``polyfarm lake export --table price_snapshots`` in a child process (the command
   a user runs) of the day as production exports it, rewritten in the lake's order by
   maintenance (plain PostgreSQL, ``polyfarm.store.sealing``, which took ``seal_s``), so read
   as it lies instead of sorted (``polyfarm.lake.ordering.in_stored_order``), and vacuumed as
   autovacuum would have by then (``vacuum_s``); on TimescaleDB (``--dsn`` of a server that
   has it: chunks of the daemon's size), compressed as its policy would, then analyzed
   (``seal_s`` and ``vacuum_s`` are those two): rows/s and the
   child's peak RSS; the same command for a day without rows (into another lake), its fixed
   cost (the interpreter, imports, connections, planning), so that the rate of the export's
   own work shows too; and the export of the day before the rewrite
   (``export_unsealed_rows_per_s``).
2. **Baseline**: ``pandas.read_sql`` of the same rows (SQLAlchemy + psycopg2) and
   ``DataFrame.to_parquet`` (pyarrow, ZSTD), in a child process too: rows/s and peak RSS.
3. **Lake bytes per row** of the exported day.
4. **Candles**: ``--reads`` token-days of 1-minute candles through ``polyfarm.data.Farm``, from
   the database and from the lake (a Farm with the lake only): p50 and p99. From the database
   twice: the day as it is while it is today (``candles_db_today_ms``), and once maintenance
   has rewritten it in token order an hour after its end (``candles_db_ms``).
5. **Training set**: ``Farm.training_set`` over every feature row, a price label 5 minutes on.

    python bench/export.py [--rows 10000000] [--feature-rows 1000000] [--reads 200]
        [--dsn URL] [--json]

``--json`` ends with one line: ``export_rows_per_s``, ``export_fixed_s``,
``export_rows_per_s_after_fixed``, ``export_unsealed_rows_per_s``, ``pandas_rows_per_s``,
``speedup``, ``export_peak_rss_mb``, ``pandas_peak_rss_mb``, ``lake_bytes_per_row``,
``candles_db_ms``, ``candles_db_today_ms`` and ``candles_lake_ms`` (p50, p99), ``seal_s``,
``vacuum_s``, ``training_rows``, ``training_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from polyfarm.data.farm import Farm
from polyfarm.lake.layout import decode_entry, manifest_file
from polyfarm.lake.storage import open_lake
from polyfarm.settings import ChunkSettings
from polyfarm.store.database import create_pool
from polyfarm.store.migrations import timescaledb_version
from polyfarm.store.policies import apply_chunkings
from polyfarm.store.rows import MARKET_FEATURES, PRICE_SNAPSHOTS
from polyfarm.store.sealing import SEAL_AFTER, seal_finished_days
from polyfarm.store.writer import BulkWriter
from row_bytes import START, feature_row, make_tokens, price_row, step, write
from scratch_db import admin_server, drop_database, fresh_database

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))
MINUTES = 1440
_PANDAS = """
import sys, time, resource
import pandas as pd
from sqlalchemy import create_engine
dsn, out = sys.argv[1], sys.argv[2]
engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg2://", 1))
started = time.perf_counter()
frame = pd.read_sql("SELECT * FROM price_snapshots ORDER BY token_id, ts", engine)
frame.drop(columns=["token_sid"]).to_parquet(out, compression="zstd")
print(len(frame), time.perf_counter() - started)
"""


async def load(dsn: str, rows: int, feature_rows: int, seed: int) -> list[str]:
    """``rows`` price snapshots over one day (tokens once a minute) and ``feature_rows``
    feature snapshots of the first tokens; returns the token ids."""
    rng = random.Random(seed)
    tokens = make_tokens(max(1, rows // MINUTES), rng)
    featured = tokens[: max(1, feature_rows // MINUTES)]
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        writer = BulkWriter(pool, clock=lambda: START + timedelta(days=2), parallelism=2)
        for minute in range(MINUTES):
            ts = START + timedelta(minutes=minute)
            batch = []
            for token in tokens:
                step(token, rng)
                batch.append(price_row(ts, token, rng))
            await write(writer, PRICE_SNAPSHOTS, batch)
            await write(writer, MARKET_FEATURES, [feature_row(ts, t, rng) for t in featured])
        async with pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE")
    finally:
        await pool.close()
    return [t.token_id for t in tokens]


def child(argv: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """Run ``argv``; its stdout, its wall time and its peak RSS in MB (a fresh process each, so
    the figure is its own)."""
    code = (
        "import resource, subprocess, sys; "
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stderr.write(done.stderr[-2000:]); print(done.stdout); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "sys.exit(done.returncode)"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{argv[:3]} failed: {done.stderr[-2000:]}")
    *output, rss_kb = done.stdout.strip().splitlines()
    return "\n".join(output), wall, int(rss_kb) / 1024


def time_candles(farm: Farm, tokens: list[str], reads: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    day = (START, START + timedelta(days=1))
    for token in tokens[:20]:  # warm up: connection, caches
        farm.candles(token, "1m", *day)
    samples = []
    for _ in range(reads):
        token = rng.choice(tokens)
        started = time.perf_counter()
        got = farm.candles(token, "1m", *day)
        samples.append((time.perf_counter() - started) * 1000)
        assert got.height == MINUTES, got.height
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
    }


def measure(dsn: str, args: argparse.Namespace, tokens: list[str], work: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env.update(POLYFARM_DATABASE_URL=dsn, POLYFARM_LAKE__URL=str(work / "lake"))
    export = [POLYFARM, "lake", "export", "--table", "price_snapshots"]
    result: dict[str, Any] = {}
    with Farm(dsn) as farm:
        # The day as it is while it is today (written a minute at a time).
        result["candles_db_today_ms"] = time_candles(farm, tokens, args.reads, args.seed)
    _, unsealed_s, _ = child([*export, "--lake", str(work / "unsealed")], env)
    # Then as maintenance leaves it an hour after its end (rewritten in token order, plain
    # PostgreSQL), an hour before the export's schedule (lake.seal_after_hours) reaches it.
    sealed, result["seal_s"], result["vacuum_s"] = asyncio.run(seal_the_day(dsn))
    result["day_sealed"] = bool(sealed)
    exported, export_s, export_rss = child(export, env)
    empty_day = (START - timedelta(days=1)).date().isoformat()
    empty = [*export, "--lake", str(work / "e"), "--from", empty_day, "--to", empty_day]
    _, fixed_s, _ = child(empty, env)
    baseline, _, pandas_rss = child(
        [sys.executable, "-c", _PANDAS, dsn, str(work / "pandas.parquet")], env
    )
    pandas_rows, pandas_s = baseline.split()
    lake = open_lake(str(work / "lake"))
    where = manifest_file("price_snapshots", START.date())
    data = lake.read(where)
    assert data is not None, exported
    entry = decode_entry(data, where)
    result |= {
        "rows": entry.rows,
        "export_rows_per_s": round(entry.rows / export_s),
        "export_wall_s": round(export_s, 1),
        "export_fixed_s": round(fixed_s, 2),
        "export_rows_per_s_after_fixed": round(entry.rows / max(export_s - fixed_s, 1e-9)),
        "export_unsealed_rows_per_s": round(entry.rows / unsealed_s),
        "export_peak_rss_mb": round(export_rss, 1),
        "pandas_rows_per_s": round(int(pandas_rows) / float(pandas_s)),
        "pandas_peak_rss_mb": round(pandas_rss, 1),
        "lake_bytes_per_row": round(entry.bytes / entry.rows, 2),
        "pandas_bytes_per_row": round((work / "pandas.parquet").stat().st_size / entry.rows, 2),
    }
    result["speedup"] = round(result["export_rows_per_s"] / result["pandas_rows_per_s"], 1)
    with Farm(dsn) as farm:
        result["candles_db_ms"] = time_candles(farm, tokens, args.reads, args.seed)
        featured = tokens[: max(1, args.feature_rows // MINUTES)]
        started = time.perf_counter()
        training = farm.training_set(
            featured, START, START + timedelta(days=1), label="price",
            horizon=timedelta(minutes=5), as_of=START + timedelta(days=2),
        )  # fmt: skip
        result["training_s"] = round(time.perf_counter() - started, 2)
        result["training_rows"] = training.height
    with Farm(None, lake) as farm:
        result["candles_lake_ms"] = time_candles(farm, tokens, args.reads, args.seed)
    return result


async def seal_the_day(dsn: str) -> tuple[list[str], float, float]:
    """What maintenance does to the day after its end, and what autovacuum then does within a
    minute or two, well before the export an hour later.

    Plain PostgreSQL: the day is rewritten in the lake's order an hour after its end; the
    sealed copy's 10 million new rows pass autovacuum's insert threshold, and its vacuum sets
    the rows' hint bits and the visibility map. Done here rather than left to autovacuum,
    which would otherwise run beside the measurements below (or leave setting the hint bits,
    a write of every page, to the export's first read).

    TimescaleDB: the compression policy compresses the day's chunks (merged into one, as
    ``chunks.compressed_hours`` has it), and autovacuum analyzes them."""
    conn = await asyncpg.connect(dsn)
    try:
        if await timescaledb_version(conn) is not None:
            return await compress_the_day(conn)
        started = time.perf_counter()
        report = await seal_finished_days(conn, START + timedelta(days=1) + SEAL_AFTER)
        sealed_s = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        for name in report.sealed:
            await conn.execute(f"VACUUM {name}")
        return report.sealed, sealed_s, round(time.perf_counter() - started, 1)
    finally:
        await conn.close()


async def compress_the_day(conn: asyncpg.Connection) -> tuple[list[str], float, float]:
    started = time.perf_counter()
    chunks = await conn.fetch(
        "SELECT compress_chunk(c, if_not_compressed => true)::text AS name "
        "FROM show_chunks('price_points', older_than => $1::timestamptz) c",
        START + timedelta(days=1),
    )
    compressed_s = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    await conn.execute("ANALYZE price_points")
    return (
        sorted({row["name"] for row in chunks}),
        compressed_s,
        round(time.perf_counter() - started, 1),
    )


async def prepare(admin_dsn: str, args: argparse.Namespace) -> tuple[str, list[str]]:
    dsn = await fresh_database(admin_dsn, "export", now=START)
    conn = await asyncpg.connect(dsn)
    try:
        if await timescaledb_version(conn) is not None:
            await apply_chunkings(conn, ChunkSettings())  # the daemon's, set at its start
    finally:
        await conn.close()
    return dsn, await load(dsn, args.rows, args.feature_rows, args.seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--feature-rows", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--dsn", help="a server to make the database on (default: embedded)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    with (
        admin_server(args.dsn, "export") as (admin_dsn, _),
        tempfile.TemporaryDirectory(prefix="polyfarm-export-") as work,
    ):
        started = time.perf_counter()
        dsn, tokens = asyncio.run(prepare(admin_dsn, args))
        loaded = time.perf_counter() - started
        try:
            result = measure(dsn, args, tokens, Path(work))
        finally:
            asyncio.run(drop_database(admin_dsn, dsn))
    result["load_s"] = round(loaded, 1)
    print(
        f"export {result['rows']:,} rows: {result['export_rows_per_s']:,} rows/s "
        f"(pandas {result['pandas_rows_per_s']:,}: {result['speedup']}x), peak RSS "
        f"{result['export_peak_rss_mb']} MB (pandas {result['pandas_peak_rss_mb']}); lake "
        f"{result['lake_bytes_per_row']} B/row; candles p50/p99 database "
        f"{result['candles_db_ms']} (today {result['candles_db_today_ms']}), lake "
        f"{result['candles_lake_ms']} ms; training set "
        f"{result['training_rows']:,} rows in {result['training_s']} s"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
