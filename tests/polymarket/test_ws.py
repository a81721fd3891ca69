"""MarketStream against a real aiohttp WebSocket server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson
import pytest
from aiohttp import WSMsgType, web

from polyfarm.errors import RateLimitedError, TransientSourceError
from polyfarm.polymarket.domain import BookSnapshot, Counters, TradePrint, WsCount
from polyfarm.polymarket.ws import MarketStream, StreamClosedError, reconnecting
from polyfarm.settings import WebSocketSettings
from tests.polymarket.conftest import FakeClock, serve
from tests.polymarket.ws_payloads import TOK_A, TOK_B, trade, ws_book

Behaviour = Callable[[web.WebSocketResponse, list[str]], Awaitable[None]]
FAST = WebSocketSettings(ping_interval_s=0.05, reconnect_base_s=1, reconnect_max_s=4)
STAMP = datetime(2026, 2, 2, tzinfo=UTC)


def ws_app(
    behaviour: Behaviour, received: list[str], connections: list[int] | None = None
) -> web.Application:
    """Each connection records the text frames it receives and runs ``behaviour``."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if connections is not None:
            connections.append(len(connections))
        await behaviour(ws, received)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws/market", handler)
    return app


async def next_text(ws: web.WebSocketResponse, received: list[str]) -> str:
    message = await ws.receive(timeout=5)
    assert message.type is WSMsgType.TEXT, message
    received.append(message.data)
    return str(message.data)


def stream(
    url: str, counters: Counters | None = None, assets: list[str] | None = None
) -> MarketStream:
    return MarketStream(
        url + "/ws/market",
        assets or [TOK_A, TOK_B],
        settings=FAST,
        counters=counters,
        wall_clock=lambda: STAMP,
    )


async def test_subscribe_is_first_then_pings_and_pong_is_not_data() -> None:
    received: list[str] = []

    async def behaviour(ws: web.WebSocketResponse, got: list[str]) -> None:
        await next_text(ws, got)  # the subscription
        for _ in range(3):
            assert await next_text(ws, got) == "PING"
            await ws.send_str("PONG")
        await ws.send_str(orjson.dumps(trade()).decode())
        await ws.receive(timeout=5)  # keep the socket open until the client leaves

    counters = Counters()
    async with serve(ws_app(behaviour, received)) as url, stream(url, counters) as s:
        message = await asyncio.wait_for(anext(s), 5)
        assert s.last_data_at is not None
    assert isinstance(message, TradePrint)
    assert message.received_at == STAMP
    assert orjson.loads(received[0]) == {
        "assets_ids": [TOK_A, TOK_B],
        "type": "market",
        "custom_feature_enabled": True,
    }
    assert received[1:4] == ["PING"] * 3
    assert counters.get(WsCount.CONTROL_PONG) == 3


async def test_only_pongs_then_drop_leaves_last_data_at_unset() -> None:
    async def behaviour(ws: web.WebSocketResponse, got: list[str]) -> None:
        await next_text(ws, got)
        await next_text(ws, got)
        await ws.send_str("PONG")
        await ws.send_str("NO NEW ASSETS")

    async with serve(ws_app(behaviour, [])) as url, stream(url) as s:
        with pytest.raises(StreamClosedError) as caught:
            await asyncio.wait_for(anext(s), 5)
        assert s.last_data_at is None
    assert isinstance(caught.value, TransientSourceError)


async def test_array_frames_and_garbage_are_skipped_and_counted() -> None:
    frames = [
        "this is not json",
        orjson.dumps([ws_book(), trade()]).decode(),
        orjson.dumps({"event_type": "mystery"}).decode(),
        orjson.dumps([trade(price="9"), trade(size="7")]).decode(),
        "NO NEW ASSETS",
        orjson.dumps(trade(size="8")).decode(),
    ]

    async def behaviour(ws: web.WebSocketResponse, got: list[str]) -> None:
        await next_text(ws, got)
        for frame in frames:
            await ws.send_str(frame)
        await ws.send_bytes(orjson.dumps(trade(size="9")))  # binary frames are decoded too
        await ws.receive(timeout=5)

    counters = Counters()
    async with serve(ws_app(behaviour, [])) as url, stream(url, counters) as s:
        messages = [await asyncio.wait_for(anext(s), 5) for _ in range(5)]
    assert [type(m) for m in messages] == [
        BookSnapshot,
        TradePrint,
        TradePrint,
        TradePrint,
        TradePrint,
    ]
    assert [m.size for m in messages if isinstance(m, TradePrint)] == [3, 7, 8, 9]
    assert counters.snapshot() | {WsCount.MESSAGES: 0} == {
        WsCount.BAD_FRAME: 1,
        WsCount.UNKNOWN_EVENT_TYPE: 1,
        WsCount.BAD_MESSAGE: 1,
        WsCount.CONTROL_NO_NEW_ASSETS: 1,
        WsCount.MESSAGES: 0,
    }


