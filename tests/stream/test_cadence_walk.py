"""The cadence writer's walk over every live book yields to the event loop between batches:
a far-tier slot takes tens of thousands of tokens at the venue's scale, and a loop held that
long misses the PINGs that keep the WebSocket connections open."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from polyfarm.sim import Simulator
from polyfarm.stream import cadence

from ..conftest import Server
from ..sim.support import make_config
from .harness import advance, settle, stream_settings, streaming


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server


async def loop_turns_during(work: asyncio.Future[object]) -> int:
    """How many times another task ran while ``work`` was under way."""
    turns = 0

    async def count() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    counter = asyncio.create_task(count())
    await asyncio.sleep(0)  # the counter is waiting for its first turn
    started = turns
    try:
        await work
    finally:
        counter.cancel()
    return turns - started


@pytest.mark.timeout(120)
async def test_a_slot_of_many_tokens_is_walked_in_batches_with_the_loop_running_between(
    pool: asyncpg.Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Simulator(make_config(markets=30, seed=5)) as sim:
        settings = stream_settings(sim, tmp_path)
        async with streaming(sim, pool, settings) as s:
            await advance(sim, 2 * 60, 30, pause_s=0.02)
            await settle(sim, s.run)
            usable = sum(book.usable for book in s.run.books.values())
            monkeypatch.setattr(cadence, "WALK_BATCH", 4)
            # An hour slot: every tier's cadence divides it, so every usable token is due.
            hour = datetime.fromtimestamp((sim.clock.now() // 3600 + 1) * 3600 + 1, UTC)
            walk = asyncio.ensure_future(s.run.cadence.due_rows(hour))
            turns = await loop_turns_during(walk)
            books, features = walk.result()
    assert usable > 8
    assert books
    assert features
    assert turns >= usable // 4 - 1
