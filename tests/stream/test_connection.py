"""One shard's connection against the simulator's WebSocket: the socket carries what is wanted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from polyfarm.polymarket.domain import BookSnapshot, Reject
from polyfarm.polymarket.ws import MarketStream
from polyfarm.settings import WebSocketSettings
from polyfarm.sim import Simulator
from polyfarm.stream.connection import SessionEnd, SessionHooks, ShardConnection, Watermark

from ..sim.support import make_config
from .harness import wait_for

WS = WebSocketSettings(ping_interval_s=0.2, reconnect_base_s=0.05, reconnect_max_s=0.2)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(make_config(markets=20, seed=7)) as simulator:
        yield simulator


class OvertakenStream(MarketStream):
    """A stream whose connect is overtaken by ``meanwhile``: subscription changes made after
    the stream was created with the assets then wanted, before its socket is open (as when a
    market is placed on a connection that is being replaced)."""

    def __init__(self, *args: Any, meanwhile: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._meanwhile = meanwhile

    async def open(self) -> None:
        await self._meanwhile()
        await super().open()


def book_recorder(books: set[str]) -> SessionHooks:
    def handle(message: object, stamp: float, mark: Watermark) -> None:
        if isinstance(message, BookSnapshot):
            books.add(message.book.asset_id)

    async def no_stall(conn: ShardConnection) -> bool:
        return False

    def ignore(conn: ShardConnection, detail: SessionEnd | Reject | None = None) -> None:
        pass

    return SessionHooks(
        session_started=ignore, first_data=ignore, session_lost=ignore, handle=handle,
        backpressure=lambda: None, confirm_stall=no_stall, frame_rejected=ignore,
    )  # fmt: skip


@pytest.mark.timeout(30)
async def test_subscription_changes_made_while_the_socket_connects_reach_it(
    sim: Simulator,
) -> None:
    """Otherwise an added market stays off the socket, silent, until the next reconnect."""
    kept, gone, added = (m.yes_token for m in sim.world.open_markets()[:3])
    books: set[str] = set()
    connection: ShardConnection

    def open_stream(assets: list[str], on_reject: Callable[[Reject], None]) -> MarketStream:
        async def meanwhile() -> None:
            if connection.sessions == 0:
                await connection.update([added], [gone])

        return OvertakenStream(
            sim.ws_url, assets, settings=WS, on_reject=on_reject, meanwhile=meanwhile
        )

    connection = ShardConnection(
        shard=0, assets=dict.fromkeys([kept, gone]), open_stream=open_stream, settings=WS,
        hooks=book_recorder(books),
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(connection.run(stop))
    try:
        await wait_for(lambda: added in books, "the added market's book", limit_s=5)
        stream = connection.stream
        assert stream is not None
        assert stream.asset_ids == (kept, added)
        assert connection.sessions == 1  # sent on that socket, not by a reconnect
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
