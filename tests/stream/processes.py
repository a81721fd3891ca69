"""Real ``polyfarm collect`` processes against the simulator: start, wait, read back."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from polyfarm.sim import SimConfig, Simulator

from .harness import TradeIdentity, truth_identity

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))


def wall_clock_venue(seed: int) -> SimConfig:
    """A small venue on the wall clock (the daemons keep real time), busy with fills, with no
    market listed or resolved while a test runs."""
    return SimConfig(
        markets=20,
        seed=seed,
        speed=1.0,
        rate_limits=False,
        trade_rate=0.2,
        new_markets_per_hour=0.0,
        resolution_delay_s=(3600.0, 7200.0),
    )


async def start_daemon(
    sim: Simulator, dsn: str, data_dir: Path, **settings: str
) -> asyncio.subprocess.Process:
    """``polyfarm collect`` on the simulator; ``settings`` are more POLYFARM_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env |= sim.env() | {
        "POLYFARM_DATABASE_URL": dsn,
        "POLYFARM_DATA_DIR": str(data_dir),
        "POLYFARM_LOG_LEVEL": "WARNING",
        "POLYFARM_METRICS_PORT": "0",
        # The simulator's Data API indexes at once: no need to wait the venue's delay.
        "POLYFARM_WEBSOCKET__REPAIR_DELAY_S": "1",
        # Only what the collectors themselves record is checked: no first-start backfill.
        "POLYFARM_BACKFILL__FIRST_START": "false",
        **settings,
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


async def at_least(conn: asyncpg.Connection, query: str, n: int) -> bool:
    return bool(await conn.fetchval(query) >= n)


async def at_most(conn: asyncpg.Connection, query: str, n: int) -> bool:
    return bool(await conn.fetchval(query) <= n)


# Trade windows the stream lost and must repair. Markets both listed and closed while nothing
# listened are recorded with no market: no one can ask the Data API for them.
OPEN_TRADE_GAPS = (
    "SELECT count(*) FROM feed_gaps WHERE stream = 'ws_trades' AND NOT repaired "
    "AND market_id IS NOT NULL"
)


async def open_gaps(conn: asyncpg.Connection) -> str:
    rows = await conn.fetch(
        "SELECT market_id, gap_start, gap_end, reason FROM feed_gaps "
        "WHERE stream = 'ws_trades' AND NOT repaired AND market_id IS NOT NULL"
    )
    return f"every window repaired; still open: {[dict(r) for r in rows]}"
