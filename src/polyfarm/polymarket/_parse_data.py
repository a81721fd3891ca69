"""Pure parsers for the Data API: trade rows, v1 (camelCase) and v2 (snake_case) → one
``DataTrade``; ``/v2/prices-history`` pages → ``PricePoint``s.

Re-exported by ``parse``; see its docstring for the contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

import msgspec
import numpy as np

import polyfarm.polymarket._convert as cv
import polyfarm.polymarket.schemas as s
from polyfarm.errors import PayloadError
from polyfarm.polymarket.domain import DataTrade, Page, PricePoint, Reject
from polyfarm.polymarket.price_series import NO_RESOLUTION, FastPage, PriceSeries, fast_series

_TRADE_V1 = msgspec.json.Decoder(s.DataTradeV1Wire)
_TRADE_V2 = msgspec.json.Decoder(s.DataTradeV2Wire)
_PRICE_POINT = msgspec.json.Decoder(s.DataPricePointWire)
_PRICE_POINTS = msgspec.json.Decoder(list[s.DataPricePointWire])
UNKNOWN_OUTCOME_INDEX = 999  # the v2 feed's "unknown" (py-sdk maps it to null)


def _data_trade(w: s.DataTradeV1Wire | s.DataTradeV2Wire, token: str) -> DataTrade:
    return DataTrade(
        condition_id=cv.condition_id(w.condition_id, "condition id"),
        token_id=cv.token_id(token, "token id"),
        side=cv.side(w.side),
        price=cv.price(w.price),
        size=cv.size(w.size),
        timestamp=cv.epoch(w.timestamp),
        proxy_wallet=cv.optional_text(w.proxy_wallet),
        transaction_hash=cv.optional_text(w.transaction_hash),
        outcome=cv.optional_text(w.outcome),
        outcome_index=None if w.outcome_index in (None, UNKNOWN_OUTCOME_INDEX) else w.outcome_index,
        title=w.title,
        slug=cv.optional_text(w.slug),
        event_slug=cv.optional_text(w.event_slug),
        name=cv.optional_text(w.name),
        pseudonym=cv.optional_text(w.pseudonym),
    )


@cv.payload_errors
def parse_data_trade_v1(obj: object) -> DataTrade:
    w = cv.to_wire(obj, _TRADE_V1, s.DataTradeV1Wire)
    return _data_trade(w, w.asset)


@cv.payload_errors
def parse_data_trade_v2(obj: object) -> DataTrade:
    w = cv.to_wire(obj, _TRADE_V2, s.DataTradeV2Wire)
    return _data_trade(w, w.token_id)


def parse_data_trades_v1(records: Iterable[object]) -> tuple[list[DataTrade], list[Reject]]:
    return cv.parse_records(records, parse_data_trade_v1)


def _v2_cursor(pagination: s.DataPaginationWire | None) -> str | None:
    """The next page's cursor; ``has_more`` false or no cursor ends the walk (``limit`` and
    ``offset`` describe the page and do not steer it)."""
    pagination = pagination or s.DataPaginationWire()
    return cv.next_cursor(pagination.next_cursor) if pagination.has_more is not False else None


def parse_data_trades_v2_page(envelope: s.DataTradesV2Envelope) -> Page[DataTrade]:
    good, rejects = cv.parse_records(envelope.data or (), parse_data_trade_v2)
    return Page(
        items=tuple(good), rejects=tuple(rejects), next_cursor=_v2_cursor(envelope.pagination)
    )


@cv.payload_errors
def parse_data_price_point(obj: object) -> PricePoint:
    w = cv.to_wire(obj, _PRICE_POINT, s.DataPricePointWire)
    if w.resolution_seconds is not None and w.resolution_seconds < 0:
        raise PayloadError(f"resolution_seconds is negative: {w.resolution_seconds}")
    return PricePoint(
        t=cv.epoch(w.timestamp, "timestamp"),
        p=cv.price(w.price, "price"),
        resolution_s=w.resolution_seconds,
    )


def parse_data_prices_history_page(envelope: s.DataPricesHistoryEnvelope) -> Page[PricePoint]:
    """One ``/v2/prices-history`` page, oldest first; ``data: null`` is an empty answer."""
    good, rejects = cv.parse_records_batch(
        envelope.data or (), _PRICE_POINTS, parse_data_price_point
    )
    good.sort(key=lambda point: point.t)
    return Page(
        items=tuple(good), rejects=tuple(rejects), next_cursor=_v2_cursor(envelope.pagination)
    )


@dataclass(frozen=True)
class SeriesPage:
    """One ``/v2/prices-history`` page as columns (``parse_data_prices_history_series``)."""

    series: PriceSeries
    rejects: tuple[Reject, ...] = ()
    next_cursor: str | None = None


class _FastPricePoint(msgspec.Struct, gc=False):
    """``DataPricePointWire`` with the price as a double (a JSON number only)."""

    timestamp: int
    price: float
    resolution_seconds: int | None = None


_RESOLUTION = attrgetter("resolution_seconds")


def _price_point_columns(points: list[_FastPricePoint]) -> PriceSeries:
    count = len(points)
    given = list(map(_RESOLUTION, points))
    absent = [r is None for r in given] if None in given else None
    resolution = np.array(
        given if absent is None else [0 if r is None else r for r in given], np.int64
    )
    if bool((resolution < 0).any()):
        raise ValueError("a negative resolution_seconds: the per-record parser rejects it")
    if absent is not None:
        resolution[np.array(absent)] = NO_RESOLUTION
    return PriceSeries(
        np.fromiter(map(attrgetter("timestamp"), points), np.int64, count),
        np.fromiter(map(attrgetter("price"), points), np.float64, count),
        resolution,
    )


_FAST_PRICE_POINTS = FastPage(
    msgspec.json.Decoder(list[_FastPricePoint]), _price_point_columns, parse_data_price_point
)


def parse_data_prices_history_series(envelope: s.DataPricesHistoryEnvelope) -> SeriesPage:
    """``parse_data_prices_history_page`` as columns: the same points in the same order, the
    same rejects and cursor. A page every record of which is well formed is decoded in one
    typed pass; any other goes through ``parse_data_prices_history_page``."""
    series = fast_series(envelope.data or (), _FAST_PRICE_POINTS)
    if series is not None:
        return SeriesPage(series, next_cursor=_v2_cursor(envelope.pagination))
    page = parse_data_prices_history_page(envelope)
    return SeriesPage(PriceSeries.from_points(page.items), page.rejects, page.next_cursor)
