"""Gamma routes (under ``/gamma``): keyset lists, deprecated offset lists, single lookups."""

from __future__ import annotations

from aiohttp import web

from polyfarm.sim.gamma_query import (
    EVENT_ORDER,
    MARKET_ORDER,
    EventFilter,
    MarketFilter,
    Ordering,
    keyset_page,
)
from polyfarm.sim.httputil import ApiError, json_response, query_int
from polyfarm.sim.model import EventState, MarketState
from polyfarm.sim.render_gamma import gamma_event, gamma_market
from polyfarm.sim.state import STATE, SimState

MARKETS_KEYSET_MAX = 100
EVENTS_KEYSET_MAX = 500
LEGACY_MAX = 100
DEFAULT_LIMIT = 20
SCHEMA = "https://gamma-api.polymarket.com/schemas/{}KeysetResponse.json"
SUNSET = "Fri, 01 May 2026 00:00:00 GMT"


def _state(request: web.Request) -> SimState:
    state = request.app[STATE]
    state.sync()
    return state


def _limit(request: web.Request, cap: int) -> int:
    return min(max(query_int(request.query, "limit", DEFAULT_LIMIT), 1), cap)


def _materialise(state: SimState, markets: list[MarketState]) -> None:
    """Build the books of these markets and their siblings (event totals sum them)."""
    for market in markets:
        for sibling in market.event.markets:
            state.world.open_book(sibling)


async def markets_keyset(request: web.Request) -> web.Response:
    state = _state(request)
    if "offset" in request.query:
        raise ApiError(422, "offset is not supported on keyset endpoints, use after_cursor")
    flt = MarketFilter.from_query(request.query)
    ordering: Ordering[MarketState] = Ordering.from_query(request.query, MARKET_ORDER)
    page, cursor = keyset_page(
        state.world.markets, flt.matches, ordering,
        request.query.get("after_cursor"), _limit(request, MARKETS_KEYSET_MAX),
    )  # fmt: skip
    _materialise(state, page)
    body: dict[str, object] = {
        "$schema": SCHEMA.format("Markets"),
        "markets": [gamma_market(m) for m in page],
    }
    if cursor is not None:
        body["next_cursor"] = cursor
    return json_response(body)


async def events_keyset(request: web.Request) -> web.Response:
    state = _state(request)
    if "offset" in request.query:
        raise ApiError(422, "offset is not supported on keyset endpoints, use after_cursor")
    flt = EventFilter.from_query(request.query)
    ordering: Ordering[EventState] = Ordering.from_query(request.query, EVENT_ORDER)
    page, cursor = keyset_page(
        state.world.events, flt.matches, ordering,
        request.query.get("after_cursor"), _limit(request, EVENTS_KEYSET_MAX),
    )  # fmt: skip
    for event in page:
        _materialise(state, event.markets)
    body: dict[str, object] = {
        "$schema": SCHEMA.format("Events"),
        "events": [gamma_event(e) for e in page],
    }
    if cursor is not None:
        body["next_cursor"] = cursor
    return json_response(body)


def _legacy_window(request: web.Request, state: SimState, noun: str) -> tuple[int, int]:
    offset = max(query_int(request.query, "offset", 0), 0)
    if offset > state.config.legacy_offset_max:
        raise ApiError(422, f"offset too large, use /{noun}/keyset for deeper pagination")
    return offset, _limit(request, LEGACY_MAX)


def _deprecation(noun: str) -> dict[str, str]:
    return {"deprecation": "true", "sunset": SUNSET, "warning": f'299 - "use /{noun}/keyset"'}


async def markets_legacy(request: web.Request) -> web.Response:
    state = _state(request)
    offset, limit = _legacy_window(request, state, "markets")
    flt = MarketFilter.from_query(request.query)
    ordering: Ordering[MarketState] = Ordering.from_query(request.query, MARKET_ORDER)
    matched = ordering.sort([m for m in state.world.markets if flt.matches(m)])
    page = matched[offset : offset + limit]
    _materialise(state, page)
    return json_response([gamma_market(m) for m in page], headers=_deprecation("markets"))


async def events_legacy(request: web.Request) -> web.Response:
    state = _state(request)
    offset, limit = _legacy_window(request, state, "events")
    flt = EventFilter.from_query(request.query)
    ordering: Ordering[EventState] = Ordering.from_query(request.query, EVENT_ORDER)
    page = ordering.sort([e for e in state.world.events if flt.matches(e)])[offset : offset + limit]
    for event in page:
        _materialise(state, event.markets)
    return json_response([gamma_event(e) for e in page], headers=_deprecation("events"))


def _path_int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise ApiError(422, f"invalid {name}: {raw!r}")
    return int(raw)


def _market_response(state: SimState, market: MarketState | None) -> web.Response:
    if market is None:
        raise ApiError(404, "market not found", kind="not found")
    state.world.open_book(market)
    return json_response(gamma_market(market))


def _event_response(state: SimState, event: EventState | None) -> web.Response:
    if event is None:
        raise ApiError(404, "event not found", kind="not found")
    _materialise(state, event.markets)
    return json_response(gamma_event(event))


async def market_by_id(request: web.Request) -> web.Response:
    state = _state(request)
    return _market_response(state, state.world.by_gamma_id.get(_path_int(request, "id")))


async def market_by_slug(request: web.Request) -> web.Response:
    state = _state(request)
    return _market_response(state, state.world.by_slug.get(request.match_info["slug"]))


async def event_by_id(request: web.Request) -> web.Response:
    state = _state(request)
    return _event_response(state, state.world.events_by_id.get(_path_int(request, "id")))


async def event_by_slug(request: web.Request) -> web.Response:
    state = _state(request)
    return _event_response(state, state.world.events_by_slug.get(request.match_info["slug"]))


def gamma_routes(prefix: str = "/gamma") -> list[web.RouteDef]:
    return [
        web.get(f"{prefix}/markets/keyset", markets_keyset),
        web.get(f"{prefix}/markets/slug/{{slug}}", market_by_slug),
        web.get(f"{prefix}/markets/{{id}}", market_by_id),
        web.get(f"{prefix}/markets", markets_legacy),
        web.get(f"{prefix}/events/keyset", events_keyset),
        web.get(f"{prefix}/events/slug/{{slug}}", event_by_slug),
        web.get(f"{prefix}/events/{{id}}", event_by_id),
        web.get(f"{prefix}/events", events_legacy),
    ]
