"""The clients against the simulator's 2026 venue: Protocol V2 ids, the official client v2's
CLOB endpoints, Data API ``/v2/prices-history`` with its CLOB fallback, ``/v2/trades`` quirks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import ValidationError

from polyfarm.polymarket import (
    ClobClient,
    DataApiClient,
    GammaClient,
    MarketStream,
    ProtocolVersion,
)
from polyfarm.polymarket.clob import SAMPLING_MARKETS, SAMPLING_SIMPLIFIED_MARKETS
from polyfarm.polymarket.history import HistoryRoute, PriceHistory
from polyfarm.settings import WebSocketSettings
from polyfarm.sim import SimConfig, Simulator
from tests.polymarket.support import RecordingSleep, rest


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[Simulator]:
    config = SimConfig(markets=120, seed=12, speed=0.0, v2_share=0.7, rate_limits=False)
    async with Simulator(config) as running:
        running.clock.advance(3 * 3600)  # three hours of trading and price history
        running.step()
        yield running


def clients(sim: Simulator) -> tuple[GammaClient, ClobClient, DataApiClient]:
    sleep = RecordingSleep()
    return (
        GammaClient(rest(sim.gamma_url, "gamma", sleep)),
        ClobClient(rest(sim.clob_url, "clob", sleep)),
        DataApiClient(rest(sim.data_url, "data", sleep)),
    )


async def test_every_market_gets_its_trading_ids_whichever_protocol(sim: Simulator) -> None:
    gamma, _, _ = clients(sim)
    async with gamma:
        parsed = [m async for page in gamma.iter_markets_keyset() for m in page.items]
    truth = {str(m.gamma_id): m for m in sim.world.markets}
    assert len(parsed) == sum(1 for m in sim.world.markets if m.is_open)
    schemes = {m.protocol_version for m in parsed}
    assert schemes == {ProtocolVersion.V1, ProtocolVersion.V2}
    assert any(m.declared_version is None for m in parsed), "v1 markets without a version"
    for market in parsed:
        world = truth[market.market_id]
        assert market.token_ids == (world.yes_token, world.no_token)
        assert market.protocol_version is ProtocolVersion(world.protocol)
    # What a client reading clobTokenIds alone would have subscribed: nothing that trades.
    naive = {t.ctf_token_id for m in parsed for t in m.tokens} - {None}
    v2 = [m for m in parsed if m.protocol_version is ProtocolVersion.V2]
    assert v2
    assert not naive & {t for m in v2 for t in m.token_ids}, "CTF ids are not trading ids"


async def test_the_official_client_v2_endpoints(sim: Simulator) -> None:
    gamma, clob, _ = clients(sim)
    async with gamma, clob:
        assert await clob.get_ok() == "OK"
        assert await clob.get_version() == 2
        market = (await anext(gamma.iter_markets_keyset())).items[0]
        info = await clob.get_clob_market_info(market.condition_id)
        found = await clob.get_market_by_token(market.token_ids[1])
        sampled = [m async for page in clob.iter_markets(path=SAMPLING_MARKETS) for m in page.items]
        simple = [
            m
            async for page in clob.iter_markets(path=SAMPLING_SIMPLIFIED_MARKETS)
            for m in page.items
        ]
    assert info.condition_id == found.condition_id == market.condition_id
    assert tuple(t.token_id for t in info.tokens) == market.token_ids
    assert (found.primary_token_id, found.secondary_token_id) == market.token_ids
    assert info.min_tick_size == market.tick_size
    assert info.min_order_size == market.min_order_size
    assert info.neg_risk is market.neg_risk
    rewarded = {m.condition_id for m in sim.world.markets if m.rewarded and m.is_open}
    assert {m.condition_id for m in sampled} == rewarded == {m.condition_id for m in simple}
    assert 0 < len(rewarded) < sum(1 for m in sim.world.markets if m.is_open)


def busy_token(sim: Simulator) -> str:
    """A token whose book changed often, the last time off a minute boundary."""
    market = max(
        (
            m
            for m in sim.world.markets
            if m.is_open and m.book is not None and m.book.ts_ms // 1000 % 60
        ),
        key=lambda m: len(m.hist_min),
    )
    return market.yes_token


def busiest(sim: Simulator) -> Any:
    return max(sim.world.markets, key=lambda m: len(sim.world.trades.for_market(m)))


async def test_data_api_price_history_pages_and_windows(sim: Simulator) -> None:
    _, clob, data = clients(sim)
    token = busy_token(sim)
    book = sim.world.tokens[token][0].book
    assert book is not None
    last_change = book.ts_ms // 1000
    now = datetime.fromtimestamp(last_change + 1, UTC)  # ends just after the last real tick
    start = now - timedelta(hours=2)
    async with clob, data:
        pages = [
            page
            async for page in data.iter_prices_history(token, start=start, end=now, page_size=25)
        ]
        points = [p for page in pages for p in page.items]
        old = next(
            m
            for m in sim.world.markets
            if m.is_open and m.created_s < sim.clock.now() - 25 * 86_400
        )
        chained = await data.get_prices_history(
            old.yes_token, start=now - timedelta(days=20), end=now, bucket_seconds=3600
        )
        clob_points = await clob.get_prices_history(token, start=start, end=now, fidelity=1)
        last_hour = [
            p
            async for page in data.iter_prices_history(token, interval="1h", bucket_seconds=60)
            for p in page.items
        ]
        (at,) = [p async for page in data.iter_prices_history(token, as_of=now) for p in page.items]
        nothing = [
            p async for page in data.iter_prices_history("12345", interval="1d") for p in page.items
        ]
    assert len(pages) > 4, "25 points a page over two hours of minutes"
    assert [p.t for p in points] == sorted(p.t for p in points)
    minutes = [p for p in points if p.resolution_s == 60]
    assert len(minutes) == 120
    assert points[-1].resolution_s == 0, "the series ends with its terminal tick"
    assert int(points[-1].t.timestamp()) == last_change
    assert points[-1].t > points[-2].t
    # The same midpoints as the CLOB route, bucket for bucket.
    by_minute = {p.t: p.p for p in clob_points}
    assert all(by_minute[p.t] == p.p for p in minutes)
    assert 20 * 24 - 2 <= len(chained) <= 20 * 24 + 2, "20 days at hourly buckets, two windows"
    assert len({p.t for p in chained}) == len(chained)
    assert 55 <= len([p for p in last_hour if p.resolution_s == 60]) <= 61
    assert at.t <= now
    assert nothing == []


async def test_price_history_falls_back_from_one_route_to_the_other(sim: Simulator) -> None:
    _, clob, data = clients(sim)
    token = busy_token(sim)
    # A window ending on a minute boundary: the routes disagree on whether the end is in it.
    now = datetime.fromtimestamp(sim.clock.now() // 60 * 60, UTC)
    start = now - timedelta(hours=1)
    async with clob, data:
        history = PriceHistory(clob, data)
        served = await history.between(token, start, now)
        sim.faults.set("data:http_5xx=1.0")
        try:
            fallback = await history.between(token, start, now)
        finally:
            sim.faults.clear()
        unknown = await PriceHistory(clob, data, prefer=HistoryRoute.CLOB).between(
            "12345", start, now
        )
    assert served.route is HistoryRoute.DATA_API
    assert served.fallback_reason is None
    assert fallback.route is HistoryRoute.CLOB
    assert fallback.fallback_reason is not None
    assert "data_api failed" in fallback.fallback_reason
    assert [p.p for p in fallback.points] == [p.p for p in served.points if p.resolution_s == 60], (
        "both routes tell the same midpoints"
    )
    assert unknown.points == []
    assert unknown.fallback_reason is None  # both routes empty: the preferred answer stands
    with pytest.raises(ValueError, match="whole number of minutes"):
        await history.between(token, start, now, bucket_s=90)


async def test_an_empty_route_falls_back_to_one_with_points() -> None:
    """py-clob-client #216: the CLOB's resolved markets at fine buckets answer nothing."""
    config = SimConfig(
        markets=30, seed=3, speed=0.0, history_bug_216=True, rate_limits=False,
        resolution_delay_s=(10.0, 20.0),
    )  # fmt: skip
    async with Simulator(config) as sim:
        sim.clock.advance(2 * 86_400)
        sim.step()
        market = next(m for m in sim.world.markets if m.resolved_s is not None)
        _, clob, data = clients(sim)
        assert market.closed_s is not None
        end = datetime.fromtimestamp(market.closed_s, UTC)
        async with clob, data:
            series = await PriceHistory(clob, data, prefer=HistoryRoute.CLOB).between(
                market.yes_token, end - timedelta(hours=1), end
            )
    assert series.route is HistoryRoute.DATA_API
    assert series.fallback_reason == "clob had no points"
    assert series.points


