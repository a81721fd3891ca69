"""Trades: ground truth vs the WebSocket vs the Data API, and the Data API's paging rules."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from polyfarm.sim import Simulator

from .support import Feed, advance, running

Json = Any


async def get(http: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Json]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json(content_type=None)


async def truth(http: aiohttp.ClientSession, sim: Simulator, page: int = 500) -> list[Json]:
    rows, since = [], 0
    while True:
        _, body = await get(http, f"{sim.base_url}/_sim/truth/trades", since_id=since, limit=page)
        rows += body["trades"]
        if body["next_since_id"] is None:
            return rows
        since = body["next_since_id"]


async def test_truth_equals_websocket_and_data_api(http: aiohttp.ClientSession) -> None:
    async with running(markets=150, seed=5, new_markets_per_hour=0.0, trade_rate=0.05) as sim:
        async with http.ws_connect(sim.ws_url) as ws:
            reader = Feed(ws)
            await reader.subscribe(list(sim.world.tokens))
            await reader.read()
            async with http.post(
                f"{sim.base_url}/_sim/clock/speed", json={"speed": 60}
            ) as response:
                assert response.status == 200
            for _ in range(10):
                await reader.read(quiet=0.05, limit_s=0.25)
            async with http.post(f"{sim.base_url}/_sim/clock/speed", json={"speed": 0}) as response:
                assert response.status == 200
            await reader.read(quiet=0.5)
        truth_rows = await truth(http, sim, page=97)
        _, data_rows = await get(http, f"{sim.data_url}/trades", limit=10_000)
    assert len(truth_rows) > 50, "the fast clock should have produced trades"
    assert [r["id"] for r in truth_rows] == list(range(1, len(truth_rows) + 1))
    key = ("token_id", "price", "size", "side", "timestamp_ms", "transaction_hash")
    from_truth = Counter(tuple(r[k] for k in key) for r in truth_rows)
    from_ws = Counter(
        (
            e["asset_id"],
            e["price"],
            e["size"],
            e["side"],
            int(e["timestamp"]),
            e["transaction_hash"],
        )
        for e in reader.of_type("last_trade_price")
    )
    assert from_ws == from_truth
    as_numbers = Counter(
        (r["token_id"], float(r["price"]), float(r["size"]), r["side"], r["timestamp_ms"] // 1000,
         r["transaction_hash"])
        for r in truth_rows
    )  # fmt: skip
    from_data = Counter(
        (r["asset"], r["price"], r["size"], r["side"], r["timestamp"], r["transactionHash"])
        for r in data_rows
    )
    assert from_data == as_numbers
    stamps = [r["timestamp"] for r in data_rows]
    assert stamps == sorted(stamps, reverse=True), "newest first"


@pytest.fixture(scope="module")
async def busy() -> AsyncIterator[Simulator]:
    async with running(
        markets=200, seed=9, trade_rate=1.0, quote_rate=0.05, max_events_per_step=5000
    ) as sim:
        await advance(sim, 80, steps=8)
        assert sim.world.trades.emitted > 10_000
        yield sim


async def test_v1_limits_and_offsets(busy: Simulator, http: aiohttp.ClientSession) -> None:
    url = f"{busy.data_url}/trades"
    status, rows = await get(http, url, limit=20_000)
    assert status == 200
    assert len(rows) == 10_000
    status, _ = await get(http, url, offset=10_000, limit=5)
    assert status == 200
    assert await get(http, url, offset=10_001) == (
        400,
        {"error": "max historical trades offset of 10000 exceeded"},
    )
    _, page = await get(http, url, offset=100, limit=50)
    assert page == rows[100:150]
    _, default = await get(http, url)
    assert len(default) == 100
    assert (await get(http, url, limit=0))[1] == []


async def test_v1_filters(busy: Simulator, http: aiohttp.ClientSession) -> None:
    url = f"{busy.data_url}/trades"
    markets = [m for m in busy.world.markets if busy.world.trades.for_market(m)][:3]
    cids = [m.condition_id for m in markets]
    _, rows = await get(http, url, market=",".join(cids), limit=10_000)
    assert rows
    assert {r["conditionId"] for r in rows} <= set(cids)
    assert len(rows) == sum(len(busy.world.trades.for_market(m)) for m in markets)
    event = markets[0].event
    _, by_event = await get(http, url, eventId=str(event.gamma_id), limit=10_000)
    assert {r["conditionId"] for r in by_event} <= {m.condition_id for m in event.markets}
    assert (await get(http, url, market=cids[0], eventId=str(event.gamma_id)))[0] == 400
    _, both = await get(http, url, market=cids[0], takerOnly="false", limit=10_000)
    _, taker = await get(http, url, market=cids[0], limit=10_000)
    assert len(both) == 2 * len(taker)
    assert {r["side"] for r in both} == {"BUY", "SELL"}
    _, sells = await get(http, url, side="SELL", limit=500)
    assert sells
    assert all(r["side"] == "SELL" for r in sells)
    _, big = await get(http, url, filterType="CASH", filterAmount=500, limit=10_000)
    assert big
    assert all(r["size"] * r["price"] >= 500 - 1e-6 for r in big)
    assert (await get(http, url, filterType="CASH"))[0] == 400
    wallet = rows[0]["proxyWallet"]
    _, mine = await get(http, url, user=wallet, limit=10_000)
    assert mine
    assert all(r["proxyWallet"] == wallet for r in mine)
    newest = rows[0]["timestamp"]
    _, window = await get(
        http, url, start=newest - 5, end=newest, limit=10_000, market=",".join(cids)
    )
    assert window
    assert all(newest - 5 <= r["timestamp"] <= newest for r in window)


async def test_v2_cursor_paging(busy: Simulator, http: aiohttp.ClientSession) -> None:
    url = f"{busy.data_url}/v2/trades"
    market = max(busy.world.markets, key=lambda m: len(busy.world.trades.for_market(m)))
    _, v1 = await get(
        http, f"{busy.data_url}/trades", market=market.condition_id, takerOnly="false", limit=10_000
    )
    rows, cursor, pages = [], None, 0
    while True:
        params = {
            "condition": market.condition_id,
            "taker_only": "false",
            "limit": 7,
            "filter_amount": 0,
        }
        status, body = await get(http, url, **params, **({"cursor": cursor} if cursor else {}))
        assert status == 200
        assert set(body) == {"data", "pagination"}
        rows += body["data"]
        pages += 1
        if not body["pagination"]["has_more"]:
            assert body["pagination"]["next_cursor"] is None
            break
        cursor = body["pagination"]["next_cursor"]
    assert pages > 2
    as_v1 = [(r["transaction_hash"], r["side"], r["proxy_wallet"]) for r in rows]
    assert as_v1 == [(r["transactionHash"], r["side"], r["proxyWallet"]) for r in v1]
    assert (await get(http, url, offset=10))[0] == 400
    status, body = await get(http, url, limit=5000)
    assert status == 200
    assert len(body["data"]) == 1000
    too_many = ",".join(m.condition_id for m in busy.world.markets[:21])
    assert (await get(http, url, condition=too_many))[0] == 400
    assert "token_id" in body["data"][0]
    assert "outcome_index" in body["data"][0]


async def test_data_root(busy: Simulator, http: aiohttp.ClientSession) -> None:
    assert await get(http, f"{busy.data_url}/") == (200, {"data": "OK"})
    await asyncio.sleep(0)
