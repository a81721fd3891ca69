"""The first start of ``polyfarm collect`` on a new database: the open markets' recent past is
backfilled in the background, with the daemon's own clients and catalogue."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from polyfarm.daemon import open_daemon
from polyfarm.runtime import Supervisor
from polyfarm.settings import Settings
from polyfarm.sim import SimConfig, Simulator
from polyfarm.store.history_writes import is_new_database
from tests.backfill.support import (
    FIXED_START,
    sim_clock,
    simulated_days,
    stored_minutes,
    truth_minutes,
)

DAY = 86_400
FINISHED = (
    "SELECT EXISTS (SELECT 1 FROM task_runs "
    "WHERE task_name = 'first-start-backfill' AND status = 'success')"
)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimConfig(
        markets=4, seed=2, speed=0.0, rate_limits=False, start_time=FIXED_START,
        new_markets_per_hour=0.0, trade_rate=0.02,
    )  # fmt: skip
    async with simulated_days(config, 3) as simulator:
        yield simulator


async def test_a_new_database_gets_the_open_markets_recent_past(
    sim: Simulator, pool: asyncpg.Pool
) -> None:
    settings = Settings(
        gamma_url=sim.gamma_url, clob_url=sim.clob_url, data_url=sim.data_url,
        ws_url=sim.ws_url, data_dir=tempfile.mkdtemp(prefix="polyfarm-first-"),
        backfill={"first_start_days": 2},  # type: ignore[arg-type]
    )  # fmt: skip
    async with pool.acquire() as conn:
        assert await is_new_database(conn)
    async with open_daemon(settings, pool, sim_clock(sim)) as daemon:
        supervisor = Supervisor(pool, daemon.jobs(), clock=sim_clock(sim))
        service = daemon.first_start_backfill()
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        metadata = next(j for j in supervisor.jobs if j.name == "metadata")
        assert await supervisor.run_once(metadata)  # the catalogue: the backfill starts
        tokens = [
            r["token_id"]
            for r in await pool.fetch(
                "SELECT token_id FROM tokens JOIN markets USING (market_id) WHERE NOT closed"
            )
        ]
        markets = await pool.fetchval("SELECT count(*) FROM markets WHERE NOT closed")

        async def finished() -> bool:
            return bool(await pool.fetchval(FINISHED))

        await wait_until(finished, "the first-start backfill")
        stop.set()
        await asyncio.wait_for(task, 10)
    done = await pool.fetch("SELECT DISTINCT series, subject FROM backfill_progress")
    assert {r["subject"] for r in done if r["series"] == "prices"} == set(tokens)
    assert len([r for r in done if r["series"] == "trades"]) == markets
    # A second collector starting on the same new database leaves the backfill to the first.
    other = settings.model_copy(update={"instance": "other-host"})
    async with open_daemon(other, pool, sim_clock(sim)) as second:
        second.catalog.ready.set()
        stop = asyncio.Event()
        task = asyncio.create_task(second.first_start_backfill().run(stop))
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 10)
    runs = await pool.fetch(
        "SELECT instance, status FROM task_runs WHERE task_name = 'first-start-backfill'"
    )
    assert [(r["instance"], r["status"]) for r in runs] == [(settings.instance, "success")]
    end = int(sim.clock.now()) // 60 * 60
    for token in tokens:
        assert await stored_minutes(pool, token) == truth_minutes(sim, token, end - 2 * DAY, end)
    async with pool.acquire() as conn:
        assert not await is_new_database(conn)


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
