"""Disk and memory footprint of the daemon at venue scale, on either flavour.

Starts ``polyfarm sim`` (its own process) with ``--markets`` markets in the ``--sim-mix`` mix
(default ``venue``: the venue's tier shares and heavy-tailed activity, a model; ``uniform``: the
simulator's original even spread, as measured before 2026-12) and ``polyfarm collect``
with default settings (but no first-start backfill) against it, into a fresh database: the
embedded PostgreSQL, or a new database on the server ``--database-url`` names (TimescaleDB or
not: whatever it has). After ``--warmup-minutes`` (the first metadata scan and the first cycles)
it measures every table for
``--minutes``: rows per minute, bytes per row on disk (heap, indexes and TOAST of every
partition or chunk), GB per day, and, on TimescaleDB, bytes per row once every chunk is
compressed (the daemon is stopped first, so all chunks are closed). The daemon's RSS is sampled
every second for the whole run.

Compressed figures from a short run say little: TimescaleDB compresses each token's rows of a
chunk in batches of up to 1,000, and a ten-minute run gives a few rows a batch (features came
to 2,970 B/row that way). The run reports the rows per batch it got (``rows_per_batch``) and
marks its compressed figures ``compressed_representative: false`` below full batches; for
production-sized batches use ``bench/compression.py``.

From those rates and the default retention settings it works out the steady-state disk a
flavour needs and how many days a disk of ``--disk-gb`` lasts.

    python bench/footprint.py --markets 20000 --minutes 10 [--sim-mix venue|uniform]
        [--database-url URL] [--json]

With ``--json`` the last line is one JSON object holding ``gb_per_day_total``, ``gb_per_day``
and ``bytes_per_row`` (per table), ``rss_mb_peak`` and ``rss_growth_pct`` (second half of the
run), beside the figures above.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import psutil

from polyfarm.settings import Settings
from polyfarm.store.database import create_pool, migrate_database
from polyfarm.store.embedded import EmbeddedPostgres
from polyfarm.store.maintenance import AGGREGATE_VIEWS
from polyfarm.store.rows import TIME_SERIES_TABLES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim_process import POLYFARM, start_sim

GB = 1e9
# The time series, and what the default retention keeps of each (days; None = forever). Each is
# measured by the table that holds its rows (a view of the public name reads it, from migration
# 0011 on): STORAGE.
TIME_SERIES = ("price_snapshots", "orderbook_snapshots", "market_features", "book_deltas", "trades")
STORAGE = {spec.name: spec.storage.table for spec in TIME_SERIES_TABLES}
OTHER_TABLES = (
    "token_keys", "whale_events", "feed_gaps", "markets", "tokens", "events", "task_runs",
)  # fmt: skip
# The aggregates that hold rows (1-minute candles are a view over the raw rows).
AGGREGATES = AGGREGATE_VIEWS


def retention_days(settings: Settings) -> dict[str, float | None]:
    keep = settings.retention
    return {
        "price_snapshots": keep.raw_days,
        "orderbook_snapshots": keep.orderbook_days,
        "market_features": keep.raw_days,
        "book_deltas": keep.book_deltas_days,
        "trades": keep.raw_days,
    }


@dataclass
class TableSample:
    rows: int
    bytes: int


@dataclass
class Measurement:
    minutes: float
    start: dict[str, TableSample]
    end: dict[str, TableSample]
    compressed_bytes: dict[str, int] = field(default_factory=dict)
    rows_per_batch: dict[str, float] = field(default_factory=dict)
    aggregate_bytes: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    messages_per_min: dict[str, float] = field(default_factory=dict)
    flavor: str = "plain"


# -- the database -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database(server_url: str | None, keep: bool) -> AsyncIterator[str]:
    """A new, empty database: on the embedded server, or on the server ``server_url`` names."""
    if server_url is None:
        data_dir = Path(tempfile.mkdtemp(prefix="polyfarm-footprint-"))
        server = EmbeddedPostgres(data_dir)
        server.start()
        try:
            yield server.dsn()
        finally:
            server.stop()
            if not keep:
                shutil.rmtree(data_dir, ignore_errors=True)
        return
    name = f"footprint_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        if not keep:
            admin = await asyncpg.connect(server_url)
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.close()


async def relation_bytes(conn: asyncpg.Connection, name: str) -> int:
    """Heap + indexes + TOAST of the table that holds ``name``'s rows, summed over partitions
    (plain) or chunks (TimescaleDB)."""
    table = STORAGE.get(name, name)
    if await is_hypertable(conn, table):
        return int(await conn.fetchval("SELECT hypertable_size($1::regclass)", table) or 0)
    # pg_partition_tree lists nothing for a table that is not partitioned.
    total = await conn.fetchval(
        "SELECT CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_total_relation_size("
        "t.relid)), 0) FROM pg_partition_tree(c.oid) t WHERE t.isleaf) "
        "ELSE pg_total_relation_size(c.oid) END FROM pg_class c WHERE c.oid = $1::regclass",
        table,
    )
    return int(total or 0)


async def is_hypertable(conn: asyncpg.Connection, table: str) -> bool:
    has_timescale = await conn.fetchval(
        "SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL"
    )
    if not has_timescale:
        return False
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = $1)",
            table,
        )
    )


async def sample_tables(conn: asyncpg.Connection) -> dict[str, TableSample]:
    samples = {}
    for table in (*TIME_SERIES, *OTHER_TABLES):
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            rows = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - constant
            samples[table] = TableSample(int(rows), await relation_bytes(conn, table))
    return samples


async def aggregate_sizes(conn: asyncpg.Connection) -> dict[str, int]:
    """Every candle view's own storage (materialised rows), once brought up to date."""
    sizes = {}
    for view in AGGREGATES:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", view):
            continue
        if await conn.fetchval(
            "SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL"
        ):
            await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
            hypertable = await conn.fetchval(
                "SELECT format('%I.%I', materialization_hypertable_schema, "
                "materialization_hypertable_name) "
                "FROM timescaledb_information.continuous_aggregates WHERE view_name = $1",
                view,
            )
            sizes[view] = int(
                await conn.fetchval("SELECT hypertable_size($1::regclass)", hypertable) or 0
            )
        else:
            await conn.execute(f"REFRESH MATERIALIZED VIEW {view}")
            sizes[view] = int(
                await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", view)
            )
    return sizes


