"""Backfills against the simulator's real servers and a real database; the simulator's own
history as ground truth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from polyfarm.backfill.fetch import HistoryFetcher
from polyfarm.backfill.run import Backfiller, Progress
from polyfarm.polymarket import ClobClient, DataApiClient, GammaClient
from polyfarm.sim import SimConfig, Simulator
from polyfarm.sim.history import bucket_mids, price_of
from polyfarm.store.writer import BulkWriter
from tests.polymarket.support import RecordingSleep, rest

FIXED_START = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
DAY_S = 86_400


@asynccontextmanager
async def simulated_days(config: SimConfig, days: int) -> AsyncIterator[Simulator]:
    """A simulator serving ``config``'s world after ``days`` simulated days, a step a day."""
    async with Simulator(config) as simulator:
        for _ in range(days):
            simulator.clock.advance(DAY_S)
            simulator.step()
        yield simulator


def sim_clock(sim: Simulator) -> Callable[[], datetime]:
    return lambda: datetime.fromtimestamp(sim.clock.now(), UTC)


@dataclass
class Venue:
    gamma: GammaClient
    clob: ClobClient
    data: DataApiClient


@asynccontextmanager
async def venue(sim: Simulator) -> AsyncIterator[Venue]:
    sleep = RecordingSleep()
    clients = Venue(
        GammaClient(rest(sim.gamma_url, "gamma", sleep)),
        ClobClient(rest(sim.clob_url, "clob", sleep)),
        DataApiClient(rest(sim.data_url, "data", sleep)),
    )
    async with clients.gamma, clients.clob, clients.data:
        yield clients


def backfiller(
    sim: Simulator,
    pool: asyncpg.Pool,
    clients: Venue,
    *,
    flush_rows: int = 20_000,
    on_progress: Progress | None = None,
) -> Backfiller:
    clock = sim_clock(sim)
    return Backfiller(
        pool=pool,
        fetcher=HistoryFetcher(clients.clob, clients.data),
        data_api=clients.data,
        writer=BulkWriter(pool, clock=clock),
        clock=clock,
        concurrency=4,
        trade_settle_s=0.0,
        flush_rows=flush_rows,
        on_progress=on_progress,
    )


def truth_minutes(sim: Simulator, token_id: str, start_s: int, end_s: int) -> dict[int, float]:
    """The simulator's own 1-minute midpoints of a token, as its routes serve them."""
    found = sim.world.token(token_id)
    assert found is not None
    market, is_yes = found
    stop = min(end_s, sim.world.now_s, market.closed_s or end_s)
    if stop <= start_s:
        return {}
    mids = bucket_mids(market, is_yes, (start_s, stop - 1e-6), 60, sim.world.synthetic(market))
    return {ts: price_of(half) for ts, half in mids}


async def stored_minutes(pool: asyncpg.Pool, token_id: str) -> dict[int, float]:
    rows = await pool.fetch(
        "SELECT ts, price FROM price_history WHERE token_id = $1 AND fidelity_s = 60", token_id
    )
    return {int(r["ts"].timestamp()): r["price"] for r in rows}
