"""Ingest benchmark: price-snapshot rows per second through three write paths.

1. polyfarm's BulkWriter (validation + binary COPY in index order, idempotent), in batches of
   ``--batch`` rows over two connections;
2. asyncpg ``executemany`` of a parameterised INSERT, the usual hand-written baseline (into the
   table that holds the rows: the token's sid looked up in ``token_keys``, prices encoded by the
   server);
3. a per-row SQLAlchemy ORM insert as in seed 004: synchronous SQLAlchemy on psycopg2, one
   mapped object per row with a surrogate id, ``session.add_all`` + commit per batch.

Each path writes into a fresh, fully migrated database (the production table and indexes), on
the embedded PostgreSQL unless ``--dsn`` names another server; every timer ends after the last
commit. The timers measure what a running collector sustains: the 40,000 tokens are in the key
registry (``token_keys``) before the first row, as they are after a token's first write; the
writer's registration of them is timed apart (``token_registration_s``, and
``writer_with_registration_rows_per_s`` with it in the writer's time). ``--baseline-rows N``
measures the two baselines on the first N rows only (a smaller table is cheaper to insert into,
so that favours the baselines); the output then says so. Ratios are rows/s over rows/s of the
same run. ``--runs N`` repeats everything N times and reports each run with the load average at
its start, then the median. Prints a table; with ``--json`` the last line is one JSON object.

``--history-rows N`` starts the writer and executemany from a table that already holds N rows
of the day before (every token once a minute, inserted in SQL before the timer, then vacuumed
and checkpointed), as a running collector's table does; by default the table is empty. On plain
PostgreSQL since migration 0015 those rows are in the day before's partition, and the timed rows
go to a partition of their own. The script runs against an older checkout too (``PYTHONPATH`` at
its ``src``), which is how "before" is measured with the same script.

    python bench/ingest.py --rows 1000000 [--baseline-rows 200000] [--history-rows 20000000]
        [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import BigInteger, DateTime, Float, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from polyfarm.store.database import create_pool
from polyfarm.store.keys import TokenKeys
from polyfarm.store.rows import PRICE_SNAPSHOTS, PriceSnapshotRow
from polyfarm.store.writer import BulkWriter
from scratch_db import admin_server, drop_database, fresh_database

START = datetime(2026, 3, 1, tzinfo=UTC)


def make_rows(count: int, tokens: int = 40_000, seed: int = 1) -> list[PriceSnapshotRow]:
    """``count`` rows shaped like real cycles: every token once per minute, prices on ticks."""
    rng = random.Random(seed)
    token_ids = [str(10**76 + rng.randrange(10**76)) for _ in range(tokens)]
    rows = []
    for i in range(count):
        cycle, slot = divmod(i, tokens)
        price = round(rng.uniform(0.02, 0.98), 3)
        rows.append(
            PriceSnapshotRow(
                START + timedelta(minutes=cycle),
                token_ids[slot],
                str(500_000 + slot // 2),
                price,
                round(price - 0.005, 3),
                round(price + 0.005, 3),
                0.01,
                price,
                rng.uniform(0, 1e5),
                rng.uniform(0, 1e6),
            )
        )
    return rows


def batches(rows: list[PriceSnapshotRow], size: int) -> list[list[PriceSnapshotRow]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


# Seconds the writer spent registering tokens the last time it ran (outside its timer).
REGISTRATION: dict[str, float] = {}


async def via_writer(dsn: str, rows: list[PriceSnapshotRow], batch: int) -> float:
    """The writer as a running collector sees it: every token already has its sid (a token is
    registered once, at its first write; that is timed apart, in REGISTRATION)."""
    pool = await create_pool(dsn, min_size=1, max_size=2)
    keys = TokenKeys()
    started = time.perf_counter()
    await keys.resolve(pool, rows)
    REGISTRATION["writer"] = time.perf_counter() - started
    writer = BulkWriter(pool, clock=lambda: START + timedelta(days=365), keys=keys)
    started = time.perf_counter()
    for chunk in batches(rows, batch):
        result = await writer.write(PRICE_SNAPSHOTS, chunk)
        assert result.inserted == len(chunk), result
    elapsed = time.perf_counter() - started
    await pool.close()
    return elapsed


EXECUTEMANY_REGISTER = (
    "INSERT INTO token_keys (token_id, market_id) SELECT DISTINCT ON (t) t, m "
    "FROM unnest($1::text[], $2::text[]) AS u(t, m) ON CONFLICT DO NOTHING"
)
# The spread is not stored (the view computes it from the bid and ask), the market id is the
# registry's.
EXECUTEMANY_INSERT = (
    "INSERT INTO price_points (token_sid, ts, price, best_bid, best_ask, last_trade_price, "
    "volume_24h, liquidity) VALUES ((SELECT token_sid FROM token_keys WHERE token_id = $1), "
    "$2, to_micros($3), to_micros($4), to_micros($5), to_micros($6), $7, $8)"
)


async def via_executemany(dsn: str, rows: list[PriceSnapshotRow], batch: int) -> float:
    """Tokens registered before the timer, as for the writer."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        EXECUTEMANY_REGISTER, [row.token_id for row in rows], [row.market_id for row in rows]
    )
    started = time.perf_counter()
    for chunk in batches(rows, batch):
        async with conn.transaction():
            await conn.executemany(
                EXECUTEMANY_INSERT,
                [(r.token_id, r.ts, r.price, r.best_bid, r.best_ask, r.last_trade_price,
                  r.volume_24h, r.liquidity) for r in chunk],
            )  # fmt: skip
    elapsed = time.perf_counter() - started
    await conn.close()
    return elapsed


