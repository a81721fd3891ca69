"""The journal and the durable writer, against a real PostgreSQL that is stopped and started."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from polyfarm.store.database import create_pool
from polyfarm.store.durable import DurableWriter
from polyfarm.store.embedded import EmbeddedPostgres
from polyfarm.store.journal import Corruption, Journal, JournalBatch
from polyfarm.store.migrations import migrate
from polyfarm.store.outage import database_unavailable
from polyfarm.store.rows import PRICE_SNAPSHOTS

from .factories import T0, price_row

NOW = T0 + timedelta(hours=1)
TESTS_DIR = str(Path(__file__).resolve().parents[1])


def test_records_round_trip_and_a_torn_tail_is_reported(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=10**7)
    rows = [price_row(i) for i in range(3)]
    journal.append("price_snapshots", PRICE_SNAPSHOTS.columns, rows)
    journal.append("price_snapshots", PRICE_SNAPSHOTS.columns, [price_row(9)])
    (segment,) = journal.segments()
    items = journal.read(segment)
    assert items == [
        JournalBatch("price_snapshots", PRICE_SNAPSHOTS.columns, [tuple(r) for r in rows]),
        JournalBatch("price_snapshots", PRICE_SNAPSHOTS.columns, [tuple(price_row(9))]),
    ]
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])  # a crash in the middle of the second append
    torn = journal.read(segment)
    assert isinstance(torn[0], JournalBatch)
    assert isinstance(torn[1], Corruption)
    assert "torn record" in torn[1].reason


def test_a_flipped_bit_fails_the_checksum(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=10**7)
    journal.append("price_snapshots", PRICE_SNAPSHOTS.columns, [price_row(1)])
    (segment,) = journal.segments()
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0x40
    segment.write_bytes(bytes(data))
    (item,) = journal.read(segment)
    assert isinstance(item, Corruption)
    assert item.reason == "checksum mismatch"


@pytest.fixture(scope="module")
def own_server() -> Iterator[EmbeddedPostgres]:
    """A server of its own: these tests stop and start it."""
    data_dir = Path(tempfile.mkdtemp(prefix="polyfarm-outage-"))
    server = EmbeddedPostgres(data_dir)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
async def outage_pool(own_server: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    own_server.start()
    conn = await asyncpg.connect(own_server.dsn())
    await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await migrate(conn)
    await conn.close()
    pool = await create_pool(own_server.dsn(), min_size=1, max_size=2, command_timeout=10)
    yield pool
    own_server.start()
    pool.terminate()


async def replay_until_done(writer: DurableWriter, attempts: int = 20) -> int:
    """The first attempts after a restart may meet pooled connections the restart killed."""
    stored = 0
    for _ in range(attempts):
        try:
            stored += await writer.replay()
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            await asyncio.sleep(0.2)
            continue
        if writer.journal.is_empty():
            return stored
    raise AssertionError("journal did not drain")


async def test_database_outage_loses_nothing_and_stores_nothing_twice(
    own_server: EmbeddedPostgres, outage_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    writer = DurableWriter(outage_pool, Journal(tmp_path, 10**8), clock=lambda: NOW)
    first = await writer.write(PRICE_SNAPSHOTS, [price_row(i) for i in range(10)])
    assert first.inserted == 10
    own_server.stop()
    during = [
        await writer.write(PRICE_SNAPSHOTS, [price_row(i) for i in range(k, k + 10)])
        for k in (5, 20, 30)
    ]
    assert [r.journaled for r in during] == [10, 10, 10]
    assert all(r.inserted == 0 for r in during)
    assert not writer.journal.is_empty()
    own_server.start()
    # Written after the return but before the replay: it queues behind the journal.
    late = await writer.write(PRICE_SNAPSHOTS, [price_row(50)])
    assert late.journaled == 1
    assert await replay_until_done(writer) == 26  # 5..9 were stored before the outage
    stamps = await outage_pool.fetch("SELECT ts FROM price_snapshots ORDER BY ts")
    expected = sorted({price_row(i).ts for i in [*range(15), *range(20, 40), 50]})
    assert [r["ts"] for r in stamps] == expected


async def test_replay_after_a_crash_between_commit_and_delete_is_idempotent(
    outage_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    journal = Journal(tmp_path, 10**8)
    rows = [price_row(i) for i in range(8)]
    journal.append("price_snapshots", PRICE_SNAPSHOTS.columns, rows)
    writer = DurableWriter(outage_pool, journal, clock=lambda: NOW)
    assert await writer.replay() == 8
    # The process died after the commit, before the segment was deleted: same batch again.
    journal.append("price_snapshots", PRICE_SNAPSHOTS.columns, rows)
    assert await writer.replay() == 0
    assert await outage_pool.fetchval("SELECT count(*) FROM price_snapshots") == 8


async def test_full_journal_drops_with_a_recorded_gap_and_an_alarm(
    own_server: EmbeddedPostgres, outage_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    writer = DurableWriter(outage_pool, Journal(tmp_path, max_bytes=3000), clock=lambda: NOW)
    own_server.stop()
    kept = await writer.write(PRICE_SNAPSHOTS, [price_row(i) for i in range(5)])
    lost = await writer.write(PRICE_SNAPSHOTS, [price_row(i) for i in range(100, 160)])
    assert kept.journaled == 5
    assert (lost.dropped, lost.journaled) == (60, 0)
    state = writer.state()
    assert state.alarming
    assert state.dropped_rows == 60
    own_server.start()
    await replay_until_done(writer)
    gap = await outage_pool.fetchrow("SELECT * FROM feed_gaps")
    assert gap["stream"] == "price_snapshots"
    assert gap["reason"] == "journal full: 60 rows dropped"
    assert (gap["gap_start"], gap["gap_end"]) == (price_row(100).ts, price_row(159).ts)
    assert await outage_pool.fetchval("SELECT count(*) FROM price_snapshots") == 5


KILLED_WRITER = """
import asyncio, sys, pathlib
from polyfarm.store.journal import Journal
from polyfarm.store.rows import PRICE_SNAPSHOTS
sys.path.insert(0, {tests!r})
from store.factories import price_row
journal = Journal(pathlib.Path({directory!r}), 10**9)
for batch in range(10**6):
    journal.append("price_snapshots", PRICE_SNAPSHOTS.columns,
                   [price_row(batch * 50 + i) for i in range(50)])
    print(batch, flush=True)
