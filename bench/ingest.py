"""Ingest benchmark: price-snapshot rows per second through three write paths.

1. polyfarm's BulkWriter (validation + COPY, idempotent), in batches of ``--batch`` rows;
2. asyncpg ``executemany`` of a parameterised INSERT, the usual hand-written baseline;
3. a per-row SQLAlchemy ORM insert as in seed 004: synchronous SQLAlchemy on psycopg2, one
   mapped object per row with a surrogate id, ``session.add_all`` + commit per batch.

Each path writes into a fresh, fully migrated database (same indexes, same table), on the
embedded PostgreSQL unless ``--dsn`` names another server. Prints a table; with ``--json`` the
last line is one JSON object.

    python bench/ingest.py --rows 1000000 [--json] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import BigInteger, DateTime, Float, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from polyfarm.store.database import create_pool
from polyfarm.store.embedded import EmbeddedPostgres
from polyfarm.store.migrations import migrate
from polyfarm.store.rows import PRICE_SNAPSHOTS, PriceSnapshotRow
from polyfarm.store.writer import BulkWriter

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


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def fresh_database(admin_dsn: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    dsn = with_database(admin_dsn, name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return dsn


async def drop_database(admin_dsn: str, dsn: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {urlsplit(dsn).path[1:]} WITH (FORCE)")
    finally:
        await admin.close()


def batches(rows: list[PriceSnapshotRow], size: int) -> list[list[PriceSnapshotRow]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


async def via_writer(dsn: str, rows: list[PriceSnapshotRow], batch: int) -> float:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    writer = BulkWriter(pool, clock=lambda: START + timedelta(days=365))
    started = time.perf_counter()
    for chunk in batches(rows, batch):
        result = await writer.write(PRICE_SNAPSHOTS, chunk)
        assert result.inserted == len(chunk), result
    elapsed = time.perf_counter() - started
    await pool.close()
    return elapsed


async def via_executemany(dsn: str, rows: list[PriceSnapshotRow], batch: int) -> float:
    conn = await asyncpg.connect(dsn)
    columns = ", ".join(PRICE_SNAPSHOTS.columns)
    params = ", ".join(f"${i + 1}" for i in range(len(PRICE_SNAPSHOTS.columns)))
    sql = f"INSERT INTO price_snapshots ({columns}) VALUES ({params})"  # noqa: S608
    started = time.perf_counter()
    for chunk in batches(rows, batch):
        async with conn.transaction():
            await conn.executemany(sql, chunk)
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


async def measure(
    admin_dsn: str,
    name: str,
    path: Callable[[str, list[PriceSnapshotRow], int], Awaitable[float]],
    rows: list[PriceSnapshotRow],
    batch: int,
    table: str = "price_snapshots",
) -> float:
    dsn = await fresh_database(admin_dsn)
    try:
        elapsed = await path(dsn, rows, batch)
        conn = await asyncpg.connect(dsn)
        stored = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
        await conn.close()
        assert stored == len(rows), f"{name}: stored {stored} of {len(rows)}"
    finally:
        await drop_database(admin_dsn, dsn)
    rate = len(rows) / elapsed
    print(f"  {name:<12} {len(rows):>10,} rows in {elapsed:7.2f} s", file=sys.stderr)
    return rate


async def run(args: argparse.Namespace, admin_dsn: str) -> dict[str, float]:
    rows = make_rows(args.rows)
    baseline = rows[: args.baseline_rows or args.rows]
    writer = await measure(admin_dsn, "writer", via_writer, rows, args.batch)
    many = await measure(admin_dsn, "executemany", via_executemany, baseline, args.batch)
    orm = await measure(
        admin_dsn, "orm", via_orm, baseline, args.batch, table="orm_price_snapshots"
    )
    return {
        "rows": args.rows,
        "baseline_rows": len(baseline),
        "batch": args.batch,
        "writer_rows_per_s": round(writer),
        "executemany_rows_per_s": round(many),
        "orm_rows_per_s": round(orm),
        "writer_vs_executemany": round(writer / many, 1),
        "writer_vs_orm": round(writer / orm, 1),
    }


def print_table(result: dict[str, float]) -> None:
    print(f"{'path':<14}{'rows/s':>12}{'writer is':>12}")
    for label, key in (
        ("writer", "writer_rows_per_s"),
        ("executemany", "executemany_rows_per_s"),
        ("orm", "orm_rows_per_s"),
    ):
        ratio = result["writer_rows_per_s"] / result[key]
        print(f"{label:<14}{result[key]:>12,.0f}{ratio:>11.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--baseline-rows", type=int, default=0, help="rows for the two baselines (default: --rows)"
    )
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--dsn", help="admin DSN of a server to use instead of the embedded one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    data_dir = None
    if args.dsn:
        admin_dsn = args.dsn
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="polyfarm-bench-"))
        server = EmbeddedPostgres(data_dir)
        server.start()
        admin_dsn = server.dsn("postgres")
    try:
        result = asyncio.run(run(args, admin_dsn))
    finally:
        if data_dir is not None:
            EmbeddedPostgres(data_dir).stop()
            shutil.rmtree(data_dir, ignore_errors=True)
    print_table(result)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
