"""The clients against the simulator (``polyfarm.sim``): real HTTP and WebSocket servers.

Each fault kind must be survived (retried until the data is complete) or fail with a clear,
typed error; none may crash a parser or a stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from polyfarm.errors import PayloadError
from polyfarm.polymarket import (
    BookSnapshot,
    ClobClient,
    Counters,
    DataApiClient,
    GammaClient,
    MarketStream,
    RateLimiter,
    StreamClosedError,
    TradePrint,
    WsCount,
    reconnecting,
)
from polyfarm.settings import Settings, WebSocketSettings
from tests.polymarket.support import RecordingSleep, rest

sim_module = pytest.importorskip("polyfarm.sim")
Simulator, SimConfig = sim_module.Simulator, sim_module.SimConfig

STAMP = datetime(2026, 6, 1, tzinfo=UTC)
WS = WebSocketSettings(ping_interval_s=0.2)


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[Any]:
    async with Simulator(SimConfig(markets=200, seed=7, speed=1.0, faults="")) as running:
        running.clock.advance(1_800)  # half an hour of trading so the tapes are not empty
        running.step()
        yield running


@pytest.fixture
def faults(sim: Any) -> Iterator[Any]:
    """The simulator's fault controller, cleared after each test."""
    controller = sim.faults
    yield controller
    controller.clear()


async def scan_market_ids(sim: Any, sleep: RecordingSleep, timeout_s: float = 5.0) -> list[str]:
    ids: list[str] = []
    async with GammaClient(rest(sim.gamma_url, "gamma", sleep, timeout_s)) as gamma:
        for closed in (False, True):  # Gamma lists open markets only unless asked
            async for page in gamma.iter_markets_keyset(closed=closed):
                assert page.rejects == ()
                ids.extend(m.market_id for m in page.items)
    return ids


def world_market_ids(sim: Any) -> set[str]:
    return {str(m.gamma_id) for m in sim.world.markets}


def burst(sim: Any, seconds: float = 300) -> None:
    """Jump the simulated clock so the watched markets emit a burst of WS events now."""
    sim.clock.advance(seconds)
    sim.step()


def open_tokens(sim: Any) -> list[str]:
    markets = sim.world.open_markets()
    return [t for m in markets for t in (m.yes_token, m.no_token)]


async def test_keyset_scans_visit_every_market_and_event_once(sim: Any) -> None:
    ids = await scan_market_ids(sim, RecordingSleep())
    assert len(ids) == len(set(ids))
    assert set(ids) == world_market_ids(sim)
    events: list[str] = []
    async with GammaClient(rest(sim.gamma_url, "gamma", RecordingSleep())) as gamma:
        for closed in (False, True):
            async for page in gamma.iter_events_keyset(closed=closed, limit=50):
                events.extend(e.event_id for e in page.items)
    assert len(events) == len(set(events)) == len(sim.world.events)


async def test_books_for_every_open_token(sim: Any) -> None:
    tokens = open_tokens(sim)
    async with ClobClient(rest(sim.clob_url, "clob", RecordingSleep())) as clob:
        batch = await clob.get_books(tokens)
    assert batch.rejects == ()
    assert set(batch.items) | set(batch.missing) == set(tokens)
    assert len(batch.items) >= len(tokens) * 0.95  # a few may close while we ask
    for book in batch.items.values():
        assert [lv.price for lv in book.bids] == sorted(lv.price for lv in book.bids)
        if book.best_bid and book.best_ask:
            assert book.best_bid.price < book.best_ask.price


async def test_trades_v1_and_v2_agree(sim: Any) -> None:
    markets = sim.world.markets[:10]
    conditions = [m.condition_id for m in markets]
    async with DataApiClient(rest(sim.data_url, "data", RecordingSleep())) as data:
        v1 = {t.dedupe_key async for page in data.iter_trades(conditions) for t in page.items}
        v2 = {t.dedupe_key async for page in data.iter_trades_v2(conditions) for t in page.items}
    assert v1
    assert len(v1 ^ v2) <= len(v1) * 0.05  # trades arriving between the two scans


