"""One shard's market-channel connection: reconnects, a data watchdog, dynamic subscriptions.

Liveness is judged on data, not on pings: ``MarketStream.last_data_at`` ignores ``PONG`` and
``NO NEW ASSETS``, and a watchdog running beside the reader fires once no data arrived for
``stall_timeout_s``. It then asks the venue (``confirm_stall``: the connection's books over
REST) whether anything changed meanwhile; if so the socket is stalled and is replaced — a new
connection, the full subscription again, fresh ``book`` snapshots — because re-subscribing on a
frozen socket does not help on the real venue. A connection whose markets simply had nothing
happen keeps its socket (replacing it would only churn connections and snapshots). Reconnects
back off exponentially with jitter (``polyfarm.polymarket.ws.reconnecting``); a connection that
delivered data retries at once.

The session hooks tell the stream what the connection saw, so lost windows can be repaired:
``session_started`` (books of this shard must wait for new snapshots), ``first_data`` (the
subscription is effective again), ``session_lost`` (with the newest venue time seen) and
``frame_rejected`` (an unreadable frame: whatever it carried is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

import aiohttp

from polyfarm.aio import sleep_unless
from polyfarm.errors import TransientSourceError
from polyfarm.logs import get_logger
from polyfarm.polymarket.domain import Reject, WsMessage
from polyfarm.polymarket.http import ClientState
from polyfarm.polymarket.ws import MarketStream, StreamClosedError, reconnecting
from polyfarm.settings import WebSocketSettings

log = get_logger(__name__)
# Messages a connection handles in a row before letting the event loop run other tasks.
YIELD_EVERY = 64


class SessionEnd(enum.Enum):
    """How a session ended; the value is the ``polyfarm_ws_reconnects_total`` reason."""

    STOPPED = "stopped"  # asked to: fills still in flight were not read
    STALL = "stall"
    REPLACED = "replaced"
    CLOSED = "closed"
    ERROR = "error"


class StreamStalledError(TransientSourceError):
    """Connected but silent: no data for the watchdog window. The socket is replaced."""


class SocketReplacedError(TransientSourceError):
    """The stream asked for a new socket (e.g. an asset proved silent)."""


@dataclass
class Watermark:
    """The newest venue time (epoch ms) seen on the current session."""

    ms: int = 0


@dataclass
class SessionHooks:
    session_started: Callable[[ShardConnection], None]
    first_data: Callable[[ShardConnection], None]
    session_lost: Callable[[ShardConnection, SessionEnd], None]
    handle: Callable[[WsMessage, float, Watermark], None]
    backpressure: Callable[[], Awaitable[None] | None]
    # Asked after ``stall_timeout_s`` of silence: did the venue move while we heard nothing?
    confirm_stall: Callable[[ShardConnection], Awaitable[bool]]
    # A frame or message that could not be read: whatever it held is lost.
    frame_rejected: Callable[[ShardConnection, Reject], None]


@dataclass
class ShardConnection:
    shard: int
    assets: dict[str, None]
    # Opens a socket for these assets, telling the callback of every refused frame.
    open_stream: Callable[[list[str], Callable[[Reject], None]], MarketStream]
    settings: WebSocketSettings
    hooks: SessionHooks
    monotonic: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = random.random
    stream: MarketStream | None = None
    mark: Watermark = field(default_factory=Watermark)
    sessions: int = 0
    stalls: int = 0
    quiet_checks: int = 0
    _blocked: bool = False
    _replace: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Hold the connection until ``stop`` is set."""

        async def pause(seconds: float) -> None:
            await sleep_unless(stop, seconds)

        # ``reconnecting`` is an async generator (annotated as an iterator): close it with us.
        streams = cast(
            AsyncGenerator[MarketStream, None],
            reconnecting(
                lambda: self.open_stream(list(self.assets), self._frame_rejected),
                settings=self.settings,
                sleep=pause,
                jitter=self.jitter,
            ),
        )
        async with contextlib.aclosing(streams):
            async for stream in streams:
                if stop.is_set():
                    return
                self.hooks.session_lost(self, await self._session(stream, stop))
                if stop.is_set():
                    return

    def _frame_rejected(self, reject: Reject) -> None:
        self.hooks.frame_rejected(self, reject)

    async def _session(self, stream: MarketStream, stop: asyncio.Event) -> SessionEnd:
        """Read until the connection is lost or stopped; returns how it ended (stopped: fills
        still in flight were not read, so coverage ends at the newest one seen)."""
        self.stream, self.mark, self._replace = stream, Watermark(), None
        self.sessions += 1
        self.hooks.session_started(self)
        try:
            await self._catch_up(stream)
            async with asyncio.TaskGroup() as group:
                reader = group.create_task(self._read(stream))
                group.create_task(self._watch(stream, stop, reader))
        except ExceptionGroup as errors:
            lost, other = errors.split(TransientSourceError)
            if other is not None or lost is None:
                raise
            return _session_end(lost.exceptions[0])
        finally:
            self.stream = None
        return SessionEnd.STOPPED

    async def _read(self, stream: MarketStream) -> None:
        try:
            await self._read_messages(stream)
        except (aiohttp.ClientError, ConnectionError) as exc:  # e.g. a PING on a dying socket
            raise StreamClosedError(f"socket failed: {exc!r}") from exc

    async def _read_messages(self, stream: MarketStream) -> None:
        first = True
        handle, mark = self.hooks.handle, self.mark
        since_yield = 0
        async for message in stream:
            if first:
                first = False
                self.hooks.first_data(self)
            handle(message, time.perf_counter(), mark)
            since_yield += 1
            if since_yield >= YIELD_EVERY:
                # Frames already buffered are read without the loop ever running another
                # task: one connection's backlog would otherwise starve the other sockets'
                # PINGs and the writers.
                since_yield = 0
                await asyncio.sleep(0)
            waiting = self.hooks.backpressure()
            if waiting is not None:
                self._blocked = True
                try:
                    await waiting
                finally:
                    self._blocked = False

    async def _watch(
        self, stream: MarketStream, stop: asyncio.Event, reader: asyncio.Task[None]
    ) -> None:
        """Raise ``StreamStalledError`` once ``stall_timeout_s`` passed without data and the
        venue confirms it: a quiet connection (nothing changed on the venue) is left alone."""
        alive = self.monotonic()  # the latest moment the connection was known to be fine
        timeout = self.settings.stall_timeout_s
        while True:
            if self._replace is not None:
                raise SocketReplacedError(self._replace)
            now = self.monotonic()
            alive = max(alive, stream.last_data_at or alive)
            if self._blocked:  # our own back-pressure: silence is not the venue's fault
                alive = now
            if now - alive >= timeout:
                if await self.hooks.confirm_stall(self):
                    self.stalls += 1
                    raise StreamStalledError(f"no data for {now - alive:.1f} s (PONGs ignored)")
                self.quiet_checks += 1
                alive = self.monotonic()
                continue
            await sleep_unless(stop, min(timeout - (now - alive), 1.0))
            if stop.is_set():
                reader.cancel()
                return

    async def _catch_up(self, stream: MarketStream) -> None:
        """Send the changes ``update`` made while this socket was connecting: the stream was
        created with the assets wanted then, and ``update`` had no socket to send them on.
        Unsent, an added market would stay silent until the next reconnect."""
        on_socket = set(stream.asset_ids)
        added = [asset for asset in self.assets if asset not in on_socket]
        removed = [asset for asset in on_socket if asset not in self.assets]
        await self._send(stream, added, removed)

    def replace_socket(self, reason: str) -> None:
        """Ask for a new socket (the watchdog raises within a second)."""
        if self.stream is not None:
            self._replace = reason

    async def update(self, add: Iterable[str], remove: Iterable[str]) -> None:
        """Change the subscription; on the live socket at once, else at the next connect."""
        added = [a for a in add if a not in self.assets]
        removed = [r for r in remove if r in self.assets]
        self.assets.update(dict.fromkeys(added))
        for asset in removed:
            del self.assets[asset]
        stream = self.stream
        if stream is None or stream.state is not ClientState.OPENED:
            return  # the next socket subscribes them, or catches up once it is open
        await self._send(stream, added, removed)

    async def _send(self, stream: MarketStream, added: list[str], removed: list[str]) -> None:
        try:
            if added:
                await stream.subscribe(added)
            if removed:
                await stream.unsubscribe(removed)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            # The reader sees the broken socket too; the reconnect subscribes everything.
            log.info("subscription change not sent", shard=self.shard, error=repr(exc))


def _session_end(error: BaseException) -> SessionEnd:
    if isinstance(error, StreamStalledError):
        return SessionEnd.STALL
    if isinstance(error, SocketReplacedError):
        return SessionEnd.REPLACED
    if isinstance(error, StreamClosedError):
        return SessionEnd.CLOSED
    return SessionEnd.ERROR