FULL_BATCH_ROWS = 1000  # TimescaleDB's largest compressed batch


async def rows_per_batch(conn: asyncpg.Connection) -> dict[str, float]:
    """TimescaleDB only: the rows a compressed batch of each table will hold, one batch being a
    token's rows of one chunk (at most ``FULL_BATCH_ROWS``)."""
    result = {}
    for name in TIME_SERIES:
        table = STORAGE[name]
        if not await is_hypertable(conn, table):
            continue
        rows, segments = await conn.fetchrow(
            f"SELECT count(*), count(DISTINCT (token_sid, tableoid)) FROM {table}"  # noqa: S608
        )
        result[name] = round(min(rows / segments, FULL_BATCH_ROWS), 1) if segments else 0.0
    return result


async def compress_everything(conn: asyncpg.Connection) -> dict[str, int]:
    """TimescaleDB only: compress every chunk, then each hypertable's size."""
    sizes = {}
    for name in TIME_SERIES:
        if not await is_hypertable(conn, STORAGE[name]):
            continue
        await conn.execute(
            "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks($1::regclass) c",
            STORAGE[name],
        )
        sizes[name] = await relation_bytes(conn, name)
    return sizes


async def open_tiers(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT coalesce('T' || tier, 'none') AS tier, count(*) AS n FROM markets "
        "WHERE NOT closed GROUP BY 1 ORDER BY 1"
    )
    return {row["tier"]: int(row["n"]) for row in rows}