async def test_ws_stream_receives_books_and_trades(sim: Any) -> None:
    tokens = open_tokens(sim)[:400]  # within the ~500 assets/connection cap
    counters = Counters()
    books: set[str] = set()
    trades = 0
    async with MarketStream(sim.ws_url, tokens, settings=WS, counters=counters) as stream:
        deadline = time.monotonic() + 30
        async for message in stream:
            if isinstance(message, BookSnapshot):
                books.add(message.book.asset_id)
            trades += isinstance(message, TradePrint)
            if (trades and books == set(tokens)) or time.monotonic() > deadline:
                break
            if len(books) == len(tokens) and not trades:
                burst(sim, 30)
    assert books == set(tokens)
    assert trades >= 1
    assert counters.get(WsCount.BAD_FRAME) == counters.get(WsCount.BAD_MESSAGE) == 0
    assert stream.last_data_at is not None


# --- faults --------------------------------------------------------------------------------

SURVIVABLE_HTTP_FAULTS = [
    "http_429=0.3,retry_after_s=2",
    "http_5xx=0.3",
    "timeout=0.2,timeout_s=2",
    "latency_ms=30",
    "malformed_json=0.3",
    "truncated_json=0.3",
    "extra_fields=0.5",
    "data:http_200_error=0.4",
]


@pytest.mark.parametrize("spec", SURVIVABLE_HTTP_FAULTS)
async def test_http_faults_are_survived(sim: Any, faults: Any, spec: str) -> None:
    baseline_ids = sorted(await scan_market_ids(sim, RecordingSleep()))
    tokens = open_tokens(sim)[:200]
    conditions = [m.condition_id for m in sim.world.markets[:5]]
    async with DataApiClient(rest(sim.data_url, "data", RecordingSleep())) as data:
        baseline_trades = {
            t.dedupe_key async for page in data.iter_trades(conditions) for t in page.items
        }
    kind = spec.split("=")[0].split(":")[-1]
    injected_before = faults.counts[kind]
    faults.set(spec)
    sleep = RecordingSleep()
    # Faults are random per request: repeat the (fully checked) workload until one fired.
    for _round in range(10):
        assert sorted(await scan_market_ids(sim, sleep, timeout_s=0.5)) == baseline_ids
        async with ClobClient(rest(sim.clob_url, "clob", sleep, timeout_s=0.5)) as clob:
            books = await clob.get_books(tokens)
        assert books.rejects == ()
        assert len(books.items) >= len(tokens) * 0.95
        async with DataApiClient(rest(sim.data_url, "data", sleep, timeout_s=0.5)) as data:
            trades = {
                t.dedupe_key async for page in data.iter_trades(conditions) for t in page.items
            }
        assert baseline_trades <= trades
        if faults.counts[kind] > injected_before:
            break
    else:
        pytest.fail(f"{spec} never fired")
    if spec.startswith("http_429"):
        assert 2.0 in sleep.delays  # Retry-After honoured


async def test_missing_fields_are_rejected_or_fail_clearly(sim: Any, faults: Any) -> None:
    """A dropped field either quarantines the record (with a reason) or fails the call with
    a typed error; a dropped ``next_cursor`` cannot be told from the last page (reference)."""
    faults.set("missing_fields=0.5")
    known = world_market_ids(sim)
    outcomes: list[str] = []
    async with GammaClient(rest(sim.gamma_url, "gamma", RecordingSleep())) as gamma:
        for _attempt in range(5):
            try:
                async for page in gamma.iter_markets_keyset(limit=20):
                    assert {m.market_id for m in page.items} <= known
                    assert all(r.reason for r in page.rejects)
            except PayloadError as exc:
                outcomes.append(str(exc))  # the page envelope lost `markets`
            else:
                outcomes.append("completed")
    assert all(outcomes)
    async with ClobClient(rest(sim.clob_url, "clob", RecordingSleep())) as clob:
        for _attempt in range(3):
            batch = await clob.get_books(open_tokens(sim)[:100])
            assert all(r.reason for r in batch.rejects)
            # A book that lost its asset_id cannot be keyed; the others name their token.
            assert {r.key for r in batch.rejects if r.key} <= set(batch.missing)
            assert len(batch.items) + len(batch.missing) == 100


