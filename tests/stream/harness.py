"""Running the stream against the simulator: settings, start/stop, the clock, ground truth."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from polyfarm.daemon import Daemon, open_daemon
from polyfarm.runtime import Supervisor
from polyfarm.settings import Settings
from polyfarm.sim import Simulator
from polyfarm.store.rows import canonical_decimal
from polyfarm.stream.service import StreamRun

# Real-time knobs scaled down so a chaos run takes seconds: the watchdog fires after 1 s of
# silence (PINGs every 0.2 s keep answering PONG all along), reconnects retry within 0.2 s.
FAST_WS: dict[str, object] = {
    "assets_per_connection": 20,
    "stall_timeout_s": 1.0,
    "ping_interval_s": 0.2,
    "reconnect_base_s": 0.05,
    "reconnect_max_s": 0.2,
    "repair_delay_s": 0.0,
    "subscription_sync_s": 0.5,
    "book_refetch_per_s": 50.0,
    "hash_checks_per_s": 5000.0,
    "flush_interval_s": 0.05,
}
TradeIdentity = tuple[str, int, str, str, str]
RESCAN_EVERY = 5  # settle steps between metadata scans


def sim_clock(sim: Simulator) -> Callable[[], datetime]:
    return lambda: datetime.fromtimestamp(sim.clock.now(), UTC)


def stream_settings(
    sim: Simulator, tmp: Path, top: dict[str, Any] | None = None, **websocket: object
) -> Settings:
    """Settings for the simulator; ``websocket`` keys override ``FAST_WS``, ``top`` the rest."""
    values: dict[str, Any] = {
        "gamma_url": sim.gamma_url,
        "clob_url": sim.clob_url,
        "data_url": sim.data_url,
        "ws_url": sim.ws_url,
        "data_dir": tmp,
        "websocket": {**FAST_WS, **websocket},
        **(top or {}),
    }
    return Settings(**values)


@dataclass
class Streaming:
    collection: Daemon
    supervisor: Supervisor
    run: StreamRun

    async def cycle(self, name: str) -> None:
        job = next(j for j in self.supervisor.jobs if j.name == name)
        assert await self.supervisor.run_once(job), self.supervisor.state[name].last_error


@asynccontextmanager
async def streaming(
    sim: Simulator, pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[Streaming]:
    """Metadata scan, then the stream service until the block ends (clean stop)."""
    async with open_daemon(settings, pool, sim_clock(sim)) as collection:
        supervisor = collection.supervisor()
        job = next(j for j in supervisor.jobs if j.name == "metadata")
        assert await supervisor.run_once(job)
        service = collection.stream
        assert service is not None
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:
            run = await wait_for(lambda: service.current, "the stream run to start")
            await wait_for(lambda: all_books_ready(run), "every book's first snapshot")
            yield Streaming(collection, supervisor, run)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def wait_for(probe: Callable[[], Any], what: str, limit_s: float = 20.0) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def all_books_ready(run: StreamRun) -> bool:
    return bool(run.books) and all(b.ready for b in run.books.values())


async def advance(sim: Simulator, seconds: float, steps: int, pause_s: float = 0.01) -> None:
    """Move the simulated clock; real time passes between steps so frames get read."""
    for _ in range(steps):
        sim.clock.advance(seconds / steps)
        sim.step()
        await asyncio.sleep(pause_s)


def quiet(run: StreamRun) -> bool:
    connected = all(s.connection.stream is not None for s in run.subscriptions.shards.values())
    return (
        connected
        and run.repairer.idle
        and run.checker.idle
        and not run.trades
        and not run.deltas
        and not run.coverage.losses
    )


async def settle(
    sim: Simulator,
    run: StreamRun,
    limit_s: float = 30.0,
    rescan: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Faults off; keep time moving until every loss is repaired and every queue empty.
    ``rescan`` (a metadata scan) runs every few steps: a connection lost after all its markets
    closed gets no data again, so its window closes only once a scan drops those markets."""
    sim.faults.clear()
    deadline = time.monotonic() + limit_s
    steps = 0
    while time.monotonic() < deadline:
        await advance(sim, 10, 2, pause_s=0.05)
        await asyncio.sleep(0.3)
        steps += 1
        if rescan is not None and steps % RESCAN_EVERY == 0:
            await rescan()
        if quiet(run):
            await asyncio.sleep(0.5)  # the last frames of the last step
            if quiet(run):
                return
    raise AssertionError(f"stream did not settle: {run.repairer.stats} {run.counts}")


async def truth_trades(sim: Simulator) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    since = 0
    async with aiohttp.ClientSession() as http:
        while True:
            url = f"{sim.base_url}/_sim/truth/trades"
            params = {"since_id": since, "limit": 50_000}
            async with http.get(url, params=params) as response:
                body = await response.json()
            rows += body["trades"]
            if body["next_since_id"] is None:
                return rows
            since = body["next_since_id"]


def truth_identity(row: dict[str, Any]) -> TradeIdentity:
    return (
        row["token_id"],
        row["timestamp_ms"] // 1000,
        canonical_decimal(row["price"]),
        canonical_decimal(row["size"]),
        row["side"],
    )


async def stored_identities(pool: asyncpg.Pool) -> Counter[TradeIdentity]:
    rows = await pool.fetch("SELECT token_id, ts, price, size, side FROM trades")
    return Counter(
        (
            r["token_id"],
            int(r["ts"].timestamp()),
            canonical_decimal(repr(r["price"])),
            canonical_decimal(repr(r["size"])),
            r["side"],
        )
        for r in rows
    )
