"""``polyfarm backfill`` as a user runs it: a subprocess against the simulator's servers and a
real database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from polyfarm.cli import cli
from polyfarm.commands.backfill import collector_running, eta_s, leftover_fraction
from polyfarm.settings import Settings
from polyfarm.sim import SimConfig, Simulator
from tests.backfill.support import simulated_days, stored_minutes, truth_minutes
from tests.conftest import Server

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))
DAY = 86_400


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """Two simulated days that ended a day ago (the command reads the real clock)."""
    config = SimConfig(
        markets=5, seed=4, speed=0.0, rate_limits=False, trade_rate=0.02,
        start_time=time.time() // 60 * 60 - 3 * DAY, new_markets_per_hour=0.0,
    )  # fmt: skip
    async with simulated_days(config, 2) as simulator:
        yield simulator


async def backfill(sim: Simulator, dsn: str, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env |= sim.env() | {
        "POLYFARM_DATABASE_URL": dsn,
        "POLYFARM_DATA_DIR": tempfile.mkdtemp(prefix="polyfarm-backfill-"),
    }
    process = await asyncio.create_subprocess_exec(
        POLYFARM, "backfill", *args, "--json", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-3000:]
    summary: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    return summary


async def test_the_command_backfills_chosen_markets_and_a_rerun_adds_nothing(
    sim: Simulator, db_dsn: str
) -> None:
    start = int(sim.clock.now()) - 2 * DAY
    end = int(sim.clock.now()) // 60 * 60
    window = [
        "--from", datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "--to", datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    ]  # fmt: skip
    market = sim.world.markets[0]
    first = await backfill(sim, db_dsn, "--slug", market.slug, *window)
    again = await backfill(sim, db_dsn, "--slug", market.slug, *window)
    pool = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    try:
        for token in (market.yes_token, market.no_token):
            truth = truth_minutes(sim, token, start, end)
            assert truth
            assert await stored_minutes(pool, token) == truth
        trades = await pool.fetchval("SELECT count(*) FROM trades")
        stored = await pool.fetchrow(
            "SELECT m.slug, m.event_id, e.slug AS event_slug, "
            "array_agg(t.token_id ORDER BY t.outcome_index) AS tokens "
            "FROM markets m JOIN events e USING (event_id) JOIN tokens t USING (market_id) "
            "GROUP BY m.market_id, e.slug"
        )
    finally:
        await pool.close()
    assert first["points_by_fidelity_s"] == {"60": 2 * len(truth)}
    assert first["rows"] == {"price_history": 2 * len(truth), "trades": trades}
    assert again["rows"] == {"price_history": 0, "trades": 0}
    assert again["windows"] == 0
    # The market's rows are stored too, so what was backfilled joins to its question and event.
    assert stored is not None
    assert (stored["slug"], stored["event_slug"]) == (market.slug, market.event.slug)
    assert stored["tokens"] == [market.yes_token, market.no_token]


async def test_beside_a_running_collector_the_backfill_takes_what_it_leaves(
    pool: asyncpg.Pool,
) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        assert not await collector_running(conn, now)
        await conn.execute(
            "INSERT INTO instance_health (collector, instance, updated_at) "
            "VALUES ('prices', 'a', $1)",
            now - timedelta(seconds=30),
        )
        assert await collector_running(conn, now)
        assert not await collector_running(conn, now + timedelta(minutes=10))
    assert leftover_fraction(Settings()) == pytest.approx(0.1)
    greedy = Settings(rate_limits={"fraction": 0.95})  # type: ignore[arg-type]
    assert leftover_fraction(greedy) == 0.05


def test_the_eta_is_the_pace_so_far_and_markets_must_be_chosen() -> None:
    assert eta_s(0, 10, 5.0) is None
    assert eta_s(5, 10, 10.0) == 10.0
    assert eta_s(10, 10, 10.0) == 0.0
    result = CliRunner().invoke(cli, ["backfill", "--days", "1"])
    assert result.exit_code == 2
    assert "choose markets" in result.output
    result = CliRunner().invoke(
        cli, ["backfill", "--all-open", "--from", "2026-03-02", "--to", "2026-03-01"]
    )
    assert result.exit_code == 2
    assert "--from must be before --to" in result.output
