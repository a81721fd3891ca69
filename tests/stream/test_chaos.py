"""Chaos against the simulator's faults and ground truth: no fill lost, none stored twice.

Several simulated hours under random drops, silent stalls, repeated, reordered and unreadable
frames and corrupted hashes; afterwards the ``trades`` table must equal ``/_sim/truth/trades``
exactly, every live book must equal the simulator's, and every lost window must be in
``feed_gaps``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from polyfarm.polymarket.domain import WsCount
from polyfarm.sim import Simulator
from polyfarm.stream.counts import StreamEvent

from ..conftest import Server
from ..sim.support import make_config
from .fill_audit import missing_fills_report, watching
from .harness import (
    advance,
    settle,
    stored_identities,
    stream_settings,
    streaming,
    truth_identity,
    truth_trades,
    wait_for,
)

CHAOS = (
    "ws_drop=0.001,ws_stall=0.0004,ws_duplicate=0.02,ws_out_of_order=0.02,hash_mismatch=0.02,"
    "ws_malformed=0.002"
)
HOURS = 3
STEP_S = 20


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server  # TimescaleDB adds nothing to this scenario


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = make_config(markets=40, seed=23, new_markets_per_hour=4.0, trade_rate=0.015)
    async with Simulator(config) as simulator:
        yield simulator


@pytest.mark.timeout(240)
async def test_chaos_hours_lose_no_fill_and_store_none_twice(
    sim: Simulator, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = stream_settings(sim, tmp_path, stall_timeout_s=0.6)
    async with streaming(sim, pool, settings) as s, watching(s.run, sim) as timeline:
        run = s.run
        run.checker.refetch_min_interval_s = 0.5
        began_ms = sim.clock.now_ms()
        sim.faults.set(CHAOS)
        for step in range(HOURS * 3600 // STEP_S):
            await advance(sim, STEP_S, 1)
            if step % 90 == 89:  # a metadata scan every 30 simulated minutes
                await s.cycle("metadata")
        await settle(sim, run, rescan=lambda: s.cycle("metadata"))
        books = await s.collection.clients.clob.get_books(list(run.books))
        live = {t: b for t, b in run.books.items() if b.ready}
        unequal = [t for t, b in live.items() if t in books.items and not b.matches(books.items[t])]
        injected = Counter(sim.faults.counts)
        stats = run.repairer.stats
        counts = run.counts.copy()
        lost_sessions = sum(s.connection.sessions - 1 for s in run.subscriptions.shards.values())

    truth = [t for t in await truth_trades(sim) if t["timestamp_ms"] > began_ms]
    expected = Counter(truth_identity(t) for t in truth)
    stored = await stored_identities(pool)
    missing = expected - stored
    extra = stored - expected
    assert len(truth) > 3000, "the scenario must be busy enough to mean something"
    emitted, kept = len(truth), sum(stored.values())
    lost, twice = sum(missing.values()), sum(extra.values())
    print(f"fills emitted {emitted}, stored {kept}, missing {lost}, extra {twice}")
    if missing:
        report = await missing_fills_report(missing, truth, pool, sim, timeline)
        raise AssertionError(f"{lost} of {emitted} fills missing: {report}")
    assert not extra, f"{sum(extra.values())} fills stored that never happened (or twice)"
    assert await pool.fetchval("SELECT count(*) FROM trades") == len(truth)

    # The faults really happened, and each was met where it should be.
    print("faults injected:", dict(injected), "stream:", counts, stats)
    assert injected["ws_drop"] >= 5, injected
    assert injected["ws_stall"] >= 3, injected
    assert injected["ws_duplicate"] >= 50, injected
    assert injected["ws_out_of_order"] >= 50, injected
    assert injected["ws_malformed"] >= 5, injected
    assert counts[StreamEvent.REPEATED_FILL] > 0, "repeated frames carried fills that were dropped"
    assert counts[StreamEvent.HASH_MISMATCH] > 0, counts
    assert counts[StreamEvent.REFETCH_REPLACED] > 0, counts
    # Every drop and stall cost its socket (give or take one on a connection we closed
    # ourselves because its markets ended before the fault showed).
    assert lost_sessions >= 0.9 * (injected["ws_drop"] + injected["ws_stall"]) - 1
    # A stall is confirmed by a book that moved, or by one that is gone (its market closed
    # while the socket was silent: more of them the slower the machine runs the test).
    confirmed = counts[StreamEvent.STALL_CONFIRMED] + counts[StreamEvent.STALL_CONFIRMED_BOOK_GONE]
    assert confirmed >= 0.9 * injected["ws_stall"] - 1, counts
    assert stats.trades_found > 0, stats
    assert stats.unrepaired == 0, stats
    live_share = await pool.fetchval("SELECT count(*) FROM trades WHERE source = 'ws'") / len(truth)
    assert live_share > 0.5, f"only {live_share:.0%} of fills came live: the faults drown the test"

    # After recovery every live book equals the venue's.
    assert len(live) >= 60
    assert unequal == [], f"{len(unequal)} live books differ from the simulator"

    # Every lost trade window is known; all of them were repaired.
    gaps = await pool.fetch("SELECT reason, repaired FROM feed_gaps WHERE stream = 'ws_trades'")
    reasons = Counter(g["reason"].split(";")[0] for g in gaps)
    assert reasons["ws_stall"] > 0, reasons
    assert reasons["ws_closed"] > 0, reasons
    assert reasons["new market"] > 0, reasons
    assert reasons["ws_unreadable_frame"] > 0, reasons
    assert all(g["repaired"] for g in gaps)
    # Every unreadable frame is kept, raw, with its reason.
    quarantined = await pool.fetchval("SELECT count(*) FROM quarantine WHERE source = 'ws'")
    assert quarantined >= injected["ws_malformed"], (quarantined, injected)


@pytest.mark.timeout(60)
async def test_a_silent_stall_is_detected_within_the_watchdog_window(
    sim: Simulator, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = stream_settings(sim, tmp_path, stall_timeout_s=1.5)
    async with streaming(sim, pool, settings) as s:
        run = s.run
        await advance(sim, 20, 5, pause_s=0.05)
        conn = next(iter(run.subscriptions.shards.values())).connection
        stream = conn.stream
        assert stream is not None
        sessions, pongs = conn.sessions, run.ws_counters.get(WsCount.CONTROL_PONG)
        sim.faults.set("ws_stall=1.0")  # the next message stalls every connection
        await advance(sim, 5, 1, pause_s=0)
        sim.faults.clear()
        await wait_for(lambda: stream.last_data_at is not None, "data before the stall")
        last_data = stream.last_data_at
        await wait_for(lambda: conn.sessions > sessions, "the socket to be replaced", 10)
        detected = time.monotonic()
        assert last_data is not None
        silence = detected - last_data
        print(f"stall detected after {silence:.2f} s of silence (watchdog {1.5} s)")
        assert 1.5 <= silence <= 1.5 + 1.2, f"stall detected after {silence:.2f} s of silence"
        assert run.ws_counters.get(WsCount.CONTROL_PONG) > pongs + 3, "PONGs kept coming"
        assert conn.stalls >= 1
        await wait_for(lambda: all(b.ready for b in run.books.values()), "fresh snapshots")


@pytest.mark.timeout(60)
async def test_a_quiet_connection_keeps_its_socket(
    sim: Simulator, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Silence while nothing happens on the venue (frozen clock) is not a stall."""
    settings = stream_settings(sim, tmp_path, stall_timeout_s=0.4)
    async with streaming(sim, pool, settings) as s:
        shards = list(s.run.subscriptions.shards.values())
        sessions = [shard.connection.sessions for shard in shards]
        await asyncio.sleep(3.0)
        assert [shard.connection.sessions for shard in shards] == sessions
        assert all(shard.connection.quiet_checks >= 2 for shard in shards)
        assert s.run.counts[StreamEvent.QUIET_CONNECTION] >= 2 * len(shards)
