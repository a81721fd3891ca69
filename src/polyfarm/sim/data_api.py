"""Data API routes (under ``/data``): ``/trades`` (v1), ``/v2/trades``, ``/v2/prices-history``
(``data_history``) and the health root.

v1: bare array newest first; ``limit`` clamped to 0-10,000; ``offset`` > 10,000 → 400;
``takerOnly`` (default true) false adds maker rows; ``market`` XOR ``eventId``; ``start``/``end``
epoch seconds; ``filterType``/``filterAmount`` paired. v2: ``{"data","pagination"}`` envelope
with an opaque ``cursor`` (``limit``/``offset`` describe the page); ``offset`` as a parameter →
400; snake_case rows; ``start``/``end`` honoured only with ``user``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import orjson
from aiohttp import web

from polyfarm.sim.activity import USERS
from polyfarm.sim.data_history import prices_history_v2
from polyfarm.sim.httputil import ApiError, json_response, query_bool, query_float, query_int
from polyfarm.sim.model import MarketState, Trade
from polyfarm.sim.names import profile
from polyfarm.sim.render_clob import trade_row_v1, trade_row_v2
from polyfarm.sim.state import STATE, SimState

V1_MAX_LIMIT = V1_MAX_OFFSET = 10_000
V2_MAX_LIMIT = 1_000
V2_MAX_IDS = 20
Row = tuple[Trade, bool]  # (trade, maker row?)


@dataclass(frozen=True, slots=True)
class TradeQuery:
    markets: list[MarketState] | None
    taker_only: bool
    side: str | None
    user: int | None
    window_ms: tuple[int, int] | None
    min_cash: float
    min_tokens: float

    def rows(self, state: SimState) -> Iterator[Row]:
        for fill in state.world.trades.newest_first(self.markets, self.window_ms):
            if fill.size / 100 < self.min_tokens or fill.notional < self.min_cash:
                continue
            for maker in (False,) if self.taker_only else (False, True):
                if self._wanted(fill, maker):
                    yield fill, maker

    def _wanted(self, fill: Trade, maker: bool) -> bool:
        buy = fill.buy != maker
        if self.side is not None and self.side != ("BUY" if buy else "SELL"):
            return False
        return self.user is None or self.user == (fill.maker if maker else fill.taker)


def _ids(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def _markets(
    state: SimState, conditions: list[str], event_ids: list[str]
) -> list[MarketState] | None:
    if conditions and event_ids:
        raise ApiError(400, "market and eventId are mutually exclusive")
    if conditions:
        return [m for c in conditions if (m := state.world.by_condition.get(c)) is not None]
    if event_ids:
        try:
            events = [state.world.events_by_id.get(int(e)) for e in event_ids]
        except ValueError:
            raise ApiError(400, "eventId must be a comma-separated list of integers") from None
        return [m for e in events if e is not None for m in e.markets]
    return None


def _user(state: SimState, wallet: str | None) -> int | None:
    if not wallet:
        return None
    if not state.wallets:
        state.wallets.update({profile(state.world.seed, u)["wallet"]: u for u in range(USERS)})
    return state.wallets.get(wallet.lower(), -1)


def _amount_filter(kind: str | None, amount: float | None) -> tuple[float, float]:
    if (kind is None) != (amount is None):
        raise ApiError(400, "filterType and filterAmount must be provided together")
    if kind is None or amount is None:
        return 0.0, 0.0
    if kind.upper() not in ("CASH", "TOKENS"):
        raise ApiError(400, "filterType must be CASH or TOKENS")
    return (amount, 0.0) if kind.upper() == "CASH" else (0.0, amount)


def _side(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw.upper() not in ("BUY", "SELL"):
        raise ApiError(400, "side must be BUY or SELL")
    return raw.upper()


def _window(query: Mapping[str, str], enabled: bool = True) -> tuple[int, int] | None:
    start, end = query_float(query, "start"), query_float(query, "end")
    if not enabled or (start is None and end is None):
        return None
    return int((start or 0) * 1000), int((end if end is not None else 2**40) * 1000) + 999


async def trades_v1(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.sync()
    query = request.query
    offset = query_int(query, "offset", 0, status=400)
    if offset > V1_MAX_OFFSET or offset < 0:
        raise ApiError(400, f"max historical trades offset of {V1_MAX_OFFSET} exceeded")
    limit = min(max(query_int(query, "limit", 100, status=400), 0), V1_MAX_LIMIT)
    min_cash, min_tokens = _amount_filter(
        query.get("filterType"), query_float(query, "filterAmount")
    )
    spec = TradeQuery(
        markets=_markets(state, _ids(query.get("market")), _ids(query.get("eventId"))),
        taker_only=query_bool(query, "takerOnly", True, status=400),
        side=_side(query.get("side")), user=_user(state, query.get("user")),
        window_ms=_window(query), min_cash=min_cash, min_tokens=min_tokens,
    )  # fmt: skip
    rows = itertools.islice(spec.rows(state), offset, offset + limit)
    return json_response([trade_row_v1(fill, state.world.seed, maker) for fill, maker in rows])


@dataclass(frozen=True, slots=True)
class TradesCursor:
    """Where the next ``/v2/trades`` page starts: after this row, this many rows in."""

    last_id: int
    last_maker: bool
    limit: int
    offset: int

    def encode(self) -> str:
        payload = {"id": self.last_id, "m": self.last_maker, "l": self.limit, "o": self.offset}
        return base64.urlsafe_b64encode(orjson.dumps(payload)).decode()

    @classmethod
    def decode(cls, raw: str) -> TradesCursor:
        try:
            data = orjson.loads(base64.urlsafe_b64decode(raw))
            return cls(int(data["id"]), bool(data["m"]), int(data["l"]), int(data.get("o", 0)))
        except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ApiError(400, "invalid cursor") from None


def _v2_query(state: SimState, query: Mapping[str, str]) -> TradeQuery:
    conditions = _ids(
        query.get("condition") or query.get("condition_id") or query.get("conditionId")
    )
    event_ids = _ids(query.get("event_id"))
    if len(conditions) > V2_MAX_IDS or len(event_ids) > V2_MAX_IDS:
        raise ApiError(400, f"at most {V2_MAX_IDS} condition or event ids")
    filter_kind = query.get("filter_type", "TOKENS")
    filter_amount = query_float(query, "filter_amount")
    min_cash, min_tokens = _amount_filter(
        filter_kind, 0.01 if filter_amount is None else filter_amount
    )
    user = _user(state, query.get("user"))
    return TradeQuery(
        markets=_markets(state, conditions, event_ids),
        taker_only=query_bool(query, "taker_only", True, status=400),
        side=_side(query.get("side")), user=user, window_ms=_window(query, user is not None),
        min_cash=min_cash, min_tokens=min_tokens,
    )  # fmt: skip


def _after(rows: Iterator[Row], position: tuple[int, bool]) -> Iterator[Row]:
    """Rows strictly after ``position`` in newest-first order (taker row before maker row)."""
    last_id, last_maker = position
    return itertools.dropwhile(
        lambda r: r[0].id > last_id or (r[0].id == last_id and (not r[1] or last_maker)), rows
    )


async def trades_v2(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.sync()
    query = request.query
    if "offset" in query:
        raise ApiError(400, "offset is not supported, use cursor")
    rows = _v2_query(state, query).rows(state)
    limit = min(max(query_int(query, "limit", 100, status=400), 0), V2_MAX_LIMIT)
    offset = 0
    if query.get("cursor"):
        at = TradesCursor.decode(query["cursor"])
        limit, offset = at.limit, at.offset
        rows = _after(rows, (at.last_id, at.last_maker))
    page = list(itertools.islice(rows, limit + 1))
    more = len(page) > limit
    page = page[:limit]
    cursor = (
        TradesCursor(page[-1][0].id, page[-1][1], limit, offset + len(page)).encode()
        if more and page
        else None
    )
    return json_response({
        "data": [trade_row_v2(fill, state.world.seed, maker) for fill, maker in page],
        "pagination": {"has_more": more, "next_cursor": cursor, "limit": limit, "offset": offset},
    })  # fmt: skip


async def data_root(request: web.Request) -> web.Response:
    return json_response({"data": "OK"})


def data_routes(prefix: str = "/data") -> list[web.RouteDef]:
    return [
        web.get(f"{prefix}/trades", trades_v1),
        web.get(f"{prefix}/v2/trades", trades_v2),
        web.get(f"{prefix}/v2/prices-history", prices_history_v2),
        web.get(f"{prefix}/", data_root),
        web.get(prefix, data_root),
    ]
