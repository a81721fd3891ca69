"""The daemon's minute-grid repair: the real collectors, the simulator's fast clock, a real
database. The collector is "down" simply by not running its price cycles for a while."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest

from polyfarm.backfill.grid import down_spans
from polyfarm.daemon import Daemon, open_daemon
from polyfarm.runtime import Supervisor
from polyfarm.settings import Settings
from polyfarm.sim import SimConfig, Simulator
from tests.backfill.support import FIXED_START, sim_clock, stored_minutes, truth_minutes

DAY = 86_400


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimConfig(
        markets=4, seed=8, speed=0.0, rate_limits=False, start_time=FIXED_START,
        new_markets_per_hour=0.0, trade_rate=0.05, clob_history_max_age_s=3 * DAY,
    )  # fmt: skip
    async with Simulator(config) as simulator:
        simulator.clock.advance(3600)
        simulator.step()
        yield simulator


@dataclass
class Farm:
    sim: Simulator
    daemon: Daemon
    supervisor: Supervisor

    async def cycle(self, name: str) -> None:
        job = next(j for j in self.supervisor.jobs if j.name == name)
        assert await self.supervisor.run_once(job), self.supervisor.state[name].last_error

    async def collect_minutes(self, minutes: int) -> None:
        """The price collector up: one cycle a minute."""
        for _ in range(minutes):
            await self.cycle("prices")
            self.sim.clock.advance(60)
            self.sim.step()

    def down_for(self, seconds: float) -> None:
        for _ in range(int(seconds // DAY)):  # the clock jumps a day at most at a time
            self.sim.clock.advance(DAY)
            self.sim.step()
        self.sim.clock.advance(seconds % DAY)
        self.sim.step()


@asynccontextmanager
async def farm(sim: Simulator, pool: asyncpg.Pool) -> AsyncIterator[Farm]:
    settings = Settings(
        gamma_url=sim.gamma_url, clob_url=sim.clob_url, data_url=sim.data_url,
        ws_url=sim.ws_url, data_dir=tempfile.mkdtemp(prefix="polyfarm-grid-"),
        backfill={"first_start": False, "grid_repair_lookback_days": 10},  # type: ignore[arg-type]
    )  # fmt: skip
    async with open_daemon(settings, pool, sim_clock(sim)) as daemon:
        supervisor = Supervisor(pool, daemon.jobs(), clock=sim_clock(sim))
        running = Farm(sim, daemon, supervisor)
        await running.cycle("metadata")
        await running.cycle("grid-repair")  # the first round: the watch starts here
        yield running


def minute(sim: Simulator) -> int:
    return int(sim.clock.now() // 60 * 60)


async def open_tokens(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(
        "SELECT token_id FROM tokens JOIN markets USING (market_id) WHERE NOT closed"
    )
    return [r["token_id"] for r in rows]


async def prices_gaps(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT token_id, gap_start, gap_end, repaired, unrepairable FROM feed_gaps "
        "WHERE stream = 'prices' ORDER BY gap_start, token_id"
    )


def test_downtime_is_what_no_price_cycle_vouches_for() -> None:
    beats = [0, 60, 121, 179, 1800, 1860]  # drift under a minute leaves no hole
    assert down_spans((0, 2400), beats, 60.0) == [(240, 1800), (1920, 2400)]
    assert down_spans((0, 600), [], 60.0) == [(0, 600)]


async def test_a_collector_down_for_20_minutes_has_its_grid_filled(
    sim: Simulator, pool: asyncpg.Pool
) -> None:
    async with farm(sim, pool) as running:
        await running.collect_minutes(10)
        down_from = minute(sim)
        running.down_for(20 * 60)
        down_to = minute(sim)
        await running.collect_minutes(10)
        running.down_for(5 * 60)  # the repair waits for the venue's newest minutes to settle
        await running.cycle("prices")
        await running.cycle("grid-repair")
        tokens = await open_tokens(pool)
        gaps = await prices_gaps(pool)
        stored = await pool.fetchval("SELECT count(*) FROM price_history")
        # A round cut short before it moved its mark is run again: nothing is recorded twice.
        await pool.execute("UPDATE grid_repair_state SET checked_until = $1",
                           datetime.fromtimestamp(down_from - 600, UTC))  # fmt: skip
        await running.cycle("grid-repair")
        assert await prices_gaps(pool) == gaps
        assert await pool.fetchval("SELECT count(*) FROM price_history") == stored
        counted = {
            outcome: running.daemon.metrics.feed_gaps.labels("prices", outcome)._value.get()
            for outcome in ("detected", "repaired", "unrepaired")
        }
    assert counted == {"detected": len(gaps), "repaired": len(gaps), "unrepaired": 0}
    assert tokens
    for token in tokens:
        stored = await stored_minutes(pool, token)
        outage = {t: p for t, p in stored.items() if down_from <= t < down_to}
        assert outage == truth_minutes(sim, token, down_from, down_to)
        assert len(outage) == 20
    assert {(g["token_id"], g["gap_start"], g["gap_end"]) for g in gaps} >= {
        (t, datetime.fromtimestamp(down_from, UTC), datetime.fromtimestamp(down_to, UTC))
        for t in tokens
    }
    assert all(g["repaired"] and g["unrepairable"] is None for g in gaps)
    # Besides the outage, only the minutes between the last cycle and the repair's settling
    # time: the watch began with the collector, and the minutes before are no downtime.
    spans = sorted({(g["gap_start"], g["gap_end"]) for g in gaps})
    assert len(spans) == 2
    assert spans[0] == (
        datetime.fromtimestamp(down_from, UTC),
        datetime.fromtimestamp(down_to, UTC),
    )


async def test_minutes_the_venue_no_longer_serves_are_recorded_unrepairable(
    sim: Simulator, pool: asyncpg.Pool
) -> None:
    """The outage is repaired only eight days later: the Data API keeps 1-minute points 7 days
    and this venue's CLOB 3; the recent part of the long silence after it is filled."""
    async with farm(sim, pool) as running:
        await running.collect_minutes(10)
        down_from = minute(sim)
        running.down_for(20 * 60)
        down_to = minute(sim)
        await running.collect_minutes(10)
        silent_from = minute(sim)
        running.down_for(8 * DAY)
        await running.cycle("prices")
        await running.cycle("grid-repair")
        tokens = await open_tokens(pool)
        gaps = await prices_gaps(pool)
        unrepaired = running.daemon.metrics.feed_gaps.labels("prices", "unrepaired")._value.get()
    assert unrepaired == len([g for g in gaps if not g["repaired"]]) >= 2 * len(tokens)
    outage = [g for g in gaps if g["gap_start"] == datetime.fromtimestamp(down_from, UTC)]
    assert {g["token_id"] for g in outage} == set(tokens)
    for gap in outage:
        assert gap["gap_end"] == datetime.fromtimestamp(down_to, UTC)
        assert not gap["repaired"]
        assert "older than the Data API keeps 1-minute points (7 days)" in gap["unrepairable"]
    silence = [g for g in gaps if g["gap_start"] == datetime.fromtimestamp(silent_from, UTC)]
    assert {g["token_id"] for g in silence} == set(tokens)
    assert all(not g["repaired"] and g["unrepairable"] for g in silence), "partly filled"
    week_ago = int(sim.clock.now()) - 7 * DAY + 3600
    for token in tokens:
        stored = await stored_minutes(pool, token)
        assert not [t for t in stored if down_from <= t < down_to]
        recent = {t: p for t, p in stored.items() if t >= week_ago}
        truth = truth_minutes(sim, token, week_ago, int(sim.clock.now()) - 600)
        assert recent.items() >= truth.items()


async def test_minutes_before_the_first_price_cycle_are_no_downtime(
    sim: Simulator, pool: asyncpg.Pool
) -> None:
    """At venue scale the first metadata scan takes minutes before the first price cycle: the
    farm was not down then, so no token gets a hole for them."""
    async with farm(sim, pool) as running:  # its first repair round ran before any price
        running.down_for(10 * 60)  # a long first scan
        first_cycle = minute(sim)
        await running.collect_minutes(10)
        running.down_for(5 * 60)  # the repair waits for the venue's newest minutes to settle
        await running.cycle("prices")
        await running.cycle("grid-repair")
        gaps = await prices_gaps(pool)
    assert all(g["gap_start"] >= datetime.fromtimestamp(first_cycle, UTC) for g in gaps), gaps
