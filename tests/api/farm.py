"""A database filled by a short simulated collection, for the API and browser tests.

The simulated clock starts shortly before the real one and is advanced in minute steps while
the real collectors (metadata, prices, books, resolutions, maintenance) run against the
in-process simulator, so "today", "last 24 h" and staleness mean what they mean in production.
Trades come from the simulator's Data API (the stream that records them live is separate).
"""

from __future__ import annotations

import collections
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from polyfarm.daemon import Daemon, open_daemon
from polyfarm.runtime import Supervisor
from polyfarm.settings import Settings
from polyfarm.sim import SimConfig, Simulator
from polyfarm.store.database import create_pool
from polyfarm.store.rows import TRADES, TradeRow, trade_key
from polyfarm.store.writer import BulkWriter

from ..sim.support import advance

MINUTES = 30
MARKETS = 60
TRADED_MARKETS = 12
FAILING_MINUTE = 20  # the CLOB fails one prices cycle here


def farm_settings(sim: Simulator, data_dir: Path) -> Settings:
    return Settings(
        gamma_url=sim.gamma_url,
        clob_url=sim.clob_url,
        data_url=sim.data_url,
        ws_url=sim.ws_url,
        data_dir=data_dir,
        metrics_port=0,
        rate_limits={"max_retries": 1, "backoff_base_s": 0.01},  # type: ignore[arg-type]
    )


async def _cycle(supervisor: Supervisor, name: str) -> None:
    job = next(j for j in supervisor.jobs if j.name == name)
    assert await supervisor.run_once(job), supervisor.state[name].last_error


async def _record_trades(collection: Daemon, pool: asyncpg.Pool, sim: Simulator) -> int:
    """The Data API's trades of a few busy markets, stored as the backfill would store them."""
    conditions = [
        r["condition_id"]
        for r in await pool.fetch(
            "SELECT condition_id FROM markets WHERE NOT closed "
            "ORDER BY volume_24h DESC NULLS LAST LIMIT $1",
            TRADED_MARKETS,
        )
    ]
    market_of = dict(await pool.fetch("SELECT condition_id, market_id FROM markets"))
    now = datetime.fromtimestamp(sim.clock.now(), UTC)
    seen: collections.Counter[tuple[object, ...]] = collections.Counter()
    rows = []
    async for page in collection.clients.data_api.iter_trades(conditions):
        for t in page.items:
            epoch = int(t.timestamp.timestamp())
            key = (t.token_id, epoch, t.price, t.size, t.side)
            occurrence = seen[key]
            seen[key] += 1
            rows.append(
                TradeRow(
                    t.timestamp.replace(microsecond=0),
                    t.token_id,
                    market_of[t.condition_id],
                    trade_key(t.token_id, epoch, str(t.price), str(t.size), t.side, occurrence),
                    float(t.price),
                    float(t.size),
                    t.side,
                    None,
                    t.transaction_hash,
                    "data_api",
                    None,
                    now,
                )
            )
    writer = BulkWriter(pool, clock=lambda: now)
    return (await writer.write(TRADES, rows)).inserted


async def _failing_prices_cycle(supervisor: Supervisor, sim: Simulator) -> None:
    """One prices cycle against a CLOB that answers 500: a failed run, a hole in the series."""
    sim.faults.set("clob:http_5xx=1.0")
    job = next(j for j in supervisor.jobs if j.name == "prices")
    assert not await supervisor.run_once(job)
    sim.faults.clear()


async def _collect(sim: Simulator, pool: asyncpg.Pool, data_dir: Path) -> None:
    sim_time = lambda: datetime.fromtimestamp(sim.clock.now(), UTC)  # noqa: E731
    started = time.monotonic()
    # The collectors run on simulated time; the supervisor adds the real time a cycle takes,
    # so task runs have true durations.
    run_clock = lambda: sim_time() + timedelta(seconds=time.monotonic() - started)  # noqa: E731
    async with open_daemon(farm_settings(sim, data_dir), pool, sim_time) as collection:
        supervisor = Supervisor(pool, collection.jobs(), clock=run_clock)
        for name in ("metadata", "prices", "orderbooks", "resolutions"):
            await _cycle(supervisor, name)
        for minute in range(1, MINUTES + 1):
            await advance(sim, 60, steps=2)
            if minute == FAILING_MINUTE:
                await _failing_prices_cycle(supervisor, sim)
                continue
            for name in ("prices", "orderbooks", *(("metadata",) * (minute % 5 == 0))):
                await _cycle(supervisor, name)
        for name in ("metadata", "resolutions"):
            await _cycle(supervisor, name)
        await _record_trades(collection, pool, sim)
        await _cycle(supervisor, "maintenance")


async def fill_farm(dsn: str, data_dir: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    config = SimConfig(
        markets=MARKETS,
        seed=11,
        speed=0.0,
        start_time=now - timedelta(minutes=MINUTES),
        rate_limits=False,
        trade_rate=0.02,
    )
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        async with Simulator(config) as sim:
            await _collect(sim, pool, data_dir)
    finally:
        await pool.close()
