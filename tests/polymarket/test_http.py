"""RestClient against a real aiohttp server on 127.0.0.1: retries, errors, lifecycle."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import msgspec
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy, MultiMapping

from polyfarm.errors import (
    PayloadError,
    PermanentSourceError,
    RateLimitedError,
    TransientSourceError,
)
from polyfarm.polymarket.http import (
    ClientState,
    NotFoundError,
    PermanentHttpError,
    RetryPolicy,
    TransientHttpError,
    parse_retry_after,
    query_params,
)
from tests.polymarket.conftest import FakeClock, make_rest, serve

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Item(msgspec.Struct):
    id: str


ITEMS = msgspec.json.Decoder(list[Item])


@dataclass(frozen=True)
class Seen:
    method: str
    headers: CIMultiDictProxy[str]
    query: MultiMapping[str]
    body: bytes


def scripted(*responses: Handler) -> tuple[web.Application, list[Seen]]:
    """An app answering ``/items`` with the given handlers in turn (the last one repeats)."""
    seen: list[Seen] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(Seen(request.method, request.headers, request.query, await request.read()))
        return await responses[min(len(seen), len(responses)) - 1](request)

    app = web.Application()
    app.router.add_route("*", "/items", handler)
    return app, seen


def reply(status: int = 200, body: bytes = b'[{"id": "1"}]', **headers: str) -> Handler:
    async def respond(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=status, body=body, headers=headers, content_type="application/json"
        )

    return respond


OK = reply()


async def test_429_retry_after_seconds_is_honoured(clock: FakeClock) -> None:
    app, seen = scripted(reply(429, b'{"error":"Too Many Requests"}', **{"Retry-After": "7"}), OK)
    async with serve(app) as url, make_rest(url, "clob", retry_sleep=clock) as rest:
        assert await rest.get("/items", ITEMS) == [Item(id="1")]
    assert clock.sleeps == [7.0]
    assert len(seen) == 2


async def test_429_retry_after_http_date_is_honoured(clock: FakeClock) -> None:
    now = datetime(2026, 8, 11, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    app, _ = scripted(reply(429, b"", **{"Retry-After": later}), OK)
    async with (
        serve(app) as url,
        make_rest(url, "gamma", retry_sleep=clock, now=lambda: now) as rest,
    ):
        await rest.get("/items", ITEMS)
    assert clock.sleeps == [30.0]


async def test_5xx_is_retried_with_exponential_backoff_then_succeeds(clock: FakeClock) -> None:
    app, seen = scripted(reply(503, b"busy"), reply(502, b"bad gateway"), OK)
    async with serve(app) as url, make_rest(url, "clob", retry_sleep=clock) as rest:
        assert await rest.get("/items", ITEMS) == [Item(id="1")]
    policy = RetryPolicy(backoff_base_s=0.5)
    assert clock.sleeps == [policy.backoff(0, 0.5), policy.backoff(1, 0.5)] == [0.375, 0.75]
    assert len(seen) == 3


async def test_retries_are_bounded_and_the_body_is_kept(clock: FakeClock) -> None:
    app, seen = scripted(
        reply(500, b'{"type":"internal error","error":"cannot get the information"}')
    )
    async with serve(app) as url, make_rest(url, "gamma", retry_sleep=clock, max_retries=2) as rest:
        with pytest.raises(TransientHttpError) as caught:
            await rest.get("/items", ITEMS)
    assert len(seen) == 3
    assert len(clock.sleeps) == 2
    assert caught.value.status == 500
    assert b"cannot get the information" in caught.value.body


@pytest.mark.parametrize(
    ("status", "kind"), [(404, NotFoundError), (400, PermanentHttpError), (422, PermanentHttpError)]
)
async def test_4xx_is_permanent_and_not_retried(
    clock: FakeClock, status: int, kind: type[Exception]
) -> None:
    app, seen = scripted(
        reply(status, b'{"error":"No orderbook exists for the requested token id"}')
    )
    async with serve(app) as url, make_rest(url, "clob", retry_sleep=clock) as rest:
        with pytest.raises(kind) as caught:
            await rest.get("/items", ITEMS)
    assert isinstance(caught.value, PermanentSourceError)
    assert len(seen) == 1
    assert clock.sleeps == []
    assert "No orderbook exists" in str(caught.value)
    assert caught.value.status == status


async def test_timeout_is_transient_and_retried(clock: FakeClock) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1.0)
        return web.Response(body=b"[]")

    app, seen = scripted(slow, OK)
    async with serve(app) as url, make_rest(url, "clob", retry_sleep=clock, timeout_s=0.2) as rest:
        assert await rest.get("/items", ITEMS) == [Item(id="1")]
    assert len(seen) == 2
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize(
    "broken", [b'[{"id": "1"}', b"<html>oops</html>", b"", b'[{"id": "1"}] trailing']
)
async def test_malformed_json_on_200_is_retried(clock: FakeClock, broken: bytes) -> None:
    app, seen = scripted(reply(200, broken), OK)
    async with serve(app) as url, make_rest(url, "data", retry_sleep=clock) as rest:
        assert await rest.get("/items", ITEMS) == [Item(id="1")]
    assert len(seen) == 2


async def test_truncated_transfer_is_retried(clock: FakeClock) -> None:
    async def cut_short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b'[{"id": ')
        assert request.transport is not None
        request.transport.close()  # the peer vanishes mid-body
        return response

    app, seen = scripted(cut_short, OK)
    async with serve(app) as url, make_rest(url, "gamma", retry_sleep=clock) as rest:
        assert await rest.get("/items", ITEMS) == [Item(id="1")]
    assert len(seen) == 2


async def test_persistently_malformed_body_fails_transient_with_raw_body(clock: FakeClock) -> None:
    app, _ = scripted(reply(200, b'{"markets": ['))
    async with serve(app) as url, make_rest(url, "gamma", retry_sleep=clock, max_retries=1) as rest:
        with pytest.raises(TransientHttpError, match="malformed JSON") as caught:
            await rest.get("/items", ITEMS)
    assert caught.value.body == b'{"markets": ['


async def test_wrong_shape_is_a_payload_error_not_retried(clock: FakeClock) -> None:
    app, seen = scripted(reply(200, b'[{"name": "no id"}]'))
    async with serve(app) as url, make_rest(url, "gamma", retry_sleep=clock) as rest:
        with pytest.raises(PayloadError) as caught:
            await rest.get("/items", ITEMS)
    assert len(seen) == 1
    assert caught.value.raw == b'[{"name": "no id"}]'


async def test_data_api_200_with_rate_limit_error_is_retried(clock: FakeClock) -> None:
    app, seen = scripted(reply(200, b'{"error":"Too Many Requests"}'), OK)
    async with serve(app) as url, make_rest(url, "data", retry_sleep=clock) as rest:
        assert await rest.get("/items", ITEMS) == [Item(id="1")]
    assert len(seen) == 2
    assert len(clock.sleeps) == 1


async def test_200_with_other_error_body_is_permanent(clock: FakeClock) -> None:
    app, seen = scripted(reply(200, b'{"error":"Invalid payload"}'))
    async with serve(app) as url, make_rest(url, "clob", retry_sleep=clock) as rest:
        with pytest.raises(PermanentHttpError, match="Invalid payload") as caught:
            await rest.get("/items", ITEMS)
    assert caught.value.status == 200
    assert len(seen) == 1


async def test_rate_limit_exhaustion_raises_rate_limited(clock: FakeClock) -> None:
    app, _ = scripted(reply(429, b"{}"))
    async with serve(app) as url, make_rest(url, "clob", retry_sleep=clock, max_retries=1) as rest:
        with pytest.raises(RateLimitedError):
            await rest.get("/items", ITEMS)


async def test_connection_refused_is_transient(clock: FakeClock) -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with make_rest(
        f"http://127.0.0.1:{port}", "gamma", retry_sleep=clock, max_retries=2
    ) as rest:
        with pytest.raises(TransientSourceError):
            await rest.get("/items", ITEMS)
    assert len(clock.sleeps) == 2


async def test_headers_params_and_json_body_are_sent(clock: FakeClock) -> None:
    app, seen = scripted(OK)
    async with serve(app) as url, make_rest(url, "clob", retry_sleep=clock) as rest:
        await rest.get("/items", ITEMS, params=query_params({"id": [1, 2], "closed": False}))
        await rest.post("/items", ITEMS, json=[{"token_id": "5"}])
    first, second = seen
    assert first.headers["User-Agent"].startswith("polyfarm/")
    assert first.headers["Accept"] == "application/json"
    assert first.query.getall("id") == ["1", "2"]
    assert first.query["closed"] == "false"
    assert second.method == "POST"
    assert second.headers["Content-Type"] == "application/json"
    assert second.body == b'[{"token_id":"5"}]'


async def test_explicit_lifecycle(clock: FakeClock) -> None:
    rest = make_rest("http://127.0.0.1:9", "gamma", retry_sleep=clock)
    assert rest.state is ClientState.UNOPENED
    with pytest.raises(RuntimeError, match="unopened"):
        await rest.get("/items", ITEMS)
    async with rest:
        assert rest.state.value == "opened"
    assert rest.state.value == "closed"
    with pytest.raises(RuntimeError, match="closed"):
        await rest.get("/items", ITEMS)
    with pytest.raises(RuntimeError, match="cannot open"):
        await rest.open()


NOW = datetime(2026, 8, 11, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_query_params() -> None:
    when = datetime(2026, 3, 1, tzinfo=UTC)
    assert query_params(
        {"condition_ids": ["0xa", "0xb"], "closed": True, "x": None, "start_date_min": when}
    ) == [
        ("condition_ids", "0xa"),
        ("condition_ids", "0xb"),
        ("closed", "true"),
        ("start_date_min", "2026-03-01T00:00:00Z"),
    ]


def test_retry_policy_caps() -> None:
    policy = RetryPolicy(backoff_base_s=1, backoff_max_s=8, max_retry_after_s=60)
    assert [policy.backoff(n, 0.0) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert policy.backoff(10, 0.999) < 8
    assert policy.delay(0, RateLimitedError("x", retry_after=600), 0.5) == 60
    assert policy.delay(0, TransientHttpError("x", retry_after=3), 0.5) == 3
