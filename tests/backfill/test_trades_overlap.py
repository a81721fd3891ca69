"""Trades the stream saw live and a backfill fetched again are stored once: the real stream,
the simulator's fast clock, a real database."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from polyfarm.backfill.markets import Selection, select_markets
from polyfarm.backfill.run import BackfillPlan
from polyfarm.sim import Simulator
from tests.backfill.support import backfiller, venue
from tests.conftest import Server
from tests.sim.support import make_config
from tests.stream.harness import (
    advance,
    settle,
    stored_identities,
    stream_settings,
    streaming,
    truth_identity,
    truth_trades,
)


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = make_config(markets=12, seed=17, trade_rate=0.05, new_markets_per_hour=0.0)
    async with Simulator(config) as simulator:
        yield simulator


@pytest.mark.timeout(120)
async def test_trades_the_stream_saw_are_not_stored_twice_by_a_backfill(
    sim: Simulator, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = stream_settings(sim, tmp_path, top={"backfill": {"first_start": False}})
    async with streaming(sim, pool, settings) as s:
        began = sim.clock.now_ms()
        await advance(sim, 10 * 60, 120, pause_s=0.02)
        await settle(sim, s.run)
        settled = sim.clock.now_ms()
    live = await stored_identities(pool)
    live_rows = await pool.fetchval("SELECT count(*) FROM trades")
    start = datetime.fromtimestamp(began // 1000 + 1, UTC)  # whole seconds the stream covered
    end = datetime.fromtimestamp(settled // 1000 - 1, UTC)
    async with venue(sim) as clients:
        subjects = await select_markets(clients.gamma, Selection(all_open=True))
        plan = BackfillPlan(subjects, start, end, prices=False)
        summary = await backfiller(sim, pool, clients).run(plan)
    truth = Counter(
        truth_identity(t)
        for t in await truth_trades(sim)
        if start.timestamp() * 1000 <= t["timestamp_ms"] < end.timestamp() * 1000
    )
    stored = await stored_identities(pool)
    in_window = Counter(
        {k: n for k, n in stored.items() if start.timestamp() <= k[1] < end.timestamp()}
    )
    assert sum(truth.values()) > 20
    assert in_window == truth, "every fill of the window once"
    assert summary.trade_rows == 0, "the stream had seen every fill of the window"
    assert await pool.fetchval("SELECT count(*) FROM trades") == live_rows
    assert stored == live
