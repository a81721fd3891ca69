"""``kill -9`` of the whole daemon, then a restart: the journal replays, the stream repairs the
downtime from the Data API, and the trades table equals the venue's tape, nothing twice.

The daemon is the real ``polyfarm collect`` process; the simulator runs on the wall clock here,
because the daemon keeps its own (real) time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from polyfarm.sim import SimConfig, Simulator

from ..conftest import Server
from .harness import TradeIdentity, truth_identity, truth_trades

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimConfig(
        markets=20,
        seed=13,
        speed=1.0,
        rate_limits=False,
        trade_rate=0.2,
        new_markets_per_hour=0.0,
        resolution_delay_s=(3600.0, 7200.0),
    )
    async with Simulator(config) as simulator:
        yield simulator


async def start_daemon(sim: Simulator, dsn: str, data_dir: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env |= sim.env() | {
        "POLYFARM_DATABASE_URL": dsn,
        "POLYFARM_DATA_DIR": str(data_dir),
        "POLYFARM_LOG_LEVEL": "WARNING",
        "POLYFARM_METRICS_PORT": "0",
        # The simulator's Data API indexes at once: no need to wait the venue's delay.
        "POLYFARM_WEBSOCKET__REPAIR_DELAY_S": "1",
        # Only what the stream itself records is checked: no first-start backfill.
        "POLYFARM_BACKFILL__FIRST_START": "false",
    }
    with (data_dir / "daemon.log").open("ab") as log:
        return await asyncio.create_subprocess_exec(
            POLYFARM, "collect", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log
        )


async def until(
    check: Callable[[], Awaitable[bool]],
    what: str | Callable[[], Awaitable[str]],
    limit_s: float,
) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        if time.monotonic() >= deadline:
            detail = what if isinstance(what, str) else await what()
            raise AssertionError(f"timed out waiting for {detail}")
        await asyncio.sleep(0.25)


async def stored_between(
    conn: asyncpg.Connection, first_s: int, last_s: int
) -> Counter[TradeIdentity]:
    rows = await conn.fetch(
        "SELECT token_id, extract(epoch FROM ts)::bigint AS s, price, size, side FROM trades "
        "WHERE ts BETWEEN to_timestamp($1) AND to_timestamp($2)",
        first_s,
        last_s,
    )
    return Counter(
        truth_identity(
            {
                "token_id": r["token_id"],
                "timestamp_ms": r["s"] * 1000,
                "price": repr(r["price"]),
                "size": repr(r["size"]),
                "side": r["side"],
            }
        )
        for r in rows
    )


async def test_kill_9_then_restart_loses_no_fill_and_stores_none_twice(
    sim: Simulator, db_dsn: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(db_dsn)
    daemon = await start_daemon(sim, db_dsn, tmp_path)
    try:
        trades = "SELECT count(*) FROM trades"
        await until(lambda: _at_least(conn, trades, 10), "the stream to store fills", 60)
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
        # Markets both listed and closed while nothing listened are recorded with no market:
        # no one can ask the Data API for them. Every other window must be repaired.
        open_gaps = (
            "SELECT count(*) FROM feed_gaps WHERE stream = 'ws_trades' AND NOT repaired "
            "AND market_id IS NOT NULL"
        )
        await until(lambda: _at_least(conn, restart_gaps, 1), "the restart window", 60)
        await until(lambda: _at_most(conn, open_gaps, 0), lambda: _open_gaps(conn), 60)

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


async def _at_least(conn: asyncpg.Connection, query: str, n: int) -> bool:
    return bool(await conn.fetchval(query) >= n)


async def _at_most(conn: asyncpg.Connection, query: str, n: int) -> bool:
    return bool(await conn.fetchval(query) <= n)


async def _open_gaps(conn: asyncpg.Connection) -> str:
    rows = await conn.fetch(
        "SELECT market_id, gap_start, gap_end, reason FROM feed_gaps "
        "WHERE stream = 'ws_trades' AND NOT repaired AND market_id IS NOT NULL"
    )
    return f"every window repaired; still open: {[dict(r) for r in rows]}"
