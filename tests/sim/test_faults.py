"""Every fault kind is observable over real HTTP/WebSocket and counted in /_sim/stats."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest

from polyfarm.sim import Simulator

from .support import advance, book_seeds, reference_hash, running

Json = Any


async def fetch(http: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, bytes, Any]:
    async with http.get(url, params=params) as response:
        return response.status, await response.read(), response.headers


def token(sim: Simulator) -> str:
    return next(m.yes_token for m in sim.world.markets if m.is_open)


async def injected(http: aiohttp.ClientSession, sim: Simulator) -> dict[str, int]:
    async with http.get(f"{sim.base_url}/_sim/stats") as response:
        counts: dict[str, int] = (await response.json())["faults"]
        return counts


async def test_http_short_circuit_faults(sim: Simulator, http: aiohttp.ClientSession) -> None:
    book_url = f"{sim.clob_url}/book"
    sim.faults.set("clob:http_429=1,retry_after_s=3")
    status, body, headers = await fetch(http, book_url, token_id=token(sim))
    assert status == 429
    assert headers["Retry-After"] == "3"
    assert orjson.loads(body) == {"error": "Too Many Requests"}
    sim.faults.set("gamma:http_5xx=1")
    assert 500 <= (await fetch(http, f"{sim.gamma_url}/markets/keyset"))[0] <= 504
    assert (await fetch(http, book_url, token_id=token(sim)))[0] == 200, "scoped to gamma only"
    sim.faults.set("http_200_error=1")
    status, body, _ = await fetch(http, f"{sim.data_url}/trades")
    assert status == 200
    assert orjson.loads(body) == {"error": "Too Many Requests"}
    assert (await fetch(http, book_url, token_id=token(sim)))[0] == 200, (
        "only the Data API by default"
    )
    sim.faults.set("latency_ms=300")
    began = time.perf_counter()
    await fetch(http, book_url, token_id=token(sim))
    assert time.perf_counter() - began >= 0.14
    sim.faults.set("timeout=1,timeout_s=3")
    with pytest.raises(TimeoutError):
        async with http.get(
            book_url, params={"token_id": token(sim)}, timeout=aiohttp.ClientTimeout(total=0.4)
        ):
            pass
    sim.faults.clear()
    counts = await injected(http, sim)
    assert all(
        counts.get(kind, 0) >= 1
        for kind in ("http_429", "http_5xx", "http_200_error", "latency_ms", "timeout")
    )


async def test_http_body_faults(sim: Simulator, http: aiohttp.ClientSession) -> None:
    url, params = f"{sim.clob_url}/book", {"token_id": token(sim)}
    _, clean, _ = await fetch(http, url, **params)
    normal = orjson.loads(clean)
    for kind in ("malformed_json", "truncated_json"):
        sim.faults.set(f"{kind}=1")
        status, body, _ = await fetch(http, url, **params)
        assert status == 200
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(body)
    sim.faults.set("missing_fields=1")
    missing = orjson.loads((await fetch(http, url, **params))[1])
    assert set(missing) < set(normal)
    sim.faults.set("extra_fields=1")
    extra = orjson.loads((await fetch(http, url, **params))[1])
    assert set(extra) > set(normal)
    sim.faults.clear()
    counts = await injected(http, sim)
    assert all(
        counts.get(k, 0) >= 1
        for k in ("malformed_json", "truncated_json", "missing_fields", "extra_fields")
    )


async def test_rate_limits_answer_429(http: aiohttp.ClientSession) -> None:
    async with running(rate_limits=True) as sim:
        url = f"{sim.clob_url}/tick-size"
        sim.faults.set("rate_limits=0.05")  # tick-size: 200 per 10 s → 10
        statuses = [(await fetch(http, url, token_id=token(sim)))[:3:2] for _ in range(14)]
        limited = [headers for status, headers in statuses if status == 429]
        assert 3 <= len(limited) <= 4, "10 allowed, then 429 (one token may refill meanwhile)"
        assert int(limited[0]["Retry-After"]) >= 1
        assert (await injected(http, sim))["rate_limit"] == len(limited)
        sim.faults.set("rate_limits=0")
        after = [(await fetch(http, url, token_id=token(sim)))[0] for _ in range(20)]
        assert after == [200] * 20


async def test_runtime_fault_api(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{sim.base_url}/_sim/faults", json={"spec": "gamma:http_429=0.5,ws_drop=0.001"}
    ) as response:
        body = await response.json()
        assert response.status == 200
        assert body["parsed"] == {
            "gamma:http_429": 0.5,
            "ws_drop": 0.001,
        }
    async with http.post(f"{sim.base_url}/_sim/faults", json={"spec": "bogus=1"}) as response:
        assert response.status == 400
    async with http.get(f"{sim.base_url}/_sim/faults") as response:
        assert (await response.json())["spec"] == "gamma:http_429=0.5,ws_drop=0.001"


async def raw_frames(ws: aiohttp.ClientWebSocketResponse, quiet: float = 0.3) -> list[Any]:
    frames: list[Any] = []
    while True:
        try:
            message = await ws.receive(timeout=quiet)
        except TimeoutError:
            return frames
        if message.type is not aiohttp.WSMsgType.TEXT:
            frames.append(message.type)
            return frames
        frames.append(message.data)


async def subscribed(
    http: aiohttp.ClientSession, sim: Simulator, count: int = 40
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(sim.ws_url)
    assets = [t for m in sim.world.markets if m.is_open for t in (m.yes_token, m.no_token)][:count]
    await ws.send_str(orjson.dumps({"assets_ids": assets, "type": "market"}).decode())
    return ws


async def test_silent_stall_keeps_pong_but_no_data(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    sim.faults.set("ws_stall=1")
    ws = await subscribed(http, sim)
    try:
        await advance(sim, 60, steps=3)
        await ws.send_str("PING")
        frames = await raw_frames(ws, quiet=0.5)
        assert frames == ["PONG"]
        assert not ws.closed
        sim.faults.clear()
        await advance(sim, 60, steps=3)
        assert await raw_frames(ws, quiet=0.3) == [], "stalled until the client reconnects"
    finally:
        await ws.close()
    fresh = await subscribed(http, sim)
    try:
        assert len(await raw_frames(fresh)) >= 1
    finally:
        await fresh.close()
    assert (await injected(http, sim))["ws_stall"] == 1


async def test_ws_drop_duplicate_malformed(sim: Simulator, http: aiohttp.ClientSession) -> None:
    sim.faults.set("ws_drop=1")
    ws = await subscribed(http, sim)
    frames = await raw_frames(ws, quiet=1.0)
    assert frames
    assert frames[-1] in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.ERROR,
    )
    await ws.close()
    checks: tuple[tuple[str, Callable[[list[Any]], bool]], ...] = (
        ("ws_duplicate", lambda fs: len(fs) >= 2 and fs[0] == fs[1]),
        ("ws_malformed", lambda fs: bool(fs) and not _parses(fs[0])),
    )
    for kind, check in checks:
        sim.faults.set(f"{kind}=1")
        ws = await subscribed(http, sim, count=4)
        frames = await raw_frames(ws)
        await ws.close()
        assert check(frames), kind
    sim.faults.clear()
    counts = await injected(http, sim)
    assert all(counts.get(k, 0) >= 1 for k in ("ws_drop", "ws_duplicate", "ws_malformed"))


def _parses(frame: str) -> bool:
    try:
        orjson.loads(frame)
    except orjson.JSONDecodeError:
        return False
    return True


def _hash_ok(book: dict[str, Any], seeds: dict[str, dict[str, Any]]) -> bool:
    return bool(reference_hash(book, seeds[book["asset_id"]]) == book["hash"])


async def test_hash_mismatch_and_out_of_order(sim: Simulator, http: aiohttp.ClientSession) -> None:
    sim.faults.set("hash_mismatch=1")
    ws = await subscribed(http, sim, count=6)
    books = [b for f in await raw_frames(ws) for b in orjson.loads(f)]
    await ws.close()
    assert books
    seeds = book_seeds(sim)
    assert not all(_hash_ok(b, seeds) for b in books)
    sim.faults.set("ws_out_of_order=0.5")
    ws = await subscribed(http, sim, count=200)
    await raw_frames(ws)
    await advance(sim, 30, steps=1)
    frames = await raw_frames(ws)
    await ws.close()
    stamps = [
        int(e["timestamp"])
        for f in frames
        for e in (lambda d: d if isinstance(d, list) else [d])(orjson.loads(f))
    ]
    assert any(later < earlier for earlier, later in itertools.pairwise(stamps))
    sim.faults.clear()
    counts = await injected(http, sim)
    assert counts["hash_mismatch"] >= 1
    assert counts["ws_out_of_order"] >= 1
    await asyncio.sleep(0)


async def test_a_corrupted_frame_counts_as_injected_only_once_sent(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A corrupted frame held back for reordering is lost when the connection then drops:
    the client never sees it, so the simulator must not count it (a test comparing what the
    client quarantined with what was injected depends on it)."""
    sim.faults.set("ws_malformed=1,ws_out_of_order=1,ws_drop=0.4")
    received = 0
    for _ in range(12):
        ws = await subscribed(http, sim, count=200)
        await advance(sim, 60, steps=1)  # many queued messages: several items per drain
        frames = await raw_frames(ws, quiet=0.5)
        await ws.close()
        received += sum(1 for f in frames if isinstance(f, str) and not _parses(f))
    sim.faults.clear()
    counts = await injected(http, sim)
    assert counts.get("ws_drop", 0) >= 1, "some connections must drop for this to mean anything"
    assert counts.get("ws_malformed", 0) == received
