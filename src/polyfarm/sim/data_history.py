"""Data API ``/v2/prices-history`` (docs/polymarket-wire.md §11).

* ``token_id`` and exactly one window form: ``start`` (inclusive; optional exclusive ``end``;
  at most 15 days, and alone at most 15 days back), ``interval`` or ``as_of`` (the latest
  observation at or before it).
* ``bucket_seconds`` (whole minutes) sets the bucket; each interval has its own default (12 h
  for ``max``/``all``). Grains are kept for a while only: 1-minute 7 days, 5-minute 60,
  30-minute 90; 3 h and coarser forever. ``max``/``all`` cover the market's whole life at 3 h or
  12 h buckets, 30 days at finer ones.
* Points are oldest first, the midpoint carried forward into each bucket, with
  ``resolution_seconds``; the series ends with a terminal point, the last real tick inside the
  window (``resolution_seconds`` 0). An unknown token is an empty ``data``, not an error.
* Cursor paging: ``limit`` (first page; at most and by default 10,000) and ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from polyfarm.sim.history import bucket_mids, mid_at, price_of
from polyfarm.sim.httputil import ApiError, json_response, query_float, query_int
from polyfarm.sim.model import MarketState
from polyfarm.sim.state import STATE, SimState

DAY = 86_400
MAX_WINDOW_S = 15 * DAY
LIMIT_MAX = 10_000
INTERVALS: dict[str, int | None] = {  # None: the market's whole life
    "max": None, "all": None, "1m": 30 * DAY, "1w": 7 * DAY, "1d": DAY, "6h": 6 * 3600, "1h": 3600,
}  # fmt: skip
DEFAULT_BUCKET = {"max": 43_200, "all": 43_200, "1m": 10_800, "1w": 1_800, "1d": 300,
                  "6h": 60, "1h": 60}  # fmt: skip
PERMANENT_BUCKET = 10_800
FINE_LIFE_WINDOW_S = 30 * DAY  # max/all at buckets finer than 3 h
RETENTION = ((300, 7 * DAY), (1_800, 60 * DAY), (PERMANENT_BUCKET, 90 * DAY))


def retention_s(bucket: int) -> int | None:
    """How far back a grain reaches; None for the permanent 3 h and 12 h series."""
    for finer_than, keep in RETENTION:
        if bucket < finer_than:
            return keep
    return None


@dataclass(frozen=True, slots=True)
class Ask:
    """One request, validated: the window (epoch seconds) and the bucket width."""

    start: float
    end: float
    bucket: int
    as_of: float | None = None


def _bucket(query: Mapping[str, str], default: int) -> int:
    bucket = query_int(query, "bucket_seconds", default, status=400)
    if bucket < 60 or bucket % 60:
        raise ApiError(400, "bucket_seconds must be a positive whole number of minutes")
    return bucket


def parse_ask(query: Mapping[str, str], now: float, born: float) -> Ask:
    start, end = query_float(query, "start"), query_float(query, "end")
    interval = query.get("interval")
    as_of = query_float(query, "as_of")
    if as_of is None:
        as_of = query_float(query, "asOf")
    if sum(v is not None for v in (start, interval, as_of)) != 1 or (
        end is not None and start is None
    ):
        raise ApiError(400, "give exactly one of start (with an optional end), interval or as_of")
    if as_of is not None:
        return Ask(as_of, as_of, 60, as_of=as_of)
    if interval is not None:
        return _interval_ask(query, interval, now, born)
    assert start is not None
    if end is None and start < now - MAX_WINDOW_S:
        raise ApiError(400, "start alone reaches at most 15 days back")
    end = now if end is None else end
    if end - start > MAX_WINDOW_S:
        raise ApiError(400, "start and end are more than 15 days apart")
    if end < start:
        raise ApiError(400, "end is before start")
    return Ask(start, end, _bucket(query, 60))


def _interval_ask(query: Mapping[str, str], interval: str, now: float, born: float) -> Ask:
    if interval not in INTERVALS:
        raise ApiError(400, f"unknown interval {interval!r}")
    bucket = _bucket(query, DEFAULT_BUCKET[interval])
    span = INTERVALS[interval]
    if span is not None:
        return Ask(now - span, now, bucket)
    # The market's whole life, unless the grain is fine.
    return Ask(born if bucket >= PERMANENT_BUCKET else now - FINE_LIFE_WINDOW_S, now, bucket)


def series(market: MarketState, is_yes: bool, ask: Ask, state: SimState) -> list[dict[str, Any]]:
    """Every point the request asks for, oldest first, terminal tick last."""
    synthetic = state.world.synthetic(market)
    stop = min(ask.end, state.world.now_s, market.closed_s or ask.end)
    if ask.as_of is not None:
        ts = int(min(ask.as_of, stop))
        return [_point(ts, mid_at(market, is_yes, ts, synthetic), 60)]
    keep = retention_s(ask.bucket)
    start = ask.start if keep is None else max(ask.start, state.world.now_s - keep)
    if stop <= start:
        return []
    buckets = bucket_mids(market, is_yes, (start, stop - 1e-6), ask.bucket, synthetic)
    points = [_point(ts, half, ask.bucket) for ts, half in buckets]
    last_tick = _last_tick(market, stop)
    if last_tick is not None and (not buckets or last_tick > buckets[-1][0]):
        points.append(_point(last_tick, mid_at(market, is_yes, last_tick, synthetic), 0))
    return points


def _last_tick(market: MarketState, stop: float) -> int | None:
    """When the book last changed before ``stop`` (the close, once closed)."""
    if market.closed_s is not None and market.closed_s <= stop:
        return int(market.closed_s)
    if market.book is not None and market.book.ts_ms / 1000 < stop:
        return market.book.ts_ms // 1000
    return None


def _point(ts: int, half: int, resolution: int) -> dict[str, Any]:
    return {"timestamp": ts, "price": price_of(half), "resolution_seconds": resolution}


def _page_bounds(query: Mapping[str, str]) -> tuple[int, int]:
    raw = query.get("cursor")
    if raw:
        try:
            data = orjson.loads(base64.urlsafe_b64decode(raw))
            return int(data["i"]), int(data["l"])
        except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ApiError(400, "invalid cursor") from None
    limit = query_int(query, "limit", LIMIT_MAX, status=400)
    if not 1 <= limit <= LIMIT_MAX:
        raise ApiError(400, f"limit must be within 1..{LIMIT_MAX}")
    return 0, limit


async def prices_history_v2(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.sync()
    query = request.query
    token_id = query.get("token_id")
    if not token_id:
        raise ApiError(400, "token_id is required")
    index, limit = _page_bounds(query)
    found = state.world.token(token_id)
    now = state.world.now_s
    ask = parse_ask(query, now, now if found is None else found[0].created_s)
    if found is None:  # a miss is an empty answer, not an error
        return _page([], False, None)
    points = series(*found, ask, state)
    page = points[index : index + limit]
    more = index + limit < len(points)
    cursor = orjson.dumps({"i": index + limit, "l": limit}) if more else None
    return _page(page, more, base64.urlsafe_b64encode(cursor).decode() if cursor else None)


def _page(data: list[dict[str, Any]], more: bool, cursor: str | None) -> web.Response:
    return json_response({"data": data, "pagination": {"has_more": more, "next_cursor": cursor}})
