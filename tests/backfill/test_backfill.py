"""``Backfiller`` end to end: the simulator's real servers, a real database."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from polyfarm.backfill.markets import Selection, select_markets
from polyfarm.backfill.run import BackfillPlan
from polyfarm.sim import SimConfig, Simulator
from polyfarm.sim.history import bucket_mids, price_of
from tests.backfill.support import (
    FIXED_START,
    backfiller,
    simulated_days,
    stored_minutes,
    truth_minutes,
    venue,
)
from tests.stream.harness import stored_identities, truth_identity, truth_trades

DAY = 86_400


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulated month: all but its last week is past the Data API's 1-minute retention, and
    it takes two windows of the venue's 15-day cap."""
    config = SimConfig(
        markets=6, seed=21, speed=0.0, rate_limits=False, start_time=FIXED_START,
        trade_rate=0.02, new_markets_per_hour=0.0, resolution_delay_s=(600.0, 1200.0),
    )  # fmt: skip
    async with simulated_days(config, 30) as simulator:
        yield simulator


def a_month(sim: Simulator) -> tuple[datetime, datetime]:
    end = datetime.fromtimestamp(sim.clock.now() // 60 * 60, UTC)
    return end - timedelta(days=30), end


async def test_a_backfill_equals_the_simulators_history_and_a_second_run_adds_nothing(
    sim: Simulator, pool: asyncpg.Pool
) -> None:
    start, end = a_month(sim)
    async with venue(sim) as clients:
        subjects = await select_markets(
            clients.gamma, Selection(all_open=True, resolved_since=start)
        )
        plan = BackfillPlan(subjects, start, end)
        first = await backfiller(sim, pool, clients).run(plan)
        second = await backfiller(sim, pool, clients).run(plan)
    assert len(subjects) == len(sim.world.markets)
    assert any(s.closed_s is not None for s in subjects), "resolved markets are chosen too"
    for subject in subjects:
        for token in subject.token_ids:
            truth = truth_minutes(sim, token, int(start.timestamp()), int(end.timestamp()))
            assert truth, token
            assert await stored_minutes(pool, token) == truth, token
    # Every minute at 1-minute fidelity; what the Data API no longer keeps from the CLOB.
    assert set(first.points_by_fidelity) == {60}
    assert not first.missing_minutes
    week_ago = end - timedelta(days=7)
    old_routes = await pool.fetch(
        "SELECT DISTINCT route FROM price_history WHERE ts < $1", week_ago
    )
    assert [r["route"] for r in old_routes] == ["clob"]
    # Every fill of the tape once, under the live fills' identity.
    window = (start.timestamp() * 1000, end.timestamp() * 1000)
    truth_fills = Counter(
        truth_identity(t)
        for t in await truth_trades(sim)
        if window[0] <= t["timestamp_ms"] < window[1]
    )
    assert truth_fills
    assert await stored_identities(pool) == truth_fills
    assert first.trade_rows == sum(truth_fills.values())
    # The second run asks the venue nothing and stores nothing.
    assert (second.windows, second.requests, second.history_rows, second.trade_rows) == (0, 0, 0, 0)
    tokens = sum(len(s.token_ids) for s in subjects)
    assert second.already_done == tokens + len(subjects)  # price series and trade tapes


async def test_an_interrupted_run_resumes_where_it_stopped(
    sim: Simulator, pool: asyncpg.Pool
) -> None:
    start, end = a_month(sim)

    class Interrupted(Exception):
        pass

    def interrupt_after_five(done: int, total: int) -> None:
        assert total > 10
        if done >= 5:
            raise Interrupted

    async with venue(sim) as clients:
        subjects = await select_markets(
            clients.gamma, Selection(all_open=True, resolved_since=start)
        )
        plan = BackfillPlan(subjects, start, end)
        with pytest.raises(ExceptionGroup) as stopped:
            await backfiller(
                sim, pool, clients, flush_rows=1, on_progress=interrupt_after_five
            ).run(plan)
        assert stopped.group_contains(Interrupted)
        done_first = {
            (r["subject"], int(r["window_start"].timestamp()))
            for r in await pool.fetch(
                "SELECT subject, window_start FROM backfill_progress WHERE series = 'prices'"
            )
        }
        resumed = backfiller(sim, pool, clients)
        now_s = int(sim.clock.now())
        price_jobs = await resumed.price_jobs(plan, now_s)
        trades_left = len(await resumed.trade_jobs(plan, now_s))
        summary = await resumed.run(plan)
    left = {(job.token_id, job.window[0]) for job in price_jobs}
    assert done_first, "interrupted after some windows"
    assert left, "interrupted before the last"
    assert not done_first & left, "what was done is not asked again"
    assert summary.windows == len(price_jobs) + trades_left
    progress = await pool.fetch("SELECT series, subject FROM backfill_progress")
    assert len([r for r in progress if r["series"] == "prices"]) == len(done_first | left)
    assert {r["subject"] for r in progress if r["series"] == "prices"} == {
        t for s in subjects for t in s.token_ids
    }
    assert {r["subject"] for r in progress if r["series"] == "trades"} == {
        s.condition_id for s in subjects
    }
    for subject in subjects:
        for token in subject.token_ids:
            truth = truth_minutes(sim, token, int(start.timestamp()), int(end.timestamp()))
            assert await stored_minutes(pool, token) == truth, token


async def test_where_1_minute_is_no_longer_served_a_coarser_grain_is_stored_as_such(
    pool: asyncpg.Pool,
) -> None:
    """The CLOB keeps three days here and the Data API 1-minute points seven: the three days
    before that come at 5 minutes, from the Data API, recorded at 5 minutes."""
    config = SimConfig(
        markets=3, seed=9, speed=0.0, rate_limits=False, start_time=FIXED_START,
        new_markets_per_hour=0.0, trade_rate=0.0, clob_history_max_age_s=3 * DAY,
    )  # fmt: skip
    async with Simulator(config) as sim:
        # Days before the simulation's start: the markets were open then (its pre-start path).
        now = datetime.fromtimestamp(sim.clock.now() // 60 * 60, UTC)
        end = now - timedelta(days=7, hours=1)
        start = end - timedelta(days=3)
        async with venue(sim) as clients:
            subjects = await select_markets(clients.gamma, Selection(all_open=True))
            plan = BackfillPlan(subjects, start, end, trades=False)
            summary = await backfiller(sim, pool, clients).run(plan)
        assert subjects
        token = subjects[0].token_ids[0]
        found = sim.world.token(token)
        assert found is not None
        market, is_yes = found
        mids = bucket_mids(
            market, is_yes, (start.timestamp(), end.timestamp() - 1e-6), 300,
            sim.world.synthetic(market),
        )  # fmt: skip
    rows = await pool.fetch(
        "SELECT ts, price, fidelity_s, route FROM price_history WHERE token_id = $1", token
    )
    assert set(summary.points_by_fidelity) == {300}
    assert not summary.missing_minutes
    assert {(r["fidelity_s"], r["route"]) for r in rows} == {(300, "data_api")}
    assert {int(r["ts"].timestamp()): r["price"] for r in rows} == {
        ts: price_of(half) for ts, half in mids
    }
    done = await pool.fetch("SELECT fidelity_s FROM backfill_progress WHERE series = 'prices'")
    assert {r["fidelity_s"] for r in done} == {300}
