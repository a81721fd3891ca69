"""Markets close and resolve as the (fast) simulated clock passes their end date."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp

from polyfarm.sim import Simulator
from polyfarm.sim.model import Outcome

from .support import Feed

Json = Any
PG_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00")


async def get(http: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Json]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json(content_type=None)


async def post(http: aiohttp.ClientSession, url: str, body: Json) -> Json:
    async with http.post(url, json=body) as response:
        assert response.status == 200
        return await response.json()


async def test_close_then_resolve_over_http_and_ws(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    now = sim.clock.now()
    soon = sorted((m for m in sim.world.markets if m.end_s < now + 3600), key=lambda m: m.end_s)
    assert len(soon) >= 10, "the < 1 h tier is populated"
    target = soon[0]
    async with http.ws_connect(sim.ws_url) as ws:
        reader = Feed(ws)
        await reader.subscribe(
            [m.yes_token for m in soon] + [m.no_token for m in soon], custom=True
        )
        await reader.read()
        status, before = await get(http, f"{sim.gamma_url}/markets/{target.gamma_id}")
        assert status == 200
        assert before["closed"] is False
        assert before["acceptingOrders"] is True
        clock = await post(
            http, f"{sim.base_url}/_sim/clock/advance", {"seconds": target.end_s - now + 1}
        )
        assert clock["now"] >= target.end_s
        status, closed = await get(http, f"{sim.gamma_url}/markets/{target.gamma_id}")
        assert closed["closed"] is True
        assert closed["acceptingOrders"] is False
        assert closed["active"] is True
        assert PG_TIME.fullmatch(closed["closedTime"])
        assert (await get(http, f"{sim.clob_url}/book", token_id=target.yes_token))[0] == 404
        _, clob = await get(http, f"{sim.clob_url}/markets/{target.condition_id}")
        assert clob["closed"]
        assert not clob["accepting_orders"]
        await post(http, f"{sim.base_url}/_sim/clock/advance", {"seconds": 3 * 3600})
        await reader.read()
    status, resolved = await get(http, f"{sim.gamma_url}/markets/{target.gamma_id}")
    assert resolved["umaResolutionStatus"] == "resolved"
    prices = json.loads(resolved["outcomePrices"])
    assert prices in (["1", "0"], ["0", "1"], ["0.5", "0.5"], ["0", "0"])
    assert isinstance(json.loads(resolved["umaResolutionStatuses"]), list)
    _, clob = await get(http, f"{sim.clob_url}/markets/{target.condition_id}")
    winners = [t["winner"] for t in clob["tokens"]]
    assert winners == [prices == ["1", "0"], prices == ["0", "1"]]
    assert clob["is_50_50_outcome"] == (prices == ["0.5", "0.5"])
    messages = {e["market"]: e for e in reader.of_type("market_resolved")}
    for market in soon:
        if market.result in (Outcome.YES, Outcome.NO):
            winner = market.token(market.result is Outcome.YES)
            assert messages[market.condition_id]["winning_asset_id"] == winner
    _, listed = await get(
        http,
        f"{sim.gamma_url}/markets/keyset",
        limit=100,
        closed="true",
        uma_resolution_status="resolved",
    )
    assert listed["markets"]
    assert all(m["umaResolutionStatus"] == "resolved" for m in listed["markets"])


async def test_stats_and_clock_control(sim: Simulator, http: aiohttp.ClientSession) -> None:
    _, stats = await get(http, f"{sim.base_url}/_sim/stats")
    assert stats["markets"] == 200
    assert stats["tokens"] == 400
    assert stats["clock"]["speed"] == 0.0
    assert set(stats) >= {"trades_emitted", "ws_connections", "ws_messages_sent", "faults", "clock"}
    began = stats["clock"]["now"]
    clock = await post(http, f"{sim.base_url}/_sim/clock/advance", {"seconds": 90})
    assert abs(clock["now"] - began - 90) < 1
    async with http.post(f"{sim.base_url}/_sim/clock/advance", json={"seconds": -5}) as response:
        assert response.status == 400
    assert sim.env() == {
        "POLYFARM_GAMMA_URL": sim.gamma_url, "POLYFARM_CLOB_URL": sim.clob_url,
        "POLYFARM_DATA_URL": sim.data_url, "POLYFARM_WS_URL": sim.ws_url,
    }  # fmt: skip
    assert sim.ws_url.startswith("ws://127.0.0.1:")
    assert sim.gamma_url.endswith("/gamma")
