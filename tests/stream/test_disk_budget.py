"""The disk budget against the simulator: over budget, book_deltas stop (recorded in feed_gaps)
and the far tiers' snapshots slow down, while trades are still stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from polyfarm.sim import Simulator
from polyfarm.store.disk import DiskPressure, NoPressure
from polyfarm.stream.cadence import CadenceWriter
from polyfarm.stream.service import StreamRun

from ..conftest import Server
from ..sim.support import make_config
from .harness import advance, settle, stream_settings, streaming

TINY_BUDGET = {"storage": {"disk_budget_gb": 0.001}}  # 1 MB: any database is over it


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(make_config(markets=30, seed=11, trade_rate=0.05)) as simulator:
        yield simulator


COUNTS = {table: f"SELECT count(*) FROM {table}" for table in ("book_deltas", "trades")}


async def count(pool: asyncpg.Pool, table: str) -> int:
    rows: int = await pool.fetchval(COUNTS[table])
    return rows


async def feature_tiers(run: StreamRun, writer: CadenceWriter, slot: datetime) -> set[int | None]:
    """Tiers of the feature rows due at ``slot`` (a slot of the T1 cadence, 300 s)."""
    _, rows = await writer.due_rows(slot)
    return {run.deps.catalog.markets[row.market_id].tier for row in rows}


@pytest.mark.timeout(120)
async def test_over_budget_deltas_stop_and_far_tiers_slow_but_trades_go_on(
    sim: Simulator, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = stream_settings(sim, tmp_path, TINY_BUDGET, capture_delta_tiers=[0, 1, 2, 3, 4])
    async with streaming(sim, pool, settings) as s:
        await advance(sim, 5 * 60, 60, pause_s=0.02)
        await settle(sim, s.run)
        deltas_before = await count(pool, "book_deltas")
        trades_before = await count(pool, "trades")
        assert deltas_before > 0, "captured while the budget had not been read"
        await s.collection.disk.refresh()  # the watch's first sample: over budget
        assert s.collection.disk.pressure() is DiskPressure.SNAPSHOTS_SLOWED
        await advance(sim, 10 * 60, 120, pause_s=0.02)
        await settle(sim, s.run)
        deltas_after = await count(pool, "book_deltas")
        trades_after = await count(pool, "trades")
        # A T1 slot that is not a slowed (4 x 300 s) one: the far tiers have no row due.
        slot = datetime.fromtimestamp((int(sim.clock.now()) // 1200 + 1) * 1200, UTC)
        slot += timedelta(seconds=300)
        run = s.run
        unslowed = CadenceWriter(
            books=run.books, activity=run.activity, catalog=run.deps.catalog,
            settings=settings, writer=run.deps.writer, clock=run.deps.clock, disk=NoPressure(),
        )  # fmt: skip
        tiers_unslowed = await feature_tiers(run, unslowed, slot)
        tiers_slowed = await feature_tiers(run, run.cadence, slot)
    assert deltas_after == deltas_before, "book_deltas stored over budget"
    assert trades_after > trades_before, "trades must never be given up"
    (gap,) = await pool.fetch(
        "SELECT market_id, reason FROM feed_gaps WHERE stream = 'ws_book_deltas'"
    )
    assert gap["market_id"] is None
    assert gap["reason"].startswith("disk budget")
    assert {0, 1} & tiers_unslowed, "the simulated venue has far-from-close markets"
    assert not {0, 1} & tiers_slowed
    assert tiers_slowed == tiers_unslowed - {0, 1}, "nearer tiers keep their cadence"