async def test_dynamic_subscribe_and_unsubscribe() -> None:
    received: list[str] = []
    done = asyncio.Event()

    async def behaviour(ws: web.WebSocketResponse, got: list[str]) -> None:
        await next_text(ws, got)
        await next_text(ws, got)
        await next_text(ws, got)
        done.set()
        await ws.receive(timeout=5)

    async with serve(ws_app(behaviour, received)) as url, stream(url, assets=[TOK_A]) as s:
        await s.subscribe([TOK_B])
        await s.unsubscribe([TOK_A])
        await asyncio.wait_for(done.wait(), 5)
        assert s.asset_ids == (TOK_B,)
    assert orjson.loads(received[1]) == {
        "assets_ids": [TOK_B],
        "operation": "subscribe",
        "custom_feature_enabled": True,
    }
    assert orjson.loads(received[2]) == {"assets_ids": [TOK_A], "operation": "unsubscribe"}


async def test_handshake_429_is_rate_limited() -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=429, text="Too Many Requests")

    app = web.Application()
    app.router.add_get("/ws/market", refuse)
    async with serve(app) as url:
        with pytest.raises(RateLimitedError):
            async with stream(url):
                pass


async def test_lifecycle_is_explicit() -> None:
    s = stream("http://127.0.0.1:9")
    with pytest.raises(RuntimeError, match="unopened"):
        await anext(s)
    await s.close()
    with pytest.raises(RuntimeError, match="closed"):
        await s.subscribe([TOK_A])


async def test_reconnecting_resubscribes_after_a_drop() -> None:
    received: list[str] = []
    connections: list[int] = []

    async def behaviour(ws: web.WebSocketResponse, got: list[str]) -> None:
        await next_text(ws, got)
        await ws.send_str(orjson.dumps(trade(size=str(len(connections)))).decode())
        # then the server drops the connection (handler returns and closes)

    sleeper = FakeClock()
    sizes = []
    async with serve(ws_app(behaviour, received, connections)) as url:
        async for s in reconnecting(
            lambda: stream(url), settings=FAST, sleep=sleeper.sleep, jitter=lambda: 0.0
        ):
            try:
                async for message in s:
                    assert isinstance(message, TradePrint)
                    sizes.append(message.size)
            except StreamClosedError:
                if len(sizes) == 3:
                    break
    assert sizes == [1, 2, 3]
    assert len(connections) == 3
    assert all(orjson.loads(r)["assets_ids"] == [TOK_A, TOK_B] for r in received)
    assert sleeper.sleeps == []  # each connection delivered data: no backoff


class EnoughSleeping(Exception):
    pass


async def test_reconnecting_backs_off_when_connecting_fails() -> None:
    attempts: list[int] = []
    sleeps: list[float] = []

    async def refuse(request: web.Request) -> web.Response:
        attempts.append(1)
        return web.Response(status=503)

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        if len(sleeps) == 4:
            raise EnoughSleeping

    app = web.Application()
    app.router.add_get("/ws/market", refuse)
    async with serve(app) as url:
        connections = reconnecting(
            lambda: stream(url), settings=FAST, sleep=sleep, jitter=lambda: 0.0
        )
        with pytest.raises(EnoughSleeping):
            await anext(connections)
    # base 1 s doubling, capped at 4 s; "equal jitter" with jitter 0 halves each step
    assert sleeps == [0.5, 1.0, 2.0, 2.0]
    assert len(attempts) == 4