class OrmBase(DeclarativeBase):
    pass


class OrmSnapshot(OrmBase):
    """Seed 004's shape: a surrogate BigInteger id the ORM reads back for every row."""

    __tablename__ = "orm_price_snapshots"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    token_id: Mapped[str] = mapped_column(String, index=True)
    market_id: Mapped[str] = mapped_column(String)
    price: Mapped[float | None] = mapped_column(Float)
    best_bid: Mapped[float | None] = mapped_column(Float)
    best_ask: Mapped[float | None] = mapped_column(Float)
    spread: Mapped[float | None] = mapped_column(Float)
    last_trade_price: Mapped[float | None] = mapped_column(Float)
    volume_24h: Mapped[float | None] = mapped_column(Float)
    liquidity: Mapped[float | None] = mapped_column(Float)


def sqlalchemy_url(dsn: str) -> str:
    """Seed 004's engine: synchronous SQLAlchemy on psycopg2 (``postgresql://`` default)."""
    parts = urlsplit(dsn.replace("postgresql://", "postgresql+psycopg2://", 1))
    return urlunsplit(parts)


def orm_insert(dsn: str, rows: list[PriceSnapshotRow], batch: int) -> float:
    engine = create_engine(sqlalchemy_url(dsn))
    OrmBase.metadata.create_all(engine)
    sessions = sessionmaker(bind=engine, autocommit=False, autoflush=False)
    started = time.perf_counter()
    for chunk in batches(rows, batch):
        with sessions() as session:  # seed 004: get_session(); add_all(snapshots); commit()
            session.add_all(OrmSnapshot(**row._asdict()) for row in chunk)
            session.commit()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


async def via_orm(dsn: str, rows: list[PriceSnapshotRow], batch: int) -> float:
    return await asyncio.to_thread(orm_insert, dsn, rows, batch)


class CpuMeter:
    """CPU used by other work while a path runs: the machine's busy time (``/proc/stat``) minus
    this process's and the embedded server's (its processes, and those it has reaped). None
    when the server is not ours or ``/proc`` is missing."""

    def __init__(self, postmaster: int | None) -> None:
        self._postmaster = postmaster
        self._tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> tuple[float, float] | None:
        if self._postmaster is None or not Path("/proc/stat").exists():
            return None
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:9]]
        busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
        ours = sum(os.times()[:2]) * self._tick + self._ticks(self._postmaster, reaped=True)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self._parent(entry) == self._postmaster:
                ours += self._ticks(int(entry.name))
        return busy / self._tick, ours / self._tick

    def others(self, before: tuple[float, float] | None, elapsed: float) -> float | None:
        after = self.sample()
        if before is None or after is None:
            return None
        return max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / elapsed

    @staticmethod
    def _fields(pid: int | str) -> list[str]:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return []

    def _parent(self, entry: Path) -> int | None:
        fields = self._fields(entry.name)
        return int(fields[1]) if fields else None

    def _ticks(self, pid: int, reaped: bool = False) -> int:
        fields = self._fields(pid)
        if not fields:
            return 0
        return sum(int(v) for v in fields[11 : 15 if reaped else 13])  # utime stime [cu cs]


