"""The collectors end to end: the in-process simulator (real HTTP) and a real database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from polyfarm.daemon import Daemon, open_daemon
from polyfarm.runtime import Supervisor
from polyfarm.settings import Settings
from polyfarm.sim import SimConfig, Simulator

from ..conftest import Server
from ..sim.support import FIXED_START, advance

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimConfig(markets=60, seed=11, speed=0.0, start_time=FIXED_START, rate_limits=False)
    async with Simulator(config) as simulator:
        yield simulator


def sim_clock(sim: Simulator) -> Callable[[], datetime]:
    return lambda: datetime.fromtimestamp(sim.clock.now(), UTC)


def settings_for(sim: Simulator, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tempfile.mkdtemp(prefix="polyfarm-collect-"),
        "gamma_url": sim.gamma_url,
        "clob_url": sim.clob_url,
        "data_url": sim.data_url,
        "ws_url": sim.ws_url,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def counts(pool: asyncpg.Pool, *tables: str) -> dict[str, int]:
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


async def run_cycle(collection: Daemon, supervisor: Supervisor, name: str) -> None:
    job = next(j for j in supervisor.jobs if j.name == name)
    assert await supervisor.run_once(job), supervisor.state[name].last_error


async def test_one_pass_fills_every_table_and_tiers_follow_the_clock(
    sim: Simulator, pool: asyncpg.Pool
) -> None:
    settings = settings_for(sim)
    async with open_daemon(settings, pool, sim_clock(sim)) as collection:
        supervisor = Supervisor(pool, collection.jobs())
        for name in ("metadata", "prices", "orderbooks", "resolutions"):
            await run_cycle(collection, supervisor, name)
        tiers_before = dict(await pool.fetch("SELECT market_id, tier FROM markets"))
        await advance(sim, 6 * 3600, steps=24)
        for name in ("metadata", "resolutions", "prices"):
            await run_cycle(collection, supervisor, name)
        tiers_after = dict(await pool.fetch("SELECT market_id, tier FROM markets"))
    stored = await counts(
        pool,
        "events",
        "markets",
        "tokens",
        "price_snapshots",
        "orderbook_snapshots",
        "market_resolutions",
        "task_runs",
    )
    assert all(stored[t] > 0 for t in stored), stored
    assert stored["tokens"] == 2 * stored["markets"], "every simulated market is binary"
    moved = [m for m, tier in tiers_before.items() if tiers_after.get(m) != tier]
    assert moved, "six simulated hours must move some market to a nearer tier or close it"
    assert any(
        tiers_after[m] is not None
        and tiers_before[m] is not None
        and tiers_after[m] > tiers_before[m]
        for m in moved
    )
    # Rows of one price cycle share one timestamp, aligned to the cadence.
    stamps = await pool.fetch("SELECT DISTINCT ts FROM price_snapshots ORDER BY ts")
    assert len(stamps) == 2
    assert all(r["ts"].second == 0 and r["ts"].microsecond == 0 for r in stamps)
    resolutions = await pool.fetch("SELECT outcome_kind, winning_token_id FROM market_resolutions")
    assert {r["outcome_kind"] for r in resolutions} <= {"winner", "fifty_fifty", "void"}
    for r in resolutions:
        if r["outcome_kind"] == "winner":
            assert (
                await pool.fetchval(
                    "SELECT count(*) FROM tokens WHERE token_id = $1", r["winning_token_id"]
                )
                == 1
            )


async def test_books_are_stored_with_statistics(sim: Simulator, pool: asyncpg.Pool) -> None:
    async with open_daemon(settings_for(sim), pool, sim_clock(sim)) as collection:
        supervisor = Supervisor(pool, collection.jobs())
        await run_cycle(collection, supervisor, "metadata")
        await run_cycle(collection, supervisor, "orderbooks")
        again = await collection.books.cycle()
    row = await pool.fetchrow(
        "SELECT * FROM orderbook_snapshots WHERE bid_levels > 5 AND ask_levels > 5 LIMIT 1"
    )
    assert row is not None
    bids, asks = row["bids"], row["asks"]
    assert len(bids) == 5
    assert [b[0] for b in bids] == sorted((b[0] for b in bids), reverse=True)
    assert [a[0] for a in asks] == sorted(a[0] for a in asks)
    assert row["best_bid"] == bids[0][0]
    assert row["best_ask"] == asks[0][0]
    assert row["best_bid"] < row["best_ask"]
    assert row["spread"] == pytest.approx(row["best_ask"] - row["best_bid"])
    assert row["bid_depth_5"] == pytest.approx(sum(b[1] for b in bids))
    assert -1 <= row["imbalance"] <= 1
    assert len(row["book_hash"]) == 40
    assert again.rows == 0, "a token is fetched once per cadence slot"


async def test_faults_are_survived_and_bad_records_skipped(
    sim: Simulator, pool: asyncpg.Pool
) -> None:
    sim.faults.set("http_5xx=0.2,http_429=0.1,retry_after_s=0,missing_fields=0.05")
    fast = {"max_retries": 12, "backoff_base_s": 0.01, "backoff_max_s": 0.05}
    settings = settings_for(sim, rate_limits=fast)
    async with open_daemon(settings, pool, sim_clock(sim)) as collection:
        supervisor = Supervisor(pool, collection.jobs())
        for name in ("metadata", "prices", "orderbooks"):
            await run_cycle(collection, supervisor, name)
        health = collection.health_extras()
    stored = await counts(pool, "markets", "price_snapshots", "orderbook_snapshots")
    errors = health["source_errors"]
    assert isinstance(errors, dict)
    assert sum(sum(kinds.values()) for kinds in errors.values()) > 0, errors
    assert stored["markets"] > 0
    assert stored["price_snapshots"] > 0
    assert stored["orderbook_snapshots"] > 0
    stats = sim.faults.snapshot()
    assert stats["injected"], stats


async def test_a_failing_collector_is_recorded_then_recovers(
    sim: Simulator, pool: asyncpg.Pool
) -> None:
    settings = settings_for(sim, rate_limits={"max_retries": 1, "backoff_base_s": 0.01})
    async with open_daemon(settings, pool, sim_clock(sim)) as collection:
        supervisor = Supervisor(pool, collection.jobs())
        await run_cycle(collection, supervisor, "metadata")
        sim.faults.set("clob:http_5xx=1.0")
        prices = next(j for j in supervisor.jobs if j.name == "prices")
        assert not await supervisor.run_once(prices)
        sim.faults.clear()
        assert await supervisor.run_once(prices)
    runs = await pool.fetch(
        "SELECT status, error_message FROM task_runs WHERE task_name = 'prices' ORDER BY id"
    )
    assert [r["status"] for r in runs] == ["failed", "success"]
    assert "500" in runs[0]["error_message"] or "5" in runs[0]["error_message"]
    health = await pool.fetchrow("SELECT * FROM collector_health WHERE collector = 'prices'")
    assert health["consecutive_failures"] == 0
    assert health["last_error"] is not None


def _env(dsn: str, sim: Simulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env.update(sim.env())
    env["POLYFARM_DATABASE_URL"] = dsn
    env["POLYFARM_DATA_DIR"] = tempfile.mkdtemp(prefix="polyfarm-collect-")
    env["POLYFARM_BACKFILL__FIRST_START"] = "false"  # the collectors' own rows only
    return env


async def test_collect_once_cli_then_stats_json(sim: Simulator, db_dsn: str) -> None:
    once = await asyncio.create_subprocess_exec(
        POLYFARM,
        "collect",
        "--once",
        "--ws-seconds",
        "0",
        env=_env(db_dsn, sim),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(once.communicate(), 120)
    assert once.returncode == 0, err.decode()[-3000:]
    assert "metadata" in out.decode()
    assert "FAILED" not in out.decode()
    stats = await asyncio.create_subprocess_exec(
        POLYFARM,
        "stats",
        "--json",
        env=_env(db_dsn, sim),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(stats.communicate(), 60)
    assert stats.returncode == 0, err.decode()
    report = json.loads(out.decode().strip().splitlines()[-1])
    for table in (
        "events",
        "markets",
        "tokens",
        "price_snapshots",
        "orderbook_snapshots",
        "task_runs",
        "collector_health",
    ):
        assert report[table]["rows"] > 0, table
        assert report[table]["latest"] is not None or table == "tokens"


async def test_sigterm_stops_cleanly_and_loses_nothing(sim: Simulator, db_dsn: str) -> None:
    env = _env(db_dsn, sim)
    env["POLYFARM_INTERVALS__PRICES_S"] = "1"
    env["POLYFARM_INTERVALS__ORDERBOOKS_S"] = "1"
    daemon = await asyncio.create_subprocess_exec(
        POLYFARM,
        "collect",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    conn = await asyncpg.connect(db_dsn)
    try:
        for _ in range(300):
            await asyncio.sleep(0.1)
            if (
                await conn.fetchval("SELECT to_regclass('price_snapshots') IS NOT NULL")
                and await conn.fetchval("SELECT count(DISTINCT ts) FROM price_snapshots") >= 2
            ):
                break
        daemon.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(daemon.communicate(), 60)
        assert daemon.returncode == 0, err.decode()[-3000:]
        running = await conn.fetchval("SELECT count(*) FROM task_runs WHERE status = 'running'")
        per_cycle = await conn.fetch(
            "SELECT ts, count(*) AS n FROM price_snapshots GROUP BY ts ORDER BY ts"
        )
        tokens = await conn.fetchval(
            "SELECT count(*) FROM tokens t JOIN markets m USING (market_id) WHERE NOT m.closed"
        )
    finally:
        await conn.close()
    assert running == 0
    assert len(per_cycle) >= 2
    # Each cycle is all or nothing: a full set of rows per timestamp, never a torn one.
    assert {r["n"] for r in per_cycle} == {tokens}
    assert "collector stopped" in err.decode()


async def test_a_market_listed_and_closed_between_two_scans_is_still_recorded(
    pool: asyncpg.Pool,
) -> None:
    """No open-market scan sees it; the next cycle's look at recently closed markets does, so
    the stream can repair its fills (its ``new_market`` announcement may have been lost)."""
    config = SimConfig(
        markets=20, seed=5, speed=0.0, start_time=FIXED_START, rate_limits=False,
        new_markets_per_hour=40.0,
    )  # fmt: skip
    async with Simulator(config) as sim:
        settings = settings_for(sim)
        async with open_daemon(settings, pool, sim_clock(sim)) as collection:
            supervisor = Supervisor(pool, collection.jobs())
            await run_cycle(collection, supervisor, "metadata")
            listed_then = {m.gamma_id for m in sim.world.markets}
            await advance(sim, 2 * 3600, steps=48)
            await run_cycle(collection, supervisor, "metadata")
            catalog = collection.catalog
        between = {
            str(m.gamma_id)
            for m in sim.world.markets
            if m.gamma_id not in listed_then and m.closed_s is not None
        }
    assert between, "the scenario must list and close some markets between the scans"
    assert all(catalog.markets[m].closed for m in between)
    stored = {r[0] for r in await pool.fetch("SELECT market_id FROM markets WHERE closed")}
    assert between <= stored
    tokens = await pool.fetchval(
        "SELECT count(*) FROM tokens WHERE market_id = ANY($1::text[])", list(between)
    )
    assert tokens == 2 * len(between)


@pytest.fixture
async def still_sim() -> AsyncIterator[Simulator]:
    """No quotes, no trades, no new markets: no book changes while the clock moves."""
    config = SimConfig(
        markets=60, seed=11, speed=0.0, start_time=FIXED_START, rate_limits=False,
        quote_rate=0.0, trade_rate=0.0, new_markets_per_hour=0.0,
    )  # fmt: skip
    async with Simulator(config) as simulator:
        yield simulator


async def test_an_unchanged_book_is_stored_again_only_in_a_new_keyframe_window(
    still_sim: Simulator, pool: asyncpg.Pool
) -> None:
    """Each token is stored in its first slot, then once per keyframe window (15 minutes
    here), and again after a restart; with the skipping turned off, in every slot."""
    sim, keyframe_s = still_sim, 900.0
    settings = settings_for(sim, unchanged={"keyframe_s": keyframe_s})
    # (keyframe window, rows written) per 5-minute slot. Markets close meanwhile: a token
    # without a book on the venue gets no row either way.
    slots: list[tuple[int, int]] = []
    async with open_daemon(settings, pool, sim_clock(sim)) as collection:
        supervisor = Supervisor(pool, collection.jobs())
        await run_cycle(collection, supervisor, "metadata")
        for _ in range(7):
            slots.append(
                (int(sim.clock.now() // keyframe_s), (await collection.books.cycle()).rows)
            )
            sim.clock.advance(300)
            await run_cycle(collection, supervisor, "metadata")
    windows = [w for w, _ in slots]
    assert len(set(windows)) >= 3
    for i, (window, rows) in enumerate(slots):
        new_window = i == 0 or window != windows[i - 1]
        assert rows > 80 if new_window else rows == 0, slots
    per_token = await pool.fetch(
        "SELECT count(*) AS rows, count(DISTINCT floor(extract(epoch FROM ts) / $1)) AS windows "
        "FROM orderbook_snapshots GROUP BY token_id",
        keyframe_s,
    )
    assert all(r["rows"] == r["windows"] for r in per_token), "one row per token and window"

    assert windows[-1] == int(sim.clock.now() // keyframe_s), "the next slot is in the window"
    async with open_daemon(settings, pool, sim_clock(sim)) as collection:
        await run_cycle(collection, Supervisor(pool, collection.jobs()), "metadata")
        assert (await collection.books.cycle()).rows > 80, "a restart writes every token"
    off = settings_for(sim, unchanged={"skip": False, "keyframe_s": keyframe_s})
    async with open_daemon(off, pool, sim_clock(sim)) as collection:
        await run_cycle(collection, Supervisor(pool, collection.jobs()), "metadata")
        for _ in range(2):
            sim.clock.advance(300)
            assert (await collection.books.cycle()).rows > 80


async def test_over_the_disk_budget_the_far_tiers_rest_books_come_less_often(
    sim: Simulator, pool: asyncpg.Pool
) -> None:
    """As with the stream's snapshots: T0/T1 book slots stretch fourfold (300 s → 1,200 s),
    the nearer tiers keep theirs."""
    # 10 minutes into a 20-minute window: a 300 s slot starts here, a 1,200 s one does not.
    sim.clock.advance((sim.clock.now() // 1200 + 1) * 1200 + 600 - sim.clock.now())
    slots: dict[bool, dict[int | None, set[float]]] = {}
    for over_budget in (False, True):
        budget = {"disk_budget_gb": 0.001} if over_budget else {}
        settings = settings_for(sim, storage=budget)
        async with open_daemon(settings, pool, sim_clock(sim)) as collection:
            await run_cycle(collection, Supervisor(pool, collection.jobs()), "metadata")
            await collection.disk.refresh()
            by_tier: dict[int | None, set[float]] = {}
            for _, market, slot in await collection.books.due(sim_clock(sim)()):
                by_tier.setdefault(market.tier, set()).add(slot.timestamp())
            slots[over_budget] = by_tier
    now = sim.clock.now()
    assert {0, 1} & slots[False].keys(), "the simulated venue has far-from-close markets"
    for tier in (0, 1):
        assert slots[False].get(tier, {now}) == {now}
        assert slots[True].get(tier, {now - 600}) == {now - 600}
    for tier in (2, 3, 4):
        assert slots[True].get(tier) == slots[False].get(tier)
