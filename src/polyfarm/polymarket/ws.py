"""Asyncio shell around ``MarketProtocol``: one market-channel connection for a list of assets.

No background task: keepalive ``PING``s are sent from the receive loop itself (the wait for the
next frame times out when a ping is due), so the stream owns nothing that could leak. Sharding
across connections and stall recovery live with the supervisor; ``last_data_at`` is the signal.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Self

import aiohttp

from polyfarm.aio import AsyncResource
from polyfarm.backoff import Backoff
from polyfarm.clock import Clock, utc_now
from polyfarm.errors import RateLimitedError, TransientSourceError
from polyfarm.logs import get_logger
from polyfarm.polymarket.domain import Counters, Reject, WsMessage
from polyfarm.polymarket.http import ClientState, Sleep
from polyfarm.polymarket.ws_protocol import FrameResult, MarketProtocol
from polyfarm.settings import Settings, WebSocketSettings

MAX_FRAME_BYTES = 32 * 1024 * 1024  # initial dumps of hundreds of books arrive as one array
_RAW_LOG_BYTES = 2_000


class StreamClosedError(TransientSourceError):
    """The server closed or dropped the socket; reconnect and resubscribe."""


class MarketStream(AsyncResource):
    """``async with MarketStream(url, assets, settings=...) as stream: async for msg in stream``.

    Yields domain messages (each stamped with its receive time). Bad frames are logged with the
    raw payload, counted in ``counters`` and skipped. ``last_data_at`` is the monotonic time of
    the last data frame (control text such as ``PONG`` does not count).
    """

    def __init__(
        self,
        url: str,
        asset_ids: Sequence[str],
        *,
        settings: WebSocketSettings | None = None,
        counters: Counters | None = None,
        user_agent: str = "polyfarm/0.1 (+market-data recorder)",
        session: aiohttp.ClientSession | None = None,
        custom_features: bool = True,
        wall_clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        on_reject: Callable[[Reject], None] | None = None,
    ) -> None:
        self.url = url
        self.settings = settings or WebSocketSettings()
        self.counters = counters if counters is not None else Counters()
        self.protocol = MarketProtocol(
            asset_ids,
            ping_interval_s=self.settings.ping_interval_s,
            counters=self.counters,
            custom_features=custom_features,
        )
        self.state = ClientState.UNOPENED
        self._user_agent = user_agent
        self._session = session
        self._owns_session = session is None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: deque[WsMessage] = deque()
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._log = get_logger(__name__, url=url)
        # Told of every frame or message that could not be read: it may have held a fill, so
        # the owner records a lost window (and quarantines the payload).
        # Told of every frame the decoder refused (beside the log line), e.g. to quarantine it.
        self._on_reject = on_reject

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        asset_ids: Sequence[str],
        *,
        counters: Counters | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> MarketStream:
        return cls(
            settings.ws_url,
            asset_ids,
            settings=settings.websocket,
            counters=counters,
            user_agent=settings.rate_limits.user_agent,
            session=session,
        )

    @property
    def last_data_at(self) -> float | None:
        """Monotonic time (``time.monotonic`` unless injected) of the last data frame."""
        return self.protocol.last_data_at

    @property
    def asset_ids(self) -> tuple[str, ...]:
        return self.protocol.asset_ids

    async def open(self) -> None:
        if self.state is not ClientState.UNOPENED:
            raise RuntimeError(f"cannot open a {self.state.value} stream")
        self.state = ClientState.OPENED  # from here on close() releases whatever was acquired
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._ws = await self._connect(self._session)
        await self._ws.send_str(self.protocol.connection_opened(self._monotonic()))

    async def _connect(self, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        try:
            return await session.ws_connect(
                self.url,
                headers={"User-Agent": self._user_agent},
                max_msg_size=MAX_FRAME_BYTES,
                autoping=True,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 429:  # too many connections opened at once (nautilus RFC #2238)
                raise RateLimitedError(f"handshake: {exc}", url=self.url, retry_after=None) from exc
            raise TransientSourceError(
                f"handshake: {exc}", url=self.url, status=exc.status
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientSourceError(
                f"connect: {type(exc).__name__}: {exc}", url=self.url
            ) from exc

    async def close(self) -> None:
        if self.state is ClientState.OPENED:
            if self._ws is not None:
                await self._ws.close()
            if self._owns_session and self._session is not None:
                await self._session.close()
        self.state = ClientState.CLOSED

    async def subscribe(self, asset_ids: Sequence[str]) -> None:
        """Add assets on the open socket (``operation: subscribe``)."""
        ws = self._require_ws()
        frame = self.protocol.subscribe(asset_ids)
        if frame is not None:
            await ws.send_str(frame)

    async def unsubscribe(self, asset_ids: Sequence[str]) -> None:
        ws = self._require_ws()
        frame = self.protocol.unsubscribe(asset_ids)
        if frame is not None:
            await ws.send_str(frame)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> WsMessage:
        while not self._pending:
            await self._receive_once()
        return self._pending.popleft()

    def _require_ws(self) -> aiohttp.ClientWebSocketResponse:
        if self.state is not ClientState.OPENED or self._ws is None:
            raise RuntimeError(f"stream is {self.state.value}; use `async with` to open it")
        return self._ws

    async def _receive_once(self) -> None:
        """Send a due PING, then wait for one frame at most until the next PING is due."""
        ws = self._require_ws()
        now = self._monotonic()
        if self.protocol.ping_due(now):
            await ws.send_str(self.protocol.ping_sent(now))
        next_ping = self.protocol.next_ping_at
        timeout = None if next_ping is None else max(0.0, next_ping - self._monotonic())
        try:
            message = await ws.receive(timeout=timeout)
        except TimeoutError:
            return  # a ping is due; the loop sends it
        if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            self._handle(
                self.protocol.receive(
                    message.data, received_at=self._wall_clock(), now=self._monotonic()
                )
            )
            return
        if message.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
        ):
            raise StreamClosedError(f"websocket closed (code {ws.close_code})", url=self.url)
        if message.type is aiohttp.WSMsgType.ERROR:
            raise StreamClosedError(f"websocket error: {ws.exception()}", url=self.url)

    def _handle(self, result: FrameResult) -> None:
        self._pending.extend(result.messages)
        for reject in result.rejects:
            self._log.warning(
                "ws_frame_rejected",
                reason=reject.reason,
                raw=reject.raw[:_RAW_LOG_BYTES].decode("utf-8", "replace"),
            )
            if self._on_reject is not None:
                self._on_reject(reject)


async def reconnecting(
    open_stream: Callable[[], MarketStream],
    *,
    settings: WebSocketSettings | None = None,
    sleep: Sleep = asyncio.sleep,
    jitter: Callable[[], float] = random.random,
) -> AsyncIterator[MarketStream]:
    """``async for stream in reconnecting(factory): ...`` — a fresh, opened stream each turn.

    Connection failures back off exponentially with jitter; the delay resets after a connection
    that delivered data. The consumer handles ``TransientSourceError`` from the stream and
    ``continue``s; leaving the loop closes the current stream.
    """
    settings = settings or WebSocketSettings()
    backoff = Backoff(settings.reconnect_base_s, settings.reconnect_max_s)
    failures = 0
    while True:
        stream = open_stream()
        try:
            async with stream:
                yield stream
        except TransientSourceError:
            pass  # a failed connect: back off below
        failures = 0 if stream.last_data_at is not None else failures + 1
        if failures:
            await sleep(backoff.delay(failures, jitter()))
