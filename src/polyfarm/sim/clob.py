"""CLOB REST routes (under ``/clob``): books, prices, midpoints, spreads, catalogue, time, and
the read-only calls of the official client v2 (``/ok``, ``/version``, ``/sampling-…``,
``/clob-markets/…``, ``/markets-by-token/…``)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from aiohttp import web

from polyfarm.sim.book import book_body, last_trade_text, mid_half, token_top
from polyfarm.sim.clob_history import batch_prices_history, prices_history
from polyfarm.sim.httputil import ApiError, json_body, json_response, raw_json
from polyfarm.sim.model import MarketState
from polyfarm.sim.render_clob import (
    clob_market,
    clob_market_info,
    market_by_token,
    simplified_market,
)
from polyfarm.sim.state import STATE, SimState
from polyfarm.sim.wire import PRICE_SCALE, half_units_str, price_str

NO_BOOK = "No orderbook exists for the requested token id"
BATCH_MAX = 500
FIRST_CURSOR, END_CURSOR = "MA==", "LTE="
CLOB_VERSION = 2  # CLOB V2 since 2026-04-28

Token = tuple[MarketState, bool]


def _state(request: web.Request) -> SimState:
    state = request.app[STATE]
    state.sync()
    return state


def _known(state: SimState, token_id: object) -> Token:
    if not isinstance(token_id, str) or not token_id:
        raise ApiError(400, "Invalid token id")
    found = state.world.token(token_id)
    if found is None:
        raise ApiError(404, NO_BOOK)
    return found


def _open(state: SimState, token_id: object) -> Token:
    market, is_yes = _known(state, token_id)
    if not state.world.open_book(market):
        raise ApiError(404, NO_BOOK)
    return market, is_yes


def _side_price(token: Token, side: object) -> str:
    if not isinstance(side, str) or side.upper() not in ("BUY", "SELL"):
        raise ApiError(400, "Invalid side")
    market, is_yes = token
    assert market.book is not None
    bid, ask = token_top(market.book, is_yes)
    if side.upper() == "BUY":
        return price_str(bid) if bid is not None else "0"
    return price_str(ask) if ask is not None else "1"


def _mid(token: Token) -> str:
    market, is_yes = token
    assert market.book is not None
    half = mid_half(market.book)
    if half is None:
        return "0.5"
    return half_units_str(half if is_yes else 2 * PRICE_SCALE - half)


def _spread(token: Token) -> str:
    market, is_yes = token
    assert market.book is not None
    bid, ask = token_top(market.book, is_yes)
    return price_str((ask if ask is not None else PRICE_SCALE) - (bid or 0))


def _last_trade(token: Token) -> dict[str, str]:
    market, is_yes = token
    price = last_trade_text(market, is_yes)
    return {"price": price or "0.5", "side": market.lts[0 if is_yes else 1] if price else ""}


async def get_book(request: web.Request) -> web.Response:
    market, is_yes = _open(_state(request), request.query.get("token_id"))
    return raw_json(book_body(market, is_yes))


async def _batch(
    request: web.Request, limit: int = BATCH_MAX
) -> tuple[SimState, list[dict[str, Any]]]:
    state = _state(request)
    items = await json_body(request)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ApiError(400, "Invalid payload")
    if len(items) > limit:
        raise ApiError(400, f"too many items in request, maximum is {limit}")
    return state, items


def _open_or_none(state: SimState, token_id: object) -> Token | None:
    try:
        return _open(state, token_id)
    except ApiError:
        return None


async def post_books(request: web.Request) -> web.Response:
    state, items = await _batch(request)
    bodies = []
    for item in items:
        token = _open_or_none(state, item.get("token_id"))
        if token is not None:
            bodies.append(book_body(*token))
    state.shuffle_rng.shuffle(bodies)  # the real server does not keep request order
    return raw_json("[" + ",".join(bodies) + "]")


async def get_price(request: web.Request) -> web.Response:
    token = _open(_state(request), request.query.get("token_id"))
    return json_response({"price": _side_price(token, request.query.get("side"))})


async def post_prices(request: web.Request) -> web.Response:
    state, items = await _batch(request)
    out: dict[str, dict[str, str]] = {}
    for item in items:
        token = _open_or_none(state, item.get("token_id"))
        if token is not None:
            side = str(item.get("side", "")).upper()
            out.setdefault(item["token_id"], {})[side] = _side_price(token, side)
    return json_response(out)


def _per_token(name: str, fn: Callable[[Token], str]) -> Any:
    async def single(request: web.Request) -> web.Response:
        return json_response({name: fn(_open(_state(request), request.query.get("token_id")))})

    async def batch(request: web.Request) -> web.Response:
        state, items = await _batch(request)
        tokens = {i.get("token_id"): _open_or_none(state, i.get("token_id")) for i in items}
        return json_response({t: fn(token) for t, token in tokens.items() if token is not None})

    return single, batch


async def get_last_trade_price(request: web.Request) -> web.Response:
    return json_response(_last_trade(_known(_state(request), request.query.get("token_id"))))


async def post_last_trades_prices(request: web.Request) -> web.Response:
    state, items = await _batch(request)
    out = []
    for item in items:
        found = state.world.token(str(item.get("token_id")))
        if found is not None:
            out.append({"token_id": item["token_id"], **_last_trade(found)})
    return json_response(out)


async def get_tick_size(request: web.Request) -> web.Response:
    market, _ = _open(_state(request), request.query.get("token_id"))
    return json_response({"minimum_tick_size": market.tick / PRICE_SCALE})


async def get_neg_risk(request: web.Request) -> web.Response:
    market, _ = _known(_state(request), request.query.get("token_id"))
    return json_response({"neg_risk": market.neg_risk})


async def get_fee_rate(request: web.Request) -> web.Response:
    _known(_state(request), request.query.get("token_id"))
    return json_response({"base_fee": 0})


def _catalogue(
    request: web.Request,
    render: Callable[[MarketState], dict[str, Any]],
    rewarded_only: bool = False,
) -> web.Response:
    """Cursor pages of the catalogue; the sampling variants list markets with rewards."""
    state = _state(request)
    raw = request.query.get("next_cursor") or FIRST_CURSOR
    if raw == END_CURSOR:
        return json_response({"limit": 0, "count": 0, "next_cursor": END_CURSOR, "data": []})
    try:
        offset = int(base64.b64decode(raw, validate=True).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid next_cursor") from None
    markets = state.world.markets
    if rewarded_only:
        markets = [m for m in markets if m.rewarded and m.is_open]
    size = state.config.clob_page_size
    page = markets[max(offset, 0) : max(offset, 0) + size]
    end = offset + size >= len(markets)
    cursor = END_CURSOR if end else base64.b64encode(str(offset + size).encode()).decode()
    data = [render(m) for m in page]
    return json_response({"limit": size, "count": len(data), "next_cursor": cursor, "data": data})


async def get_markets(request: web.Request) -> web.Response:
    return _catalogue(request, clob_market)


async def get_simplified_markets(request: web.Request) -> web.Response:
    return _catalogue(request, simplified_market)


async def get_sampling_markets(request: web.Request) -> web.Response:
    return _catalogue(request, clob_market, rewarded_only=True)


async def get_sampling_simplified_markets(request: web.Request) -> web.Response:
    return _catalogue(request, simplified_market, rewarded_only=True)


def _market_at(request: web.Request) -> MarketState:
    market = _state(request).world.by_condition.get(request.match_info["condition_id"])
    if market is None:
        raise ApiError(404, "market not found")
    return market


async def get_market(request: web.Request) -> web.Response:
    return json_response(clob_market(_market_at(request)))


async def get_clob_market_info(request: web.Request) -> web.Response:
    return json_response(clob_market_info(_market_at(request)))


async def get_market_by_token(request: web.Request) -> web.Response:
    market, _ = _known(_state(request), request.match_info["token_id"])
    return json_response(market_by_token(market))


async def get_version(request: web.Request) -> web.Response:
    return json_response({"version": CLOB_VERSION})


async def get_time(request: web.Request) -> web.Response:
    return json_response(int(request.app[STATE].clock.now()))


async def get_ok(request: web.Request) -> web.Response:
    return json_response("OK")


def clob_routes(prefix: str = "/clob") -> list[web.RouteDef]:
    midpoint, midpoints = _per_token("mid", _mid)
    spread, spreads = _per_token("spread", _spread)
    gets = {
        "/book": get_book, "/price": get_price, "/midpoint": midpoint, "/spread": spread,
        "/last-trade-price": get_last_trade_price, "/tick-size": get_tick_size,
        "/neg-risk": get_neg_risk, "/fee-rate": get_fee_rate, "/prices-history": prices_history,
        "/markets": get_markets, "/simplified-markets": get_simplified_markets,
        "/markets/{condition_id}": get_market, "/time": get_time, "/": get_ok, "/ok": get_ok,
        "/version": get_version, "/sampling-markets": get_sampling_markets,
        "/sampling-simplified-markets": get_sampling_simplified_markets,
        "/clob-markets/{condition_id}": get_clob_market_info,
        "/markets-by-token/{token_id}": get_market_by_token,
    }  # fmt: skip
    posts = {
        "/books": post_books, "/prices": post_prices, "/midpoints": midpoints,
        "/spreads": spreads, "/last-trades-prices": post_last_trades_prices,
        "/batch-prices-history": batch_prices_history,
    }  # fmt: skip
    routes = [web.get(prefix + path, handler) for path, handler in gets.items()]
    routes.append(web.get(prefix, get_ok))
    return routes + [web.post(prefix + path, handler) for path, handler in posts.items()]
