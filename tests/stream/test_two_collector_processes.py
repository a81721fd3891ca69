"""Two real ``polyfarm collect`` processes writing into one database, as on two hosts.

Both run; the first is ``kill -9``ed and restarted while the second goes on; then the second
is stopped for a while (an upgrade) and started again. Across all of it the trades equal the
venue's tape exactly, every price slot has its snapshots, no book change is stored twice, the
elected maintenance job ran at most once per interval, and each process closed only its own
runs. The simulator runs on the wall clock, because the daemons keep real time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from polyfarm.sim import Simulator

from ..conftest import Server
from .harness import truth_identity, truth_trades
from .processes import (
    OPEN_TRADE_GAPS,
    POLYFARM,
    at_least,
    at_most,
    open_gaps,
    start_daemon,
    stored_between,
    until,
    wall_clock_venue,
)

PRICES_S = 5
MAINTENANCE_S = 4
DOWN_S = 6  # how long each collector stays down


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = wall_clock_venue(seed=17)
    async with Simulator(config) as simulator:
        yield simulator


async def status(sim: Simulator, dsn: str, tmp: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env |= sim.env() | {"POLYFARM_DATABASE_URL": dsn, "POLYFARM_DATA_DIR": str(tmp)}
    proc = await asyncio.create_subprocess_exec(
        POLYFARM, "status", "--json", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


class Collectors:
    """Two collector processes, "a" and "b", each with its own data directory."""

    def __init__(self, sim: Simulator, dsn: str, tmp: Path) -> None:
        self._sim, self._dsn, self._tmp = sim, dsn, tmp
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        for name in "ab":
            (tmp / name).mkdir()

    async def start(self, name: str) -> None:
        self.procs[name] = await start_daemon(
            self._sim,
            self._dsn,
            self._tmp / name,
            POLYFARM_INSTANCE=name,
            POLYFARM_INTERVALS__PRICES_S=str(PRICES_S),
            POLYFARM_INTERVALS__MAINTENANCE_S=str(MAINTENANCE_S),
        )

    async def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        await self.procs[name].wait()

    async def stop(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(self.procs[name].wait(), 60) == 0, f"{name} failed"

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.kill()


@pytest.mark.timeout(300)
async def test_two_collector_processes_one_killed_one_stopped_lose_nothing(
    sim: Simulator, db_dsn: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(db_dsn)
    collectors = Collectors(sim, db_dsn, tmp_path)
    try:
        await collectors.start("a")
        await collectors.start("b")
        both_up = "SELECT count(DISTINCT instance) FROM instance_health WHERE collector = 'prices'"
        await until(lambda: at_least(conn, both_up, 2), "both collectors' first cycles", 90)
        first_s = int(sim.clock.now()) + 1  # both subscribed: every later fill is promised
        assert (await status(sim, db_dsn, tmp_path))["instances"] == ["a", "b"]

        await collectors.kill("a")  # b collects alone
        killed_s = int(sim.clock.now())
        await asyncio.sleep(DOWN_S)
        await collectors.start("a")
        await asyncio.sleep(DOWN_S)
        await collectors.stop("b")  # an upgrade of b: a collects alone
        await asyncio.sleep(DOWN_S)
        await collectors.start("b")
        await asyncio.sleep(DOWN_S)
        last_s = int(sim.clock.now()) - 1

        await until(lambda: at_most(conn, OPEN_TRADE_GAPS, 0), lambda: open_gaps(conn), 60)
        await collectors.stop("a")
        await collectors.stop("b")
        stored = await stored_between(conn, first_s, last_s)
        await assert_every_price_slot_filled(conn, first_s, last_s)
        await assert_no_book_change_twice(conn)
        await assert_maintenance_at_most_once_per_interval(conn)
        running = await conn.fetchval("SELECT count(*) FROM task_runs WHERE status = 'running'")
    finally:
        collectors.close()
        await conn.close()

    tape = [t for t in await truth_trades(sim) if first_s <= t["timestamp_ms"] // 1000 <= last_s]
    truth = Counter(truth_identity(t) for t in tape)
    down = [t for t in tape if killed_s <= t["timestamp_ms"] // 1000 <= killed_s + DOWN_S]
    print(f"fills {sum(truth.values())}, while a was down {len(down)}")
    assert down, "the venue must trade while a collector is down, or this proves nothing"
    missing, extra = truth - stored, stored - truth
    assert not missing, f"{sum(missing.values())} fills missing, e.g. {list(missing)[:3]}"
    assert not extra, f"{sum(extra.values())} fills stored twice or never traded"
    assert running == 0, "a run left 'running' after both stopped cleanly"


async def assert_every_price_slot_filled(
    conn: asyncpg.Connection, first_s: int, last_s: int
) -> None:
    """Each price slot of the run has snapshots of (nearly) every token, whichever was up."""
    rows = await conn.fetch(
        "SELECT ts, count(*) AS n FROM price_points WHERE ts BETWEEN $1 AND $2 GROUP BY ts",
        datetime.fromtimestamp(first_s, UTC),
        datetime.fromtimestamp(last_s, UTC),
    )
    counts = {int(r["ts"].timestamp()): r["n"] for r in rows}
    slots = range(-(-first_s // PRICES_S) * PRICES_S, last_s - PRICES_S, PRICES_S)
    missing = [s for s in slots if s not in counts]
    assert not missing, f"price slots without snapshots: {missing}"
    assert min(counts.values()) == max(counts.values()), counts


async def assert_no_book_change_twice(conn: asyncpg.Connection) -> None:
    changes = await conn.fetchval("SELECT count(*) FROM book_changes")
    distinct = await conn.fetchval(
        "SELECT count(DISTINCT (token_sid, ts, side, price, size)) FROM book_changes"
    )
    assert changes > 0
    assert changes == distinct, f"{changes - distinct} book changes stored twice"


async def assert_maintenance_at_most_once_per_interval(conn: asyncpg.Connection) -> None:
    runs = await conn.fetch(
        "SELECT instance, started_at FROM task_runs WHERE task_name = 'maintenance' "
        "AND status <> 'cancelled' ORDER BY started_at"
    )
    slots = Counter(int(r["started_at"].timestamp()) // MAINTENANCE_S for r in runs)
    assert len(runs) >= 3
    assert max(slots.values()) == 1, f"two maintenance runs in one interval: {slots}"