HISTORY_TOKENS = 40_000
# The day before, as the writer leaves it: every token once a minute, each minute in index order.
HISTORY = """
INSERT INTO price_points (ts, token_sid, price, best_bid, best_ask, last_trade_price,
                          volume_24h, liquidity)
SELECT $1::timestamptz + m * INTERVAL '1 minute', k.token_sid, 500000, 495000, 505000, 500000,
       1.5, 2.5
FROM generate_series(0, $2 - 1) AS m, token_keys AS k
ORDER BY m, k.token_sid
"""


async def add_history(dsn: str, rows: list[PriceSnapshotRow], count: int) -> None:
    """``count`` rows of the day before for the benchmark's tokens (registered here)."""
    tokens = rows[:HISTORY_TOKENS]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            EXECUTEMANY_REGISTER,
            [row.token_id for row in tokens],
            [row.market_id for row in tokens],
        )
        minutes = -(-count // len(tokens))
        await conn.execute(HISTORY, START - timedelta(days=1), minutes, timeout=None)
        await conn.execute("VACUUM ANALYZE price_points", timeout=None)
        await conn.execute("CHECKPOINT", timeout=None)
    finally:
        await conn.close()


async def measure(
    admin_dsn: str,
    name: str,
    path: Callable[[str, list[PriceSnapshotRow], int], Awaitable[float]],
    rows: list[PriceSnapshotRow],
    batch: int,
    meter: CpuMeter,
    table: str = "price_snapshots",
    history: int = 0,
) -> tuple[float, float | None]:
    """Rows/s of one path, and how many CPUs other work kept busy meanwhile."""
    dsn = await fresh_database(admin_dsn, "bench", START - timedelta(days=1))
    try:
        if history:
            await add_history(dsn, rows, history)
        before = meter.sample()
        elapsed = await path(dsn, rows, batch)
        others = meter.others(before, elapsed)
        conn = await asyncpg.connect(dsn)
        stored = await conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE ts >= $1",  # noqa: S608
            START,
        )
        await conn.close()
        assert stored == len(rows), f"{name}: stored {stored} of {len(rows)}"
    finally:
        await drop_database(admin_dsn, dsn)
    rate = len(rows) / elapsed
    print(f"  {name:<12} {len(rows):>10,} rows in {elapsed:7.2f} s", file=sys.stderr)
    return rate, None if others is None else round(others, 2)


def reference_seconds() -> float:
    """A fixed single-core task (sorting and summing 500,000 floats). The VM's speed drifts
    with its host's load, which no in-guest counter shows; this makes the drift visible."""
    values = [(i * 7919 % 500_000) / 500_000 for i in range(500_000)]
    started = time.perf_counter()
    sum(sorted(values))
    sum(sorted(values, reverse=True))
    return time.perf_counter() - started


async def run_once(
    args: argparse.Namespace, admin_dsn: str, rows: list[PriceSnapshotRow], meter: CpuMeter
) -> dict[str, float | None]:
    baseline = rows[: args.baseline_rows or args.rows]
    load = os.getloadavg()[0]
    reference = reference_seconds()
    history = args.history_rows
    writer, writer_others = await measure(
        admin_dsn, "writer", via_writer, rows, args.batch, meter, history=history
    )
    registration = REGISTRATION["writer"]
    many, many_others = await measure(
        admin_dsn, "executemany", via_executemany, baseline, args.batch, meter, history=history
    )
    orm, orm_others = await measure(
        admin_dsn, "orm", via_orm, baseline, args.batch, meter, table="orm_price_snapshots"
    )
    return {
        "load_1min": round(load, 2),
        "reference_s": round(reference, 3),
        "other_cpus_writer": writer_others,
        "other_cpus_executemany": many_others,
        "other_cpus_orm": orm_others,
        "writer_rows_per_s": round(writer),
        "token_registration_s": round(registration, 3),
        "writer_with_registration_rows_per_s": round(
            len(rows) / (len(rows) / writer + registration)
        ),
        "executemany_rows_per_s": round(many),
        "orm_rows_per_s": round(orm),
        "writer_vs_executemany": round(writer / many, 1),
        "writer_vs_orm": round(writer / orm, 1),
    }


