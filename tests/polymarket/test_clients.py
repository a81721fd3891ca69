"""Gamma, CLOB and Data API clients against a small fake Polymarket on 127.0.0.1."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiohttp import web

from polyfarm.errors import PayloadError
from polyfarm.polymarket.clob import HISTORY_MAX_SPAN_S, ClobClient, history_windows
from polyfarm.polymarket.data_api import OFFSET_MAX, DataApiClient
from polyfarm.polymarket.domain import NoOrderBook, OrderBook
from polyfarm.polymarket.gamma import GammaClient
from polyfarm.polymarket.http import NotFoundError
from tests.polymarket.conftest import FakeClock, make_rest, serve


def token(i: int) -> str:
    return str(10**75 + i)


def condition(i: int) -> str:
    return f"0x{i:064x}"


def gamma_market(i: int) -> dict[str, Any]:
    return {
        "id": str(i),
        "conditionId": condition(i),
        "question": f"Market {i}?",
        "outcomes": '["Yes", "No"]',
        "outcomePrices": '["0.5", "0.5"]',
        "clobTokenIds": orjson.dumps([token(2 * i), token(2 * i + 1)]).decode(),
    }


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


# --- Gamma ---------------------------------------------------------------------------------


def gamma_app(
    markets: list[dict[str, Any]], queries: list[dict[str, list[str]]]
) -> web.Application:
    """Keyset paging by ascending id; the cursor is opaque (base64 of the last id served)."""

    async def keyset(request: web.Request) -> web.Response:
        query = {k: request.query.getall(k) for k in request.query}
        queries.append(query)
        limit = min(int(request.query["limit"]), 100)  # server clamps like the real one
        after = request.query.get("after_cursor")
        start = int(base64.b64decode(after)) if after else -1
        rows = [m for m in markets if int(m["id"]) > start][:limit]
        body: dict[str, Any] = {"$schema": "x", "markets": rows}
        if rows and int(rows[-1]["id"]) < int(markets[-1]["id"]):
            body["next_cursor"] = base64.b64encode(rows[-1]["id"].encode()).decode()
        return json_response(body)

    async def one(request: web.Request) -> web.Response:
        found = [m for m in markets if m["id"] == request.match_info["id"]]
        if not found:
            return json_response({"type": "not found error", "error": "market not found"}, 404)
        return json_response(found[0])

    async def events(request: web.Request) -> web.Response:
        queries.append({k: request.query.getall(k) for k in request.query})
        cursor = request.query.get("after_cursor")
        page = (
            [{"id": "1", "markets": markets[:2]}]
            if cursor is None
            else [{"id": "2", "markets": []}]
        )
        return json_response({"events": page, "next_cursor": "c2" if cursor is None else None})

    app = web.Application()
    app.router.add_get("/markets/keyset", keyset)
    app.router.add_get("/markets/{id}", one)
    app.router.add_get("/events/keyset", events)
    return app


async def test_gamma_keyset_visits_every_market_once_and_repeats_filters(clock: FakeClock) -> None:
    markets = [gamma_market(i) for i in range(1, 251)]
    markets[120]["conditionId"] = "0xbroken"  # one bad market must not block the page
    queries: list[dict[str, list[str]]] = []
    async with (
        serve(gamma_app(markets, queries)) as url,
        GammaClient(make_rest(url, "gamma", retry_sleep=clock)) as gamma,
    ):
        pages = [
            page
            async for page in gamma.iter_markets_keyset(
                limit=500, closed=False, condition_ids=[condition(1), condition(2)]
            )
        ]
    ids = [m.market_id for page in pages for m in page.items]
    assert len(ids) == len(set(ids)) == 249
    assert [r.key for page in pages for r in page.rejects] == ["121"]
    assert len(queries) == 3
    assert pages[-1].next_cursor is None
    for i, query in enumerate(queries):
        assert query["limit"] == ["100"]
        assert query["closed"] == ["false"]
        assert query["condition_ids"] == [condition(1), condition(2)]
        assert ("after_cursor" in query) == (i > 0)


async def test_gamma_events_keyset_and_single_market(clock: FakeClock) -> None:
    queries: list[dict[str, list[str]]] = []
    async with (
        serve(gamma_app([gamma_market(i) for i in (5, 6)], queries)) as url,
        GammaClient(make_rest(url, "gamma", retry_sleep=clock)) as gamma,
    ):
        events = [
            e
            async for page in gamma.iter_events_keyset(limit=900, tag_id=[1, 2])
            for e in page.items
        ]
        market = await gamma.get_market(6)
        with pytest.raises(NotFoundError, match="market not found"):
            await gamma.get_market(7)
    assert [e.event_id for e in events] == ["1", "2"]
    assert [m.event_id for m in events[0].markets] == ["1", "1"]
    assert queries[0]["limit"] == ["500"]
    assert queries[1]["tag_id"] == ["1", "2"]
    assert market.market_id == "6"
    assert market.token_ids == (token(12), token(13))


async def test_gamma_keyset_detects_a_cursor_that_does_not_advance(clock: FakeClock) -> None:
    async def stuck(request: web.Request) -> web.Response:
        return json_response({"markets": [gamma_market(1)], "next_cursor": "same"})

    app = web.Application()
    app.router.add_get("/markets/keyset", stuck)
    async with serve(app) as url, GammaClient(make_rest(url, "gamma", retry_sleep=clock)) as gamma:
        with pytest.raises(PayloadError, match="not advancing"):
            async for _page in gamma.iter_markets_keyset():
                pass


# --- CLOB ----------------------------------------------------------------------------------


def clob_book(asset: str) -> dict[str, Any]:
    return {
        "market": condition(7),
        "asset_id": asset,
        "timestamp": "1786402809000",
        "hash": "h",
        "bids": [{"price": "0.01", "size": "10"}, {"price": "0.45", "size": "5"}],
        "asks": [{"price": "0.99", "size": "10"}, {"price": "0.55", "size": "5"}],
    }


class FakeClob:
    """The CLOB endpoints the client uses; ``calls`` records what each one was asked."""

    def __init__(self, known: set[str], calls: dict[str, list[Any]]) -> None:
        self.known = known
        self.calls = calls
        self.rng = random.Random(3)

    async def books(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.calls.setdefault("books", []).append(len(body))
        assert len(body) <= 500
        found = [clob_book(item["token_id"]) for item in body if item["token_id"] in self.known]
        self.rng.shuffle(found)  # the real server does not keep request order
        return json_response(found)

    async def book(self, request: web.Request) -> web.Response:
        if request.query["token_id"] not in self.known:
            return json_response({"error": "No orderbook exists for the requested token id"}, 404)
        return json_response(clob_book(request.query["token_id"]))

    async def prices(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.calls.setdefault("prices", []).append(len(body))
        out: dict[str, dict[str, str]] = {}
        for item in body:
            price = "0.45" if item["side"] == "BUY" else "0.55"
            out.setdefault(item["token_id"], {})[item["side"]] = price
        return json_response(out)

    async def midpoints(self, request: web.Request) -> web.Response:
        return json_response({i["token_id"]: "0.5" for i in orjson.loads(await request.read())})

    async def last_trades(self, request: web.Request) -> web.Response:
        items = orjson.loads(await request.read())
        return json_response(
            [{"token_id": i["token_id"], "price": "0.5", "side": "SELL"} for i in items]
        )

    async def history(self, request: web.Request) -> web.Response:
        start, end = int(request.query["startTs"]), int(request.query["endTs"])
        self.calls.setdefault("history", []).append((start, end))
        if end - start > HISTORY_MAX_SPAN_S:
            error = "invalid filters: 'startTs' and 'endTs' interval is too long"
            return json_response({"error": error}, 400)
        daily = [{"t": t, "p": 0.5} for t in range(start, end + 1, 86_400)]
        return json_response({"history": [*daily, {"t": end, "p": 0.5}]})

    async def markets(self, request: web.Request) -> web.Response:
        cursor = request.query["next_cursor"]
        seen = self.calls.setdefault("markets", [])
        seen.append(cursor)
        following = {"MA==": "MTAw", "MTAw": "LTE="}[cursor]
        rows = [{"condition_id": condition(len(seen)), "tokens": []}]
        return json_response({"limit": 1, "count": 1, "next_cursor": following, "data": rows})

    async def tick_size(self, request: web.Request) -> web.Response:
        return json_response({"minimum_tick_size": 0.001})


def clob_app(known: set[str], calls: dict[str, list[Any]]) -> web.Application:
    fake = FakeClob(known, calls)
    app = web.Application()
    app.router.add_post("/books", fake.books)
    app.router.add_get("/book", fake.book)
    app.router.add_post("/prices", fake.prices)
    app.router.add_post("/midpoints", fake.midpoints)
    app.router.add_post("/last-trades-prices", fake.last_trades)
    app.router.add_get("/prices-history", fake.history)
    app.router.add_get("/markets", fake.markets)
    app.router.add_get("/tick-size", fake.tick_size)
    return app


async def test_books_are_batched_and_joined_on_asset_id(clock: FakeClock) -> None:
    wanted = [token(i) for i in range(1_200)]
    known = set(wanted[:1_150])
    calls: dict[str, list[Any]] = {}
    async with (
        serve(clob_app(known, calls)) as url,
        ClobClient(make_rest(url, "clob", retry_sleep=clock)) as clob,
    ):
        batch = await clob.get_books([*wanted, wanted[0]])  # duplicates are requested once
    assert sorted(calls["books"]) == [200, 500, 500]
    assert set(batch.items) == known
    assert batch.missing == tuple(wanted[1_150:])
    for asset, book in batch.items.items():
        assert book.asset_id == asset
        assert book.best_bid is not None
        assert book.best_bid.price == Decimal("0.45")
        assert book.best_ask is not None
        assert book.best_ask.price == Decimal("0.55")


async def test_book_404_is_a_no_order_book_result(clock: FakeClock) -> None:
    async with (
        serve(clob_app({token(1)}, {})) as url,
        ClobClient(make_rest(url, "clob", retry_sleep=clock)) as clob,
    ):
        assert isinstance(await clob.get_book(token(1)), OrderBook)
        missing = await clob.get_book(token(2))
    assert isinstance(missing, NoOrderBook)
    assert missing.asset_id == token(2)
    assert "No orderbook exists" in missing.reason
    assert clock.sleeps == []


async def test_prices_midpoints_last_trades_and_tick_size(clock: FakeClock) -> None:
    tokens = [token(i) for i in range(600)]
    calls: dict[str, list[Any]] = {}
    async with (
        serve(clob_app(set(), calls)) as url,
        ClobClient(make_rest(url, "clob", retry_sleep=clock)) as clob,
    ):
        prices = await clob.get_prices(tokens)
        mids = await clob.get_midpoints(tokens[:3])
        last = await clob.get_last_trade_prices(tokens[:2])
        tick = await clob.get_tick_size(tokens[0])
    assert max(calls["prices"]) <= 500
    assert sum(calls["prices"]) == 1_200
    assert len(prices.items) == 600
    assert prices.items[tokens[9]].buy == Decimal("0.45")
    assert prices.items[tokens[9]].sell == Decimal("0.55")
    assert prices.missing == ()
    assert mids.items == dict.fromkeys(tokens[:3], Decimal("0.5"))
    assert last.items[tokens[1]].side == "SELL"
    assert tick == Decimal("0.001")


async def test_prices_history_chains_windows_within_the_cap(clock: FakeClock) -> None:
    calls: dict[str, list[Any]] = {}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=40)
    async with (
        serve(clob_app(set(), calls)) as url,
        ClobClient(make_rest(url, "clob", retry_sleep=clock)) as clob,
    ):
        points = await clob.get_prices_history(token(1), start=start, end=end, fidelity=1)
    windows = calls["history"]
    assert len(windows) == 3
    assert all(b - a <= HISTORY_MAX_SPAN_S for a, b in windows)
    assert windows[0][0] == int(start.timestamp())
    assert windows[-1][1] == int(end.timestamp())
    stamps = [p.t for p in points]
    assert stamps == sorted(set(stamps))
    assert stamps[0] == start
    assert stamps[-1] == end


def test_history_windows() -> None:
    assert history_windows(0, 10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert history_windows(5, 5) == []


async def test_clob_market_catalogue_cursor(clock: FakeClock) -> None:
    calls: dict[str, list[Any]] = {}
    async with (
        serve(clob_app(set(), calls)) as url,
        ClobClient(make_rest(url, "clob", retry_sleep=clock)) as clob,
    ):
        pages = [page async for page in clob.iter_markets()]
    assert calls["markets"] == ["MA==", "MTAw"]
    assert len(pages) == 2
    assert [m.condition_id for page in pages for m in page.items] == [condition(1), condition(2)]


# --- Data API ------------------------------------------------------------------------------


def trade_row(i: int, ts: int) -> dict[str, Any]:
    return {
        "proxyWallet": f"0x{i:040x}",
        "side": "BUY",
        "asset": token(1),
        "conditionId": condition(1),
        "size": 1 + i,
        "price": 0.5,
        "timestamp": ts,
        "transactionHash": f"0x{i:064x}",
    }


def data_app(rows: list[dict[str, Any]], queries: list[dict[str, str]]) -> web.Application:
    """v1 /trades: newest first, inclusive start/end, offset capped at 10,000 like the real API."""
    ordered = sorted(rows, key=lambda r: -r["timestamp"])

    async def trades(request: web.Request) -> web.Response:
        q = dict(request.query)
        queries.append(q)
        offset, limit = int(q.get("offset", 0)), int(q["limit"])
        if offset > OFFSET_MAX:
            return json_response({"error": "max historical trades offset of 10000 exceeded"}, 400)
        lo, hi = int(q.get("start", 0)), int(q.get("end", 2**40))
        window = [r for r in ordered if lo <= r["timestamp"] <= hi]
        return json_response(window[offset : offset + limit])

    async def trades_v2(request: web.Request) -> web.Response:
        q = dict(request.query)
        queries.append(q)
        at = int(q.get("cursor", "0"))
        size = int(q["limit"]) if "cursor" not in q else 1_000
        page = [
            {
                **{
                    k: v
                    for k, v in trade_row(i, 1_780_000_000 + i).items()
                    if k not in ("proxyWallet", "asset", "conditionId", "transactionHash")
                },
                "token_id": token(1),
                "condition_id": condition(1),
                "transaction_hash": f"0x{i:064x}",
            }
            for i in range(at, min(at + size, 2_500))
        ]
        more = at + size < 2_500
        return json_response(
            {
                "data": page,
                "pagination": {"has_more": more, "next_cursor": str(at + size) if more else None},
            }
        )

    app = web.Application()
    app.router.add_get("/trades", trades)
    app.router.add_get("/v2/trades", trades_v2)
    return app


async def test_v1_trades_split_windows_past_the_offset_budget(clock: FakeClock) -> None:
    base = 1_780_000_000
    # 25,000 trades, three per second: every window boundary cuts through a shared second.
    rows = [trade_row(i, base + i // 3) for i in range(25_000)]
    queries: list[dict[str, str]] = []
    async with (
        serve(data_app(rows, queries)) as url,
        DataApiClient(make_rest(url, "data", retry_sleep=clock)) as data,
    ):
        seen = [
            t.dedupe_key
            async for page in data.iter_trades(
                [condition(1)], start=datetime.fromtimestamp(base, UTC), page_size=1_000
            )
            for t in page.items
        ]
    assert len(seen) == len(set(seen)) == 25_000
    assert all(int(q["offset"]) <= OFFSET_MAX for q in queries)
    assert len({q.get("end") for q in queries}) >= 3  # several windows were needed
    assert all(q["market"] == condition(1) and q["takerOnly"] == "true" for q in queries)


async def test_v1_trades_small_market_single_request(clock: FakeClock) -> None:
    queries: list[dict[str, str]] = []
    async with (
        serve(data_app([trade_row(i, 1_780_000_000 + i) for i in range(7)], queries)) as url,
        DataApiClient(make_rest(url, "data", retry_sleep=clock)) as data,
    ):
        trades = [
            t async for page in data.iter_trades([condition(1), condition(2)]) for t in page.items
        ]
    assert len(trades) == 7
    assert len(queries) == 1
    assert queries[0]["market"] == f"{condition(1)},{condition(2)}"
    assert "end" not in queries[0]


async def test_v2_trades_follow_the_cursor(clock: FakeClock) -> None:
    queries: list[dict[str, str]] = []
    conditions = [condition(i) for i in range(25)]
    async with (
        serve(data_app([], queries)) as url,
        DataApiClient(make_rest(url, "data", retry_sleep=clock)) as data,
    ):
        pages = [page async for page in data.iter_trades_v2(conditions)]
    per_scan = 3  # 2,500 rows at 1,000 per page
    assert len(pages) == 2 * per_scan
    assert sum(len(p.items) for p in pages) == 5_000
    assert queries[0]["limit"] == "1000"
    assert "cursor" not in queries[0]
    assert queries[1]["cursor"] == "1000"
    assert "limit" not in queries[1]
    assert len(queries[0]["condition"].split(",")) == 20
    assert len(queries[3]["condition"].split(",")) == 5