async def test_v2_trades_with_unknown_outcome_index_and_event_slug(sim: Simulator) -> None:
    _, _, data = clients(sim)
    market = busiest(sim)
    async with data:
        v2 = [t async for page in data.iter_trades_v2([market.condition_id], page_size=7)
              for t in page.items]  # fmt: skip
        v1 = [t async for page in data.iter_trades([market.condition_id]) for t in page.items]
    assert v2, "the market traded"
    assert sorted(t.dedupe_key for t in v2) == sorted(t.dedupe_key for t in v1)
    assert any(t.outcome_index is None and t.event_slug is None for t in v2)
    assert all(t.outcome_index in (0, 1) for t in v1)


async def test_simulated_pages_carry_limit_and_offset(sim: Simulator) -> None:
    market = busiest(sim)
    assert len(sim.world.trades.for_market(market)) > 9
    url = f"{sim.data_url}/v2/trades"
    offsets = []
    async with aiohttp.ClientSession() as http:
        params: dict[str, Any] = {"condition": market.condition_id, "limit": 3}
        for _ in range(3):
            async with http.get(url, params=params) as response:
                body = orjson.loads(await response.read())
            offsets.append(body["pagination"]["offset"])
            assert body["pagination"]["limit"] == 3
            params = {"condition": market.condition_id, "cursor": body["pagination"]["next_cursor"]}
    assert offsets == [0, 3, 6]


async def test_the_client_pings_often_enough_to_keep_its_connections() -> None:
    """The venue closes a connection that has not pinged for 10 s; the client's default is
    half that, and a setting at or past the limit is refused. Here at a tenth of the scale."""
    assert WebSocketSettings().ping_interval_s * 2 <= 10.0
    with pytest.raises(ValidationError):
        WebSocketSettings(ping_interval_s=10.0)
    config = SimConfig(markets=10, seed=2, speed=0.0, ws_idle_timeout_s=1.0, rate_limits=False)
    async with Simulator(config) as sim:
        tokens = [m.yes_token for m in sim.world.markets if m.is_open]
        settings = WebSocketSettings(ping_interval_s=0.5)
        received = 0
        async with MarketStream(sim.ws_url, tokens, settings=settings) as stream:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3.0):  # three idle timeouts
                    async for _ in stream:
                        received += 1
        assert received == len(tokens), "the book dump, then a quiet but open connection"
        assert sim.state.counters.get("ws_idle_closed", 0) == 0