"""


async def test_kill_9_mid_append_loses_no_acknowledged_batch(
    outage_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    script = KILLED_WRITER.format(tests=TESTS_DIR, directory=str(tmp_path))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.stdout is not None
    acknowledged = -1
    while acknowledged < 40:
        acknowledged = int(await child.stdout.readline())
    child.send_signal(signal.SIGKILL)
    rest, _ = await child.communicate()
    acknowledged = max([acknowledged, *(int(line) for line in rest.split())])
    later = NOW + timedelta(days=9999)
    writer = DurableWriter(outage_pool, Journal(tmp_path, 10**9), clock=lambda: later)
    await replay_until_done(writer)
    stored = await outage_pool.fetchval("SELECT count(*) FROM price_snapshots")
    distinct = await outage_pool.fetchval(
        "SELECT count(DISTINCT (token_id, ts)) FROM price_snapshots"
    )
    assert stored == distinct, "nothing twice"
    # Every acknowledged batch is there; at most the one being written when killed is extra.
    assert (acknowledged + 1) * 50 <= stored <= (acknowledged + 2) * 50


def test_unavailable_errors_are_judged_by_class() -> None:
    assert database_unavailable(ConnectionRefusedError())
    assert database_unavailable(TimeoutError())
    assert database_unavailable(asyncpg.CannotConnectNowError("starting"))
    assert database_unavailable(asyncpg.AdminShutdownError("bye"))
    assert not database_unavailable(asyncpg.UniqueViolationError("dup"))
    assert not database_unavailable(ValueError("bug"))
