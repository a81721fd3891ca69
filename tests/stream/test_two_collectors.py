"""Two collectors writing into one database, on the simulator's fast clock, under faults.

Two simulated hours: both run; the second stops for twenty minutes and comes back; then the
first stops for twenty minutes and comes back. Afterwards the trades equal the simulator's tape
exactly (none missing, none twice), every minute of the run has its price snapshots, no book
change is stored twice, and the elected maintenance job ran once per interval, in one instance
at a time, handed over when its holder stopped. (The same with real processes and ``kill -9``:
``test_two_collector_processes.py``.)
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from polyfarm.sim import Simulator

from ..conftest import Server
from ..sim.support import make_config
from .harness import (
    Streaming,
    advance,
    settle,
    stored_identities,
    stream_settings,
    streaming,
    truth_identity,
    truth_trades,
)

FAULTS = (
    "ws_drop=0.0005,ws_duplicate=0.01,ws_out_of_order=0.01,hash_mismatch=0.01,data:http_5xx=0.02"
)
STEP_S = 20
MINUTES = 120
MAINTENANCE_S = 600
# Minute of the run at which each collector stops, and at which it starts again.
B_DOWN, B_UP = 40, 60
A_DOWN, A_UP = 80, 100


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server  # nothing here depends on the flavour


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = make_config(markets=30, seed=31, new_markets_per_hour=3.0, trade_rate=0.01)
    async with Simulator(config) as simulator:
        yield simulator


class Collector:
    """One collector in-process: started and stopped by the test, as an operator would."""

    def __init__(self, sim: Simulator, pool: asyncpg.Pool, tmp: Path, name: str) -> None:
        self.settings = stream_settings(
            sim,
            tmp / name,
            top={"instance": name, "intervals": {"maintenance_s": MAINTENANCE_S}},
        )
        self._sim, self._pool = sim, pool
        self._stack: AsyncExitStack | None = None
        self.live: Streaming | None = None

    async def start(self) -> None:
        self._stack = AsyncExitStack()
        self.live = await self._stack.enter_async_context(
            streaming(self._sim, self._pool, self.settings)
        )

    async def stop(self) -> None:
        assert self._stack is not None
        await self._stack.aclose()
        self._stack, self.live = None, None

    async def cycle(self, name: str) -> None:
        if self.live is not None:
            await self.live.cycle(name)


@pytest.mark.timeout(420)
async def test_two_collectors_lose_nothing_and_store_nothing_twice(
    sim: Simulator, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    a, b = Collector(sim, pool, tmp_path, "a"), Collector(sim, pool, tmp_path, "b")
    await a.start()
    await b.start()
    began_ms = sim.clock.now_ms()
    sim.faults.set(FAULTS)
    for step in range(MINUTES * 60 // STEP_S):
        minute, second = divmod(step * STEP_S, 60)
        await on_schedule(a, b, minute, second)
        await advance(sim, STEP_S, 1)
    sim.faults.clear()
    for collector in (a, b):
        assert collector.live is not None
        live = collector.live
        await settle(sim, live.run, rescan=lambda live=live: live.cycle("metadata"))
    ended_ms = sim.clock.now_ms()
    await a.stop()
    await b.stop()

    truth = [t for t in await truth_trades(sim) if began_ms < t["timestamp_ms"] <= ended_ms]
    expected = Counter(truth_identity(t) for t in truth)
    stored = await stored_identities(pool)
    assert len(truth) > 500, "the scenario must be busy enough to mean something"
    assert sum((expected - stored).values()) == 0, "fills missing"
    assert sum((stored - expected).values()) == 0, "fills stored twice or never made"
    by_instance = await pool.fetch(
        "SELECT instance, count(*) AS n FROM task_runs WHERE task_name = 'prices' GROUP BY 1"
    )
    assert {r["instance"] for r in by_instance} == {"a", "b"}

    await assert_every_minute_has_prices(pool, began_ms, MINUTES)
    duplicated = await pool.fetchval(
        "SELECT count(*) - count(DISTINCT (token_sid, ts, side, price, size)) FROM book_changes"
    )
    assert await pool.fetchval("SELECT count(*) FROM book_changes") > 0
    assert duplicated == 0, "book changes stored once per collector"
    await assert_maintenance_ran_once_per_interval(pool)


async def on_schedule(a: Collector, b: Collector, minute: int, second: int) -> None:
    """What each collector's supervisor would do at this moment, and the operator's stops."""
    if second:
        return
    if minute == B_DOWN:
        await b.stop()
    elif minute == B_UP:
        await b.start()
    elif minute == A_DOWN:
        await a.stop()
    elif minute == A_UP:
        await a.start()
    for collector in (a, b):
        await collector.cycle("prices")
        if minute % 30 == 29:
            await collector.cycle("metadata")
        if minute % (MAINTENANCE_S // 60) == 0:
            await collector.cycle("maintenance")


async def assert_every_minute_has_prices(pool: asyncpg.Pool, began_ms: int, minutes: int) -> None:
    """Every minute of the run has its snapshots, whichever instance was up: no minute is
    missing, and the tokens of one minute differ from the last one's by market changes only."""
    first = datetime.fromtimestamp(began_ms / 1000, UTC).replace(second=0, microsecond=0)
    slots = await pool.fetch(
        "SELECT ts, count(*) AS n FROM price_points WHERE ts >= $1 GROUP BY ts ORDER BY ts", first
    )
    times = [r["ts"] for r in slots[:minutes]]
    assert times == [first + timedelta(minutes=m) for m in range(minutes)], "a minute is missing"
    tokens = [r["n"] for r in slots[:minutes]]
    steps = [abs(later - earlier) for earlier, later in itertools.pairwise(tokens)]
    assert max(steps) <= 2 * 3, f"a minute lost some of its snapshots: {tokens}"


async def assert_maintenance_ran_once_per_interval(pool: asyncpg.Pool) -> None:
    runs = await pool.fetch(
        "SELECT instance, started_at, status FROM task_runs "
        "WHERE task_name = 'maintenance' ORDER BY started_at"
    )
    slots = Counter(int(r["started_at"].timestamp()) // MAINTENANCE_S for r in runs)
    assert max(slots.values()) == 1, f"two maintenance runs in one interval: {slots}"
    assert len(runs) >= MINUTES * 60 // MAINTENANCE_S - 2, runs
    assert all(r["status"] == "success" for r in runs)
    holders = [r["instance"] for r in runs]
    assert holders[0] == "a", holders
    assert "b" in holders, holders  # b took over while a was down