async def test_ws_drop_is_survived_by_reconnecting(sim: Any, faults: Any) -> None:
    tokens = open_tokens(sim)[:40]
    faults.set("ws_drop=0.05")
    drops = received = 0

    def factory() -> MarketStream:
        return MarketStream(sim.ws_url, tokens, settings=WS)

    async for stream in reconnecting(factory, settings=WS, sleep=RecordingSleep()):
        try:
            async for _message in stream:
                received += 1
                if received % 40 == 0:
                    burst(sim, 60)
        except StreamClosedError:
            drops += 1
            if drops == 3:
                break
    assert drops == 3
    assert received > 0


@pytest.mark.parametrize(
    "spec", ["ws_duplicate=0.5", "ws_malformed=0.2", "ws_out_of_order=0.3", "hash_mismatch=0.5"]
)
async def test_ws_frame_faults_do_not_kill_the_stream(sim: Any, faults: Any, spec: str) -> None:
    faults.set(spec)
    counters = Counters()
    messages = []
    stream = MarketStream(
        sim.ws_url,
        open_tokens(sim)[:60],
        settings=WS,
        counters=counters,
        wall_clock=lambda: STAMP,
    )
    async with stream:
        async for message in stream:
            messages.append(message)
            if len(messages) % 50 == 0:
                burst(sim, 120)
            if len(messages) >= 150:
                break
    if spec.startswith("ws_duplicate"):
        assert len(set(messages)) < len(messages)  # duplicates are delivered, consumers dedupe
    if spec.startswith("ws_malformed"):
        assert counters.get(WsCount.BAD_FRAME) + counters.get(WsCount.BAD_MESSAGE) > 0


async def drain_until_quiet(stream: MarketStream, quiet_s: float) -> None:
    while True:
        try:
            await asyncio.wait_for(anext(stream), quiet_s)
        except TimeoutError:
            return


async def test_ws_stall_is_visible_in_last_data_at(sim: Any, faults: Any) -> None:
    counters = Counters()
    async with MarketStream(
        sim.ws_url, open_tokens(sim)[:20], settings=WS, counters=counters
    ) as stream:
        await asyncio.wait_for(anext(stream), 10)
        faults.set("ws_stall=1")
        burst(sim, 60)
        await drain_until_quiet(stream, quiet_s=1.0)  # what was sent before the stall
        stalled_at = stream.last_data_at
        pongs = counters.get(WsCount.CONTROL_PONG)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(stream), 1.0)
    assert stream.last_data_at == stalled_at  # PONGs keep coming, data does not
    assert counters.get(WsCount.CONTROL_PONG) > pongs


async def test_prices_history_window_chaining(sim: Any) -> None:
    token = open_tokens(sim)[0]
    now = datetime.fromtimestamp(sim.clock.now(), UTC)
    async with ClobClient(rest(sim.clob_url, "clob", RecordingSleep())) as clob:
        points = await clob.get_prices_history(
            token, start=now - timedelta(days=40), end=now, fidelity=60
        )
    stamps = [p.t for p in points]
    assert stamps == sorted(set(stamps))


async def test_clients_built_from_settings_share_one_limiter(sim: Any) -> None:
    settings = Settings(
        gamma_url=sim.gamma_url,
        clob_url=sim.clob_url,
        data_url=sim.data_url,
        ws_url=sim.ws_url,
    )
    limiter = RateLimiter.from_settings(settings.rate_limits)
    async with (
        GammaClient.from_settings(settings, limiter) as gamma,
        ClobClient.from_settings(settings, limiter) as clob,
        DataApiClient.from_settings(settings, limiter) as data,
    ):
        page = await anext(gamma.iter_markets_keyset(limit=5))
        market = page.items[0]
        books = await clob.get_books(list(market.token_ids))
        trades = [t async for p in data.iter_trades([market.condition_id]) for t in p.items]
    assert gamma.rest.limiter is clob.rest.limiter is data.rest.limiter
    assert set(books.items) | set(books.missing) == set(market.token_ids)
    assert all(t.condition_id == market.condition_id for t in trades)
    async with MarketStream.from_settings(settings, list(market.token_ids)) as stream:
        first = await asyncio.wait_for(anext(stream), 10)
    assert isinstance(first, BookSnapshot)