# -- the daemon ---------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def scrape_messages(port: int) -> dict[str, float]:
    """``polyfarm_ws_messages_total`` per message type, from the daemon's /metrics."""
    pattern = re.compile(r'^polyfarm_ws_messages_total\{type="([^"]+)"\} ([0-9.e+]+)$', re.M)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=10)
            ) as response,
        ):
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return {}
    return {kind: float(value) for kind, value in pattern.findall(text)}


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, float]] = []

    async def run(self, stop: asyncio.Event) -> None:
        started = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(psutil.Error):
                rss = self.process.memory_info().rss / 2**20
                self.samples.append((time.monotonic() - started, rss))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    def peak(self) -> float:
        return max((rss for _, rss in self.samples), default=0.0)

    def growth_pct(self, window: int = 30) -> float:
        """Second half of the run: median RSS near its end against the median near its
        start (``window`` samples each), in per cent."""
        if len(self.samples) < 4 * window:
            window = max(1, len(self.samples) // 4)
        middle = len(self.samples) // 2
        first = statistics.median(rss for _, rss in self.samples[middle : middle + window])
        last = statistics.median(rss for _, rss in self.samples[-window:])
        return 100.0 * (last - first) / first if first else 0.0


def daemon_env(urls: dict[str, str], dsn: str, data_dir: Path, metrics_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env.update(urls)
    env |= {
        "POLYFARM_DATABASE_URL": dsn,
        "POLYFARM_DATA_DIR": str(data_dir),
        "POLYFARM_METRICS_PORT": str(metrics_port),
        "POLYFARM_LOG_LEVEL": "WARNING",
        # Collection alone: a new database would otherwise get the open markets' last week
        # backfilled in the background, a one-time job whose rows and memory are not the farm's
        # steady state.
        "POLYFARM_BACKFILL__FIRST_START": "false",
    }
    return env


def daemon_command(args: argparse.Namespace, work: Path) -> list[str]:
    if not args.census_minutes:
        return [POLYFARM, "collect"]
    census = Path(args.census_file or work / "census.jsonl").resolve()
    print(f"memory census every {args.census_minutes} min: {census}", file=sys.stderr)
    wrapper = Path(__file__).resolve().parent / "census_daemon.py"
    return [sys.executable, str(wrapper), str(census), str(args.census_minutes), "collect"]


async def measure(
    args: argparse.Namespace, dsn: str, urls: dict[str, str]
) -> tuple[Measurement, RssSampler]:
    settings = Settings(database_url=dsn)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    await migrate_database(pool, settings)
    work = Path(tempfile.mkdtemp(prefix="polyfarm-footprint-daemon-"))
    port = free_port()
    log_file = (work / "daemon.log").open("wb")
    daemon = await asyncio.create_subprocess_exec(
        *daemon_command(args, work), env=daemon_env(urls, dsn, work, port),
        stdout=asyncio.subprocess.DEVNULL, stderr=log_file,
    )  # fmt: skip
    sampler = RssSampler(daemon.pid)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    try:
        await asyncio.sleep(args.warmup_minutes * 60)
        async with pool.acquire() as conn:
            start, messages_start = await sample_tables(conn), await scrape_messages(port)
        began = time.monotonic()
        await asyncio.sleep(args.minutes * 60)
        async with pool.acquire() as conn:
            end, messages_end = await sample_tables(conn), await scrape_messages(port)
            tiers = await open_tiers(conn)
        minutes = (time.monotonic() - began) / 60
        if daemon.returncode is not None:
            raise RuntimeError(f"the daemon exited early ({daemon.returncode}); see {work}")
    finally:
        stop.set()
        await sampling
        if daemon.returncode is None:
            daemon.send_signal(signal.SIGTERM)
            await asyncio.wait_for(daemon.wait(), 120)
        log_file.close()
    result = Measurement(minutes, start, end, tiers=tiers)
    result.messages_per_min = {
        kind: round((total - messages_start.get(kind, 0.0)) / minutes, 1)
        for kind, total in messages_end.items()
    }
    async with pool.acquire() as conn:
        result.aggregate_bytes = await aggregate_sizes(conn)
        result.rows_per_batch = await rows_per_batch(conn)
        result.compressed_bytes = await compress_everything(conn)
        result.flavor = "timescaledb" if result.compressed_bytes else "plain"
    await pool.close()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result, sampler


# -- figures ------------------------------------------------------------------------------------


def figures(m: Measurement, sampler: RssSampler, args: argparse.Namespace) -> dict[str, object]:
    rows_per_min, bytes_per_row, gb_per_day, compressed_bpr, compressed_gb = {}, {}, {}, {}, {}
    for table, end in m.end.items():
        start = m.start.get(table, TableSample(0, 0))
        rate = (end.rows - start.rows) / m.minutes
        rows_per_min[table] = round(rate, 1)
        bytes_per_row[table] = round(end.bytes / end.rows, 1) if end.rows else None
        gb_per_day[table] = round(rate * 1440 * (end.bytes / end.rows) / GB, 3) if end.rows else 0.0
        if table in m.compressed_bytes and end.rows:
            compressed_bpr[table] = round(m.compressed_bytes[table] / end.rows, 1)
            compressed_gb[table] = round(rate * 1440 * compressed_bpr[table] / GB, 3)
    result: dict[str, object] = {
        "flavor": m.flavor,
        "markets": args.markets,
        "sim_mix": args.sim_mix,
        "minutes": round(m.minutes, 2),
        "rows_per_min": rows_per_min,
        "bytes_per_row": bytes_per_row,
        "gb_per_day": gb_per_day,
        "gb_per_day_total": round(sum(gb_per_day.values()), 2),
        "aggregate_mb": {k: round(v / 2**20, 1) for k, v in m.aggregate_bytes.items()},
        "rss_mb_peak": round(sampler.peak(), 1),
        "rss_growth_pct": round(sampler.growth_pct(), 2),
        "open_markets_by_tier": m.tiers,
        "ws_messages_per_min": m.messages_per_min,
        "disk_gb": args.disk_gb,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if compressed_bpr:
        result["compressed_bytes_per_row"] = compressed_bpr
        result["compressed_gb_per_day"] = compressed_gb
        result["compressed_gb_per_day_total"] = round(sum(compressed_gb.values()), 2)
        result["rows_per_batch"] = m.rows_per_batch
        result["compressed_representative"] = all(
            rows >= FULL_BATCH_ROWS for rows in m.rows_per_batch.values()
        )
    result["days_until_full"] = days_until_full(result, args.disk_gb)
    return result


def days_until_full(result: dict[str, object], disk_gb: float) -> float | None:
    """Days until ``disk_gb`` is full at these rates and the default retention, or None when
    the steady state fits. Compressed rates apply after ``compress_after_hours`` (TimescaleDB)."""
    settings = Settings()
    keep = retention_days(settings)
    raw = result["gb_per_day"]
    compressed = result.get("compressed_gb_per_day", {})
    assert isinstance(raw, dict)
    assert isinstance(compressed, dict)
    compress_after = settings.retention.compress_after() / timedelta(days=1)

    def used(day: float) -> float:
        total = 0.0
        for table, rate in raw.items():
            kept = keep.get(table)
            span = day if kept is None else min(day, kept)
            if table in compressed:
                hot = min(span, compress_after)
                total += rate * hot + compressed[table] * (span - hot)
            else:
                total += rate * span
        return total

    day = 0.0
    while day < 3650:
        day += 0.25
        if used(day) >= disk_gb:
            return round(day, 2)
    return None


def print_table(result: dict[str, object]) -> None:
    print(
        f"{result['flavor']}: {result['markets']:,} markets ({result['sim_mix']} mix), "
        f"measured over {result['minutes']} min; open markets by tier "
        f"{result['open_markets_by_tier']}"
    )
    compressed = result.get("compressed_bytes_per_row", {})
    assert isinstance(compressed, dict)
    header = f"{'table':<22}{'rows/min':>12}{'bytes/row':>11}{'GB/day':>9}"
    print(header + (f"{'compr. B/row':>14}" if compressed else ""))
    for table, rate in result["rows_per_min"].items():  # type: ignore[attr-defined]
        bpr = result["bytes_per_row"][table]  # type: ignore[index]
        line = f"{table:<22}{rate:>12,.0f}{(bpr or 0):>11,.0f}{result['gb_per_day'][table]:>9.2f}"  # type: ignore[index]
        if compressed:
            line += f"{compressed.get(table, ''):>14}"
        print(line)
    print(f"{'all':<22}{'':>12}{'':>11}{result['gb_per_day_total']:>9.2f}")
    if compressed:
        print(f"compressed, all time series: {result['compressed_gb_per_day_total']} GB/day")
        if not result["compressed_representative"]:
            print(
                f"  not representative: compressed batches of {result['rows_per_batch']} rows, "
                f"production batches hold {FULL_BATCH_ROWS}; see bench/compression.py"
            )
    print(f"aggregates (MB): {result['aggregate_mb']}")
    print(f"WebSocket messages/min: {result['ws_messages_per_min']}")
    full = result["days_until_full"]
    print(
        f"a {result['disk_gb']} GB disk at the default retention: "
        + ("never fills" if full is None else f"full after {full} days")
    )
    peak, growth = result["rss_mb_peak"], result["rss_growth_pct"]
    print(f"daemon RSS: peak {peak} MB, second-half growth {growth} %")


async def run(args: argparse.Namespace) -> dict[str, object]:
    async with fresh_database(args.database_url, args.keep) as dsn:
        sim, urls = await start_sim(
            args.markets, seed=args.seed, speed=args.speed, mix=args.sim_mix
        )
        try:
            measurement, sampler = await measure(args, dsn, urls)
        finally:
            sim.send_signal(signal.SIGTERM)
            await asyncio.wait_for(sim.wait(), 60)
    return figures(measurement, sampler, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=20_000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup-minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--speed", type=float, default=None, help="simulator clock speed")
    parser.add_argument(
        "--sim-mix",
        choices=("venue", "uniform"),
        default="venue",
        help="the simulator's market mix (polyfarm sim --mix)",
    )
    parser.add_argument(
        "--database-url",
        help="a server to create the database on (e.g. TimescaleDB); default: embedded",
    )
    parser.add_argument("--disk-gb", type=float, default=2000.0)
    parser.add_argument("--keep", action="store_true", help="keep the database and logs")
    parser.add_argument(
        "--census-minutes",
        type=float,
        default=0.0,
        help="write a memory census of the daemon this often (bench/census_daemon.py)",
    )
    parser.add_argument("--census-file", help="where the census goes (default: the run's dir)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print_table(result)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
