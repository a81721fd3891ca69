"""CLOB REST over HTTP: books, prices, catalogue, price history."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from polyfarm.sim import Simulator
from polyfarm.sim.model import Outcome

from .support import advance, reference_hash, running

Json = Any
NO_BOOK = {"error": "No orderbook exists for the requested token id"}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Json = None, **params: Any
) -> tuple[int, Json]:
    async with http.request(method, url, params=params, json=body) as response:
        return response.status, await response.json(content_type=None)


def open_tokens(sim: Simulator, count: int) -> list[str]:
    return [t for m in sim.world.markets if m.is_open for t in (m.yes_token, m.no_token)][:count]


async def test_book_shape_order_and_hash(sim: Simulator, http: aiohttp.ClientSession) -> None:
    await advance(sim, 60, steps=3)
    for token in open_tokens(sim, 40):
        status, book = await call(http, "GET", f"{sim.clob_url}/book", token_id=token)
        assert status == 200
        assert book["asset_id"] == token
        bids = [Decimal(level["price"]) for level in book["bids"]]
        asks = [Decimal(level["price"]) for level in book["asks"]]
        assert bids == sorted(bids)
        assert asks == sorted(asks, reverse=True)
        assert bids[-1] < asks[-1]
        assert all(Decimal(level["size"]) > 0 for level in book["bids"] + book["asks"])
        assert book["hash"] == reference_hash(book)
        assert book["timestamp"].isdigit()
        _, again = await call(http, "GET", f"{sim.clob_url}/book", token_id=token)
        assert again == book, "an unchanged book returns identical timestamp and hash"
        _, price = await call(http, "GET", f"{sim.clob_url}/price", token_id=token, side="buy")
        _, ask = await call(http, "GET", f"{sim.clob_url}/price", token_id=token, side="SELL")
        _, mid = await call(http, "GET", f"{sim.clob_url}/midpoint", token_id=token)
        _, spread = await call(http, "GET", f"{sim.clob_url}/spread", token_id=token)
        assert Decimal(price["price"]) == bids[-1]
        assert Decimal(ask["price"]) == asks[-1]
        assert Decimal(mid["mid"]) == (bids[-1] + asks[-1]) / 2
        assert Decimal(spread["spread"]) == asks[-1] - bids[-1]
        _, tick = await call(http, "GET", f"{sim.clob_url}/tick-size", token_id=token)
        assert tick["minimum_tick_size"] == float(book["tick_size"])


async def test_book_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    for bad in ("0", "not-a-real-token"):
        assert await call(http, "GET", f"{sim.clob_url}/book", token_id=bad) == (404, NO_BOOK)
    assert await call(http, "GET", f"{sim.clob_url}/book") == (400, {"error": "Invalid token id"})
    status, body = await call(http, "GET", f"{sim.clob_url}/price", token_id=open_tokens(sim, 1)[0])
    assert status == 400
    assert "error" in body
    assert await call(http, "GET", f"{sim.clob_url}/last-trade-price", token_id="0") == (
        404,
        NO_BOOK,
    )


async def test_batches(sim: Simulator, http: aiohttp.ClientSession) -> None:
    tokens = open_tokens(sim, 400)
    status, books = await call(
        http, "POST", f"{sim.clob_url}/books", [{"token_id": t} for t in [*tokens, "0"]]
    )
    assert status == 200
    assert sorted(b["asset_id"] for b in books) == sorted(tokens)
    status, body = await call(
        http, "POST", f"{sim.clob_url}/books", [{"token_id": tokens[0]}] * 501
    )
    assert status == 400
    assert "error" in body
    status, _ = await call(http, "POST", f"{sim.clob_url}/books", [{"token_id": tokens[0]}] * 500)
    assert status == 200
    both_sides = [{"token_id": tokens[0], "side": side} for side in ("BUY", "SELL")]
    _, prices = await call(http, "POST", f"{sim.clob_url}/prices", both_sides)
    assert set(prices[tokens[0]]) == {"BUY", "SELL"}
    for path, name in (("/midpoints", "mid"), ("/spreads", "spread")):
        _, many = await call(
            http, "POST", f"{sim.clob_url}{path}", [{"token_id": t} for t in tokens[:5]]
        )
        for token in tokens[:5]:
            _, one = await call(http, "GET", f"{sim.clob_url}{path[:-1]}", token_id=token)
            assert many[token] == one[name]
    _, last = await call(
        http, "POST", f"{sim.clob_url}/last-trades-prices", [{"token_id": t} for t in tokens[:3]]
    )
    assert [row["token_id"] for row in last] == tokens[:3]
    assert all(set(r) == {"token_id", "price", "side"} for r in last)


async def test_catalogue_cursor_walk(http: aiohttp.ClientSession) -> None:
    async with running(markets=150, clob_page_size=64) as sim:
        cursor, seen, pages = "MA==", [], 0
        while cursor != "LTE=":
            status, page = await call(http, "GET", f"{sim.clob_url}/markets", next_cursor=cursor)
            assert status == 200
            assert page["count"] == len(page["data"])
            assert page["limit"] == 64
            seen += [row["condition_id"] for row in page["data"]]
            cursor, pages = page["next_cursor"], pages + 1
            if cursor != "LTE=":
                assert base64.b64decode(cursor).decode() == str(64 * pages)
        assert sorted(seen) == sorted(m.condition_id for m in sim.world.markets)
        assert pages == 3
        market = sim.world.markets[5]
        status, one = await call(http, "GET", f"{sim.clob_url}/markets/{market.condition_id}")
        assert status == 200
        assert [t["token_id"] for t in one["tokens"]] == [
            market.yes_token,
            market.no_token,
        ]
        assert (await call(http, "GET", f"{sim.clob_url}/markets/0x00"))[0] == 404
        assert await call(http, "GET", f"{sim.clob_url}/") == (200, "OK")
        status, now = await call(http, "GET", f"{sim.clob_url}/time")
        assert status == 200
        assert now == int(sim.clock.now())


async def busy_token(sim: Simulator) -> str:
    """The YES token of an old market whose book moved the most over ten simulated minutes."""
    await advance(sim, 600, steps=10)
    now = sim.clock.now()
    old = [m for m in sim.world.markets if m.created_s < now - 86_400 and m.book is not None]
    return max(old, key=lambda m: m.book.version if m.book else -1).yes_token


async def history(http: aiohttp.ClientSession, sim: Simulator, **params: Any) -> tuple[int, Json]:
    return await call(http, "GET", f"{sim.clob_url}/prices-history", **params)


async def test_prices_history_points_are_midpoints(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    token = await busy_token(sim)
    now = int(sim.clock.now())
    status, body = await history(http, sim, market=token, startTs=now - 3600, endTs=now, fidelity=1)
    points = body["history"]
    assert status == 200
    assert len(points) == 61
    assert all(isinstance(p["t"], int) and isinstance(p["p"], float) for p in points)
    assert all(p["t"] % 60 == 0 for p in points)
    _, mid = await call(http, "GET", f"{sim.clob_url}/midpoint", token_id=token)
    assert points[-1]["p"] == float(mid["mid"]), "p is the midpoint"
    no_token = sim.world.tokens[token][0].no_token
    _, no_side = await history(
        http, sim, market=no_token, startTs=now - 3600, endTs=now, fidelity=1
    )
    assert [round(1 - p["p"], 5) for p in no_side["history"]] == [p["p"] for p in points]
    batch = {"markets": [token, no_token], "start_ts": now - 3600, "end_ts": now, "fidelity": 1}
    _, both = await call(http, "POST", f"{sim.clob_url}/batch-prices-history", batch)
    assert both["history"][token] == points
    too_many = {**batch, "markets": [token] * 21}
    assert (await call(http, "POST", f"{sim.clob_url}/batch-prices-history", too_many))[0] == 400


async def test_prices_history_validation(sim: Simulator, http: aiohttp.ClientSession) -> None:
    token = await busy_token(sim)
    now = int(sim.clock.now())
    _, both = await history(
        http, sim, market=token, interval="1h", startTs=now - 10 * 86400, endTs=now, fidelity=5
    )
    assert 12 <= len(both["history"]) <= 13, "interval wins over startTs/endTs"
    ok, _ = await history(http, sim, market=token, startTs=now - 1_296_000, endTs=now, fidelity=60)
    status, error = await history(http, sim, market=token, startTs=now - 1_296_001, endTs=now)
    assert (ok, status) == (200, 400)
    assert error["error"] == "invalid filters: 'startTs' and 'endTs' interval is too long"
    assert "code" in error
    for interval, minimum in (("1w", 5), ("1m", 10)):
        status, error = await history(
            http, sim, market=token, interval=interval, fidelity=minimum - 1
        )
        assert status == 400
        assert error["error"].endswith(f"minimum 'fidelity' for '{interval}' range is {minimum}")
        status, _ = await history(http, sim, market=token, interval=interval, fidelity=minimum)
        assert status == 200


@pytest.mark.parametrize("bug", [False, True])
async def test_resolved_history_and_bug_216_switch(http: aiohttp.ClientSession, bug: bool) -> None:
    async with running(history_bug_216=bug) as sim:
        await advance(sim, 4 * 3600, steps=8)
        resolved = next(m for m in sim.world.markets if m.result is not Outcome.OPEN)
        url = f"{sim.clob_url}/prices-history"
        _, fine = await call(
            http, "GET", url, market=resolved.yes_token, interval="max", fidelity=60
        )
        _, coarse = await call(
            http, "GET", url, market=resolved.yes_token, interval="max", fidelity=720
        )
        assert bool(fine["history"]) is not bug
        assert coarse["history"]
        assert resolved.closed_s is not None
        assert fine["history"] == [] or fine["history"][-1]["t"] <= resolved.closed_s
