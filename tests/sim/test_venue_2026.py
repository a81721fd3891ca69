"""The simulator as the venue is in late 2026: Protocol V2 ids, WebSocket books without their
metadata, 0.0025 ticks, idle-connection close, a bad first frame, Data API price history."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from polyfarm.sim import Simulator
from polyfarm.sim.render_gamma import PUSD
from polyfarm.sim.wire import TICK_QUARTER
from polyfarm.sim.world import World, WorldParams

from .support import Feed, advance, reference_hash, running

Json = Any
START = 1_772_366_400.0


async def get(http: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Json]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json(content_type=None)


async def gamma_markets(http: aiohttp.ClientSession, sim: Simulator) -> list[Json]:
    markets: list[Json] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        _, body = await get(http, f"{sim.gamma_url}/markets/keyset", **params)
        markets += body["markets"]
        if "next_cursor" not in body:
            return markets
        params = {"limit": 100, "after_cursor": body["next_cursor"]}


async def test_markets_publish_their_trading_ids_in_the_field_their_version_names(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    kinds: Counter[str] = Counter()
    other_ids: list[str] = []
    for market in await gamma_markets(http, sim):
        world = sim.world.by_gamma_id[int(market["id"])]
        trading = [world.yes_token, world.no_token]
        ctf = json.loads(market["clobTokenIds"]) if "clobTokenIds" in market else None
        positions = market.get("positionIds")
        if market.get("version") == "v2":
            assert positions == trading
            assert ctf is None or not set(ctf) & set(trading), "CTF ids are not trading ids"
            kinds["v2" if ctf else "v2 without clobTokenIds"] += 1
            other_ids += ctf or []
        else:
            assert market.get("version", "v1") == "v1"
            assert ctf == trading
            assert positions is None or not set(positions) & set(trading)
            kinds["v1" if "version" in market else "v1 without version"] += 1
            kinds["v1 with positionIds"] += positions is not None
            other_ids += positions or []
    print(kinds)
    assert all(kinds[k] for k in ("v2", "v2 without clobTokenIds", "v1", "v1 without version",
                                  "v1 with positionIds"))  # fmt: skip
    assert (
        kinds["v2"] + kinds["v2 without clobTokenIds"] > kinds["v1"] + kinds["v1 without version"]
    )
    # The ids a client must not trade on answer nothing anywhere.
    for token in other_ids[:20]:
        status, _ = await get(http, f"{sim.clob_url}/book", token_id=token)
        assert status == 404
        status, _ = await get(http, f"{sim.clob_url}/markets-by-token/{token}")
        assert status == 404
    async with http.ws_connect(sim.ws_url) as ws:
        reader = Feed(ws)
        await reader.subscribe(other_ids)
        assert await reader.read(quiet=0.3) == []


def test_the_share_of_v2_markets_is_configurable() -> None:
    for share, expected in ((0.0, {"v1"}), (1.0, {"v2"})):
        world = World(WorldParams(seed=4, markets=300, v2_share=share), START)
        assert {m.protocol for m in world.markets} == expected
    mixed = World(WorldParams(seed=4, markets=300, v2_share=0.8), START)
    share = sum(m.protocol == "v2" for m in mixed.markets) / 300
    assert 0.7 < share < 0.9


async def test_some_markets_tick_at_a_quarter_of_a_cent(http: aiohttp.ClientSession) -> None:
    async with running(markets=400, seed=8) as sim:
        quarter = [m for m in sim.world.markets if m.tick == TICK_QUARTER and m.is_open]
        assert quarter
        await advance(sim, 120)
        for market in quarter[:5]:
            _, book = await get(http, f"{sim.clob_url}/book", token_id=market.yes_token)
            _, tick = await get(http, f"{sim.clob_url}/tick-size", token_id=market.yes_token)
            _, gamma = await get(http, f"{sim.gamma_url}/markets/{market.gamma_id}")
            assert book["tick_size"] == "0.0025"
            assert tick["minimum_tick_size"] == 0.0025
            assert gamma["orderPriceMinTickSize"] == 0.0025
            prices = [Decimal(lv["price"]) for lv in book["bids"] + book["asks"]]
            assert all(p % Decimal("0.0025") == 0 for p in prices)
            assert any(-p.as_tuple().exponent == 4 for p in prices), "four decimals occur"


async def test_ws_books_lack_min_order_size_and_neg_risk_yet_their_hash_covers_them(
    http: aiohttp.ClientSession,
) -> None:
    async with running(markets=300, seed=6) as sim:
        open_markets = [m for m in sim.world.markets if m.is_open]
        assert {m.min_size for m in open_markets} >= {1, 5, 15}
        assert any(m.neg_risk for m in open_markets)
        metadata = {m["id"]: m for m in await gamma_markets(http, sim)}
        async with http.ws_connect(sim.ws_url) as ws:
            reader = Feed(ws)
            tokens = [t for m in open_markets for t in (m.yes_token, m.no_token)]
            await reader.subscribe(tokens)
            books = await reader.read_until(lambda events: len(events) >= len(tokens))
        checked = Counter()
        for book in books:
            market, _ = sim.world.tokens[book["asset_id"]]
            gamma = metadata[str(market.gamma_id)]
            assert "min_order_size" not in book
            assert "neg_risk" not in book
            assert {"tick_size", "last_trade_price"} <= set(book)
            seed = {"min_order_size": str(gamma["orderMinSize"]), "neg_risk": gamma["negRisk"]}
            assert book["hash"] == reference_hash(book, seed)
            wrong = {"min_order_size": str(gamma["orderMinSize"] + 1), "neg_risk": gamma["negRisk"]}
            assert book["hash"] != reference_hash(book, wrong)
            checked[gamma["orderMinSize"], gamma["negRisk"]] += 1
        assert len(checked) >= 4, checked
        _, rest = await get(http, f"{sim.clob_url}/book", token_id=books[0]["asset_id"])
        assert rest["hash"] == books[0]["hash"]
        assert rest["min_order_size"] == str(metadata[str(
            sim.world.tokens[books[0]["asset_id"]][0].gamma_id)]["orderMinSize"])  # fmt: skip


async def test_connections_that_do_not_ping_are_closed(http: aiohttp.ClientSession) -> None:
    async with running(markets=20, seed=3, ws_idle_timeout_s=0.6) as sim:
        tokens = [sim.world.markets[0].yes_token]
        silent = await http.ws_connect(sim.ws_url)
        text_pinger = await http.ws_connect(sim.ws_url)
        frame_pinger = await http.ws_connect(sim.ws_url, autoping=True)
        for ws in (silent, text_pinger, frame_pinger):
            await ws.send_str(json.dumps({"assets_ids": tokens, "type": "market"}))
        for _ in range(8):  # 1.6 s
            await text_pinger.send_str("PING")
            await frame_pinger.ping()
            await asyncio.sleep(0.2)
        closed = await silent.receive(timeout=5)
        while closed.type is aiohttp.WSMsgType.TEXT:  # the book dump came first
            closed = await silent.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert silent.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        assert not text_pinger.closed
        assert not frame_pinger.closed
        _, stats = await get(http, f"{sim.base_url}/_sim/stats")
        assert stats["ws_connections"] == 2
        assert sim.state.counters["ws_idle_closed"] == 1
        for ws in (silent, text_pinger, frame_pinger):
            await ws.close()


@pytest.mark.parametrize(
    "first",
    [
        "hello",
        '{"type": "market"}',
        '{"assets_ids": [], "operation": "subscribe"}',
        '{"assets_ids": [], "type": "user"}',
    ],
)
async def test_a_first_frame_that_is_no_subscription_leaves_the_connection_silent(
    sim: Simulator, http: aiohttp.ClientSession, first: str
) -> None:
    tokens = [m.yes_token for m in sim.world.markets if m.is_open][:10]
    async with http.ws_connect(sim.ws_url) as ws:
        reader = Feed(ws)
        await ws.send_str(first)
        await reader.subscribe(tokens)
        await ws.send_str("PING")
        await advance(sim, 120)
        assert await reader.read(quiet=0.3) == []
        assert reader.texts == ["PONG"], "the connection is open and answers PING"
    assert sim.state.counters["ws_bad_first_frame"] == 1


async def test_rewards_are_paid_in_pusd(sim: Simulator, http: aiohttp.ClientSession) -> None:
    market = next(m for m in sim.world.markets if m.is_open)
    _, gamma = await get(http, f"{sim.gamma_url}/markets/{market.gamma_id}")
    _, clob = await get(http, f"{sim.clob_url}/markets/{market.condition_id}")
    assert gamma["clobRewards"][0]["assetAddress"] == PUSD
    assert clob["rewards"]["rates"][0]["asset_address"] == PUSD
    assert PUSD.startswith("0xc011a7e1")


# -- Data API /v2/prices-history --------------------------------------------------------------


async def history(http: aiohttp.ClientSession, sim: Simulator, **params: Any) -> tuple[int, Json]:
    return await get(http, f"{sim.data_url}/v2/prices-history", **params)


async def test_price_history_v2_windows_grains_and_paging(http: aiohttp.ClientSession) -> None:
    async with running(markets=60, seed=9) as sim:
        await advance(sim, 3600, steps=4)
        market = max(
            (m for m in sim.world.markets if m.is_open and m.created_s < START - 20 * 86_400),
            key=lambda m: len(m.hist_min),
        )
        token, now = market.yes_token, int(sim.clock.now())
        _, hour = await history(http, sim, token_id=token, start=now - 3600, end=now)
        minutes = [p for p in hour["data"] if p["resolution_seconds"] == 60]
        assert len(minutes) == 60
        assert [p["timestamp"] for p in hour["data"]] == sorted(
            p["timestamp"] for p in hour["data"]
        )
        assert hour["pagination"] == {"has_more": False, "next_cursor": None}
        clob_status, clob = await get(
            http, f"{sim.clob_url}/prices-history", market=token, startTs=now - 3600,
            endTs=now - 1, fidelity=1,
        )  # fmt: skip
        assert clob_status == 200
        assert [p["p"] for p in clob["history"]] == [p["price"] for p in minutes]
        # Paging: three pages of 25 cover the hour.
        pages, params = [], {"token_id": token, "start": now - 3600, "end": now, "limit": 25}
        while True:
            _, page = await history(http, sim, **params)
            pages.append(page["data"])
            if not page["pagination"]["has_more"]:
                break
            params = {"token_id": token, "start": now - 3600, "end": now,
                      "cursor": page["pagination"]["next_cursor"]}  # fmt: skip
        assert [len(p) for p in pages[:2]] == [25, 25]
        assert [p for page in pages for p in page] == hour["data"]
        # Grains: 1-minute data only for 7 days; 3 h and 12 h forever.
        _, old = await history(
            http, sim, token_id=token, start=now - 10 * 86_400, end=now - 9 * 86_400
        )
        assert old["data"] == []
        _, coarse = await history(
            http, sim, token_id=token, start=now - 10 * 86_400, end=now - 9 * 86_400,
            bucket_seconds=10_800,
        )  # fmt: skip
        assert len(coarse["data"]) == 8
        _, life = await history(http, sim, token_id=token, interval="max")
        assert {p["resolution_seconds"] for p in life["data"][:-1]} == {43_200}
        assert life["data"][0]["timestamp"] >= market.created_s
        assert life["data"][0]["timestamp"] < market.created_s + 86_400, "back to its birth"
        _, at = await history(http, sim, token_id=token, as_of=now - 1800)
        (point,) = at["data"]
        assert point["timestamp"] <= now - 1800
        _, unknown = await history(http, sim, token_id="12345", interval="1d")
        assert unknown == {"data": [], "pagination": {"has_more": False, "next_cursor": None}}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "token_id is required"),
        ({"interval": "1d", "as_of": 1}, "exactly one of"),
        ({"end": 1_772_366_400}, "exactly one of"),
        ({"start": 1_770_000_000, "end": 1_772_000_000}, "more than 15 days"),
        ({"start": 1_700_000_000}, "at most 15 days back"),
        ({"interval": "2d"}, "unknown interval"),
        ({"interval": "1d", "bucket_seconds": 90}, "whole number of minutes"),
        ({"interval": "1d", "limit": 0}, "limit must be within"),
        ({"interval": "1d", "cursor": "!!"}, "invalid cursor"),
    ],
)
async def test_price_history_v2_refuses_bad_requests(
    sim: Simulator, http: aiohttp.ClientSession, params: dict[str, Any], message: str
) -> None:
    token = next(m.yes_token for m in sim.world.markets if m.is_open)
    query = {"token_id": token, **params} if params else {}
    status, body = await history(http, sim, **query)
    assert status == 400
    assert message in body["error"]


def _ping_from_a_thread(url: str, tokens: list[str], stop: threading.Event) -> list[str]:
    """A client on a thread (and event loop) of its own, PINGing every 0.2 s until ``stop``;
    returns how it ended."""

    async def client() -> list[str]:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"assets_ids": tokens, "type": "market"}))
            while not stop.is_set():
                await ws.send_str("PING")
                try:
                    while True:
                        message = await ws.receive(timeout=0.2)
                        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                            return [f"closed {ws.close_code}"]
                except TimeoutError:
                    pass
            return ["open"]

    return asyncio.run(client())


async def test_a_busy_server_does_not_close_a_client_that_kept_pinging() -> None:
    """The simulator's own event loop held for longer than the idle timeout (a venue-sized
    page being rendered) while the client kept PINGing: the PINGs are in the socket, unread;
    the connection stays open."""
    async with running(markets=20, seed=3, ws_idle_timeout_s=0.6) as sim:
        tokens = [sim.world.markets[0].yes_token]
        stop = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            ended = pool.submit(_ping_from_a_thread, sim.ws_url, tokens, stop)
            await asyncio.sleep(0.5)
            time.sleep(1.5)  # noqa: ASYNC251 - holding the server's loop (this test's) is the point
            await asyncio.sleep(1.0)
            stop.set()
            assert await asyncio.wrap_future(ended) == ["open"]
        assert sim.state.counters.get("ws_idle_closed", 0) == 0
