"""The cadence writer's walk over every live book yields to the event loop between batches:
a far-tier slot takes tens of thousands of tokens at the venue's scale, and a loop held that
long misses the PINGs that keep the WebSocket connections open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from polyfarm.settings import Settings
from polyfarm.sim import Simulator
from polyfarm.store.disk import NoPressure
from polyfarm.store.rows import TableSpec
from polyfarm.store.writing import Writer, WriteResult
from polyfarm.stream import cadence
from polyfarm.stream.cadence import CadenceWriter
from polyfarm.stream.service import StreamRun

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


@dataclass
class Settled:
    sim: Simulator
    settings: Settings
    run: StreamRun

    def hour_after(self) -> float:
        """The next hour slot: every tier's cadence divides it, so every usable token is due."""
        return (self.sim.clock.now() // 3600 + 1) * 3600

    def walker(self, writer: Writer) -> CadenceWriter:
        """A cadence writer of its own over the run's live state."""
        run = self.run
        return CadenceWriter(
            books=run.books, activity=run.activity, catalog=run.deps.catalog,
            settings=self.settings, writer=writer, clock=run.deps.clock, disk=NoPressure(),
        )  # fmt: skip


@pytest.fixture
async def settled(pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[Settled]:
    """A stream over 30 simulated markets, two minutes in, with every book received."""
    async with Simulator(make_config(markets=30, seed=5)) as sim:
        settings = stream_settings(sim, tmp_path)
        async with streaming(sim, pool, settings) as s:
            await advance(sim, 2 * 60, 30, pause_s=0.02)
            await settle(sim, s.run)
            yield Settled(sim, settings, s.run)


@pytest.mark.timeout(120)
async def test_a_slot_of_many_tokens_is_walked_in_batches_with_the_loop_running_between(
    settled: Settled, monkeypatch: pytest.MonkeyPatch
) -> None:
    usable = sum(book.usable for book in settled.run.books.values())
    monkeypatch.setattr(cadence, "WALK_BATCH", 4)
    hour = datetime.fromtimestamp(settled.hour_after() + 1, UTC)
    walk = asyncio.ensure_future(settled.run.cadence.due_rows(hour))
    turns = await loop_turns_during(walk)
    books, features = walk.result()
    assert usable > 8
    assert books
    assert features
    assert turns >= usable // 4 - 1


class Recording:
    """The run's writer, noting the size of every write."""

    def __init__(self, inner: Writer) -> None:
        self.inner = inner
        self.sizes: dict[str, list[int]] = {}

    async def write(self, spec: TableSpec, rows: Sequence[Any]) -> WriteResult:
        self.sizes.setdefault(spec.name, []).append(len(rows))
        return await self.inner.write(spec, rows)


@pytest.mark.timeout(120)
async def test_a_slot_s_rows_are_written_in_parts_and_all_stored(
    settled: Settled, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Recording(settled.run.deps.writer)
    monkeypatch.setattr(cadence, "WALK_BATCH", 2)
    monkeypatch.setattr(cadence, "WRITE_BATCH", 8)
    hour = settled.hour_after()
    slot = datetime.fromtimestamp(hour + 1, UTC)
    due, _ = await settled.walker(writer).due_rows(slot)
    await settled.walker(writer).tick(slot)  # a fresh one: due_rows remembered nothing
    stored = await pool.fetch(
        "SELECT token_id FROM orderbook_snapshots WHERE ts = to_timestamp($1)", hour
    )
    book_writes = writer.sizes["orderbook_snapshots"]
    assert len(due) > 8
    assert len(book_writes) > 1
    assert max(book_writes) <= 8
    assert sorted(r["token_id"] for r in stored) == sorted(r.token_id for r in due)
