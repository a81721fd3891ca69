"""``polyfarm lake export|status|verify`` run as a user would, against a database with rows."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from polyfarm.lake.layout import manifest_file, partition_file
from polyfarm.lake.storage import open_lake
from polyfarm.store.rows import PRICE_SNAPSHOTS, TRADES
from polyfarm.store.writer import BulkWriter

from ..store.factories import T0, price_row, token, trade_row

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))


def polyfarm(dsn: str, lake: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env.update(
        POLYFARM_DATABASE_URL=dsn, POLYFARM_LAKE__URL=str(lake), POLYFARM_DATA_DIR=str(lake.parent)
    )
    return subprocess.run(
        [POLYFARM, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


async def test_export_then_status_then_verify(
    pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    writer = BulkWriter(pool, clock=lambda: T0 + timedelta(days=2))
    await writer.write(PRICE_SNAPSHOTS, [price_row(i) for i in range(0, 2000, 7)])  # two days
    await writer.write(TRADES, [trade_row(i) for i in range(3)])
    lake = tmp_path / "lake"

    first = polyfarm(db_dsn, lake, "lake", "export")
    assert first.returncode == 0, first.stderr
    # 2026-03-02 and 03-03 of prices, 03-02 of trades (the other time series hold nothing),
    # and of both days the four dimension tables.
    assert "11 days written" in first.stdout
    again = polyfarm(db_dsn, lake, "lake", "export", "--table", "price_snapshots")
    assert "0 days written (0 rows), 2 unchanged" in again.stdout, again.stdout

    status = polyfarm(db_dsn, lake, "lake", "status")
    assert status.returncode == 0, status.stderr
    assert "price_snapshots" in status.stdout
    assert "trades" in status.stdout

    verified = polyfarm(db_dsn, lake, "lake", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "11 of 11 partitions verified" in verified.stdout

    opened = open_lake(str(lake))
    day = T0.date()
    (lake / partition_file("trades", day)).unlink()
    opened.write(manifest_file("price_snapshots", day), b"[]")
    broken = polyfarm(db_dsn, lake, "lake", "verify")
    assert broken.returncode == 1
    assert "9 of 11 partitions verified" in broken.stdout
    assert "trades/date=2026-03-02.json: missing" in broken.stderr
    assert "price_snapshots/date=2026-03-02.json: unreadable" in broken.stderr


def test_the_daemon_and_the_other_commands_do_not_load_arrow() -> None:
    """Arrow, Parquet and ADBC cost the daemon ~150 MB of RSS: only the lake commands load them."""
    heavy = ("pyarrow", "adbc_driver_postgresql", "polars")
    code = (
        "import sys, polyfarm.cli, polyfarm.daemon; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


async def test_export_writes_a_range_of_some_tokens_to_parquet_and_csv(
    pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    writer = BulkWriter(pool, clock=lambda: T0 + timedelta(days=2))
    await writer.write(
        PRICE_SNAPSHOTS, [price_row(i, token(t)) for t in (1, 2, 3) for i in range(0, 600, 10)]
    )
    out = tmp_path / "out"
    window = ("--from", "2026-03-02T13:00", "--to", "2026-03-02T15:00")
    picked = ("--token", token(1), "--token", token(3))
    for file_format in ("parquet", "csv"):
        done = polyfarm(db_dsn, tmp_path / "lake", "export", "--table", "price_snapshots",
                        "--table", "trades", *window, *picked, "--format", file_format,
                        "--out", str(out))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"price_snapshots: 24 rows -> {out}/price_snapshots.{file_format}" in done.stdout
        assert f"trades: 0 rows -> {out}/trades.{file_format}" in done.stdout
    prices = pq.read_table(out / "price_snapshots.parquet").to_pylist()
    assert {row["token_id"] for row in prices} == {token(1), token(3)}
    assert [row["ts"] for row in prices[:12]] == [
        T0 + timedelta(minutes=m) for m in range(60, 180, 10)
    ]
    assert pacsv.read_csv(out / "price_snapshots.csv").num_rows == 24
    assert pq.read_table(out / "trades.parquet").num_rows == 0
