"""``kill -9`` of the whole daemon, then a restart: the journal replays, the stream repairs the
downtime from the Data API, and the trades table equals the venue's tape, nothing twice.

The daemon is the real ``polyfarm collect`` process; the simulator runs on the wall clock here,
because the daemon keeps its own (real) time.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from polyfarm.sim import Simulator

from ..conftest import Server
from .harness import truth_identity, truth_trades
from .processes import (
    OPEN_TRADE_GAPS,
    at_least,
    at_most,
    open_gaps,
    start_daemon,
    stored_between,
    until,
    wall_clock_venue,
)


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = wall_clock_venue(seed=13)
    async with Simulator(config) as simulator:
        yield simulator


async def test_kill_9_then_restart_loses_no_fill_and_stores_none_twice(
    sim: Simulator, db_dsn: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(db_dsn)
    daemon = await start_daemon(sim, db_dsn, tmp_path)
    try:
        trades = "SELECT count(*) FROM trades"
        await until(lambda: at_least(conn, trades, 10), "the stream to store fills", 60)
        first_s = int(sim.clock.now()) + 1  # subscribed by now: every later fill is promised
        await asyncio.sleep(4)

        killed_s = int(sim.clock.now())
        daemon.send_signal(signal.SIGKILL)
        await daemon.wait()
        await asyncio.sleep(4)  # the venue trades on while nothing listens
        daemon = await start_daemon(sim, db_dsn, tmp_path)
        restarted_s = int(sim.clock.now())
        await asyncio.sleep(4)
        last_s = int(sim.clock.now()) - 1

        restart_gaps = "SELECT count(*) FROM feed_gaps WHERE reason LIKE 'restart%' AND repaired"
        await until(lambda: at_least(conn, restart_gaps, 1), "the restart window", 60)
        await until(lambda: at_most(conn, OPEN_TRADE_GAPS, 0), lambda: open_gaps(conn), 60)

        daemon.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(daemon.wait(), 60) == 0
        stored = await stored_between(conn, first_s, last_s)
    finally:
        if daemon.returncode is None:
            daemon.kill()
        await conn.close()

    tape = [t for t in await truth_trades(sim) if first_s <= t["timestamp_ms"] // 1000 <= last_s]
    truth = Counter(truth_identity(t) for t in tape)
    down = [t for t in tape if killed_s <= t["timestamp_ms"] // 1000 <= restarted_s]
    print(f"fills {sum(truth.values())}, while down {len(down)}, stored {sum(stored.values())}")
    assert down, "the venue must trade while the daemon is down, or this proves nothing"
    missing, extra = truth - stored, stored - truth
    assert not missing, f"{sum(missing.values())} fills missing, e.g. {list(missing)[:3]}"
    assert not extra, f"{sum(extra.values())} fills stored twice or never traded"