async def warm_up(args: argparse.Namespace, admin_dsn: str, rows: list[PriceSnapshotRow]) -> float:
    """One untimed writer pass, so that every measured path finds the server as a long-running
    one is: WAL segments to recycle rather than create and zero-fill, shared memory already
    mapped. Without it the first path of the first run pays for that alone (BENCHMARKS.md)."""
    rate, _ = await measure(admin_dsn, "warm-up", via_writer, rows, args.batch, CpuMeter(None))
    return rate


async def run(args: argparse.Namespace, admin_dsn: str, postmaster: int | None) -> dict[str, Any]:
    rows = make_rows(args.rows)  # once: every pass and run inserts the same rows
    warm_up_rate = await warm_up(args, admin_dsn, rows) if args.warm_up else None
    runs = []
    for number in range(args.runs):
        print(f"run {number + 1} of {args.runs}", file=sys.stderr)
        runs.append(await run_once(args, admin_dsn, rows, CpuMeter(postmaster)))
    median = {
        key: statistics.median(values)
        for key in runs[0]
        if (values := [v for run in runs if (v := run[key]) is not None])
    }
    return {
        "rows": args.rows,
        "history_rows": args.history_rows,
        "baseline_rows": min(args.baseline_rows or args.rows, args.rows),
        "batch": args.batch,
        "cpus": os.cpu_count(),
        "warm_up_rows_per_s": None if warm_up_rate is None else round(warm_up_rate),
        "runs": runs,
        **median,
    }


def print_table(result: dict[str, Any]) -> None:
    baseline = f"{result['baseline_rows']:,} rows"
    if result["baseline_rows"] < result["rows"]:
        baseline += " (fewer: favours the baselines)"
    labels = (
        (f"writer, {result['rows']:,} rows", "writer"),
        (f"executemany, {baseline}", "executemany"),
        (f"orm, {baseline}", "orm"),
    )
    if result["history_rows"]:
        print(f"price_points holds {result['history_rows']:,} rows of the day before (writer, "
              "executemany; the ORM writes a table of its own)")  # fmt: skip
    if result["warm_up_rows_per_s"] is not None:
        warm_up = f"writer, {result['rows']:,} rows, on a new server (not counted)"
        print(f"warm-up: {warm_up:<50}{result['warm_up_rows_per_s']:>12,} rows/s")
    for number, run in enumerate(result["runs"], 1):
        print(
            f"run {number}: load {run['load_1min']:.2f} on {result['cpus']} CPUs, "
            f"reference task {run['reference_s']:.3f} s"
        )
        for label, path in labels:
            rate = run[f"{path}_rows_per_s"]
            others = run[f"other_cpus_{path}"]
            busy = "" if others is None else f"  (other work: {others:.2f} CPUs)"
            ratio = run["writer_rows_per_s"] / rate
            print(f"  {label:<50}{rate:>12,.0f} rows/s  writer {ratio:5.1f}x{busy}")
        print(
            f"  (before the writer's timer: its tokens registered in "
            f"{run['token_registration_s']:.2f} s; counted in, "
            f"{run['writer_with_registration_rows_per_s']:,} rows/s)"
        )
    if len(result["runs"]) > 1:
        print("median of the runs")
        for label, path in labels:
            print(f"  {label:<50}{result[f'{path}_rows_per_s']:>12,.0f} rows/s")
        print(f"  writer / orm: {result['writer_vs_orm']:.1f}x (median of per-run ratios)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--baseline-rows", type=int, default=0, help="rows for the two baselines (default: --rows)"
    )
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument(
        "--history-rows",
        type=int,
        default=0,
        help="rows of the day before already stored (writer and executemany; default: none)",
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat the measurement N times")
    parser.add_argument(
        "--warm-up",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one untimed writer pass before the runs (default: on)",
    )
    parser.add_argument("--dsn", help="admin DSN of a server to use instead of the embedded one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with admin_server(args.dsn, "bench") as (admin_dsn, postmaster):
        result = asyncio.run(run(args, admin_dsn, postmaster))
    print_table(result)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
