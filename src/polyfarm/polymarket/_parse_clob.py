"""Pure parsers for CLOB REST payloads: books, prices, price history, market catalogue.

Re-exported by ``parse``; see its docstring for the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from operator import attrgetter
from typing import TypeVar

import msgspec
import numpy as np

import polyfarm.polymarket._convert as cv
import polyfarm.polymarket.schemas as s
from polyfarm.errors import PayloadError
from polyfarm.polymarket.domain import (
    Batch,
    BookLevel,
    ClobMarket,
    ClobMarketInfo,
    ClobToken,
    LastTrade,
    MarketByToken,
    OrderBook,
    Page,
    PricePoint,
    Quote,
    Reject,
)
from polyfarm.polymarket.price_series import NO_RESOLUTION, FastPage, PriceSeries, fast_series

T = TypeVar("T")

_BOOK = msgspec.json.Decoder(s.BookWire)
_CLOB_MARKET = msgspec.json.Decoder(s.ClobMarketWire)
_CLOB_MARKET_INFO = msgspec.json.Decoder(s.ClobMarketInfoWire)
_MARKET_BY_TOKEN = msgspec.json.Decoder(s.MarketByTokenWire)
_HISTORY_POINT = msgspec.json.Decoder(s.HistoryPointWire)
_HISTORY_POINTS = msgspec.json.Decoder(list[s.HistoryPointWire])
_LAST_TRADE = msgspec.json.Decoder(s.LastTradePriceWire)
_DECIMAL = msgspec.json.Decoder(Decimal)


class _QuoteWire(msgspec.Struct):
    buy: Decimal | None = msgspec.field(default=None, name="BUY")
    sell: Decimal | None = msgspec.field(default=None, name="SELL")


_QUOTE = msgspec.json.Decoder(_QuoteWire)


# --- CLOB books ----------------------------------------------------------------------------


@cv.payload_errors
def parse_book(obj: object) -> OrderBook:
    """REST ``/book`` item or WS ``book`` message; levels are re-sorted so the best is last."""
    w = cv.to_wire(obj, _BOOK, s.BookWire)
    bids = w.bids if w.bids is not None else w.buys
    asks = w.asks if w.asks is not None else w.sells
    # Every recorded book carries both arrays (possibly empty); a missing one is damage, not
    # an empty side, and must not be stored as a one-sided book.
    if bids is None or asks is None:
        raise PayloadError("book lacks its bids/buys or asks/sells array")
    return OrderBook(
        market=cv.condition_id(w.market, "market"),
        asset_id=cv.token_id(w.asset_id),
        timestamp=cv.epoch(w.timestamp),
        bids=_levels(bids, best_is_highest=True),
        asks=_levels(asks, best_is_highest=False),
        hash=cv.optional_text(w.hash),
        min_order_size=cv.optional_size(w.min_order_size, "min_order_size"),
        tick_size=cv.optional_price(w.tick_size, "tick_size"),
        neg_risk=w.neg_risk,
        last_trade_price=cv.optional_price_text(w.last_trade_price, "last_trade_price"),
    )


def _levels(levels: Iterable[s.LevelWire], *, best_is_highest: bool) -> tuple[BookLevel, ...]:
    parsed = [BookLevel(price=cv.price(level.price), size=cv.size(level.size)) for level in levels]
    # Recorded books are bids ascending / asks descending, but we do not rely on it.
    parsed.sort(key=lambda level: level.price, reverse=not best_is_highest)
    return tuple(parsed)


def parse_books(records: Iterable[object]) -> tuple[list[OrderBook], list[Reject]]:
    return cv.parse_records(records, parse_book)


# --- CLOB prices ---------------------------------------------------------------------------


def _keyed_batch(raw: dict[str, msgspec.Raw], parse_value: Callable[[msgspec.Raw], T]) -> Batch[T]:
    """One entry per token id; a bad entry becomes a reject, the rest survive."""
    items: dict[str, T] = {}
    rejects: list[Reject] = []
    for key, value in raw.items():
        try:
            items[cv.token_id(key, "token id key")] = parse_value(value)
        except (PayloadError, msgspec.DecodeError) as exc:
            rejects.append(Reject(reason=str(exc), raw=bytes(value), key=key))
    return Batch(items=items, rejects=tuple(rejects))


def _quote(raw: msgspec.Raw) -> Quote:
    w = _QUOTE.decode(raw)
    return Quote(buy=cv.optional_price(w.buy, "BUY"), sell=cv.optional_price(w.sell, "SELL"))


def _decimal_price(raw: msgspec.Raw) -> Decimal:
    return cv.price(_DECIMAL.decode(raw))


def parse_prices(raw: dict[str, msgspec.Raw]) -> Batch[Quote]:
    """``POST /prices``: ``{"<token>": {"BUY": "0.018", "SELL": "0.03"}}``."""
    return _keyed_batch(raw, _quote)


def parse_midpoints(raw: dict[str, msgspec.Raw]) -> Batch[Decimal]:
    return _keyed_batch(raw, _decimal_price)


def parse_spreads(raw: dict[str, msgspec.Raw]) -> Batch[Decimal]:
    return _keyed_batch(raw, _decimal_price)


@cv.payload_errors
def _last_trade_item(obj: object) -> tuple[str, LastTrade]:
    w = cv.to_wire(obj, _LAST_TRADE, s.LastTradePriceWire)
    return cv.token_id(w.token_id, "token_id"), parse_last_trade(w)


def parse_last_trade(w: s.LastTradePriceWire) -> LastTrade:
    return LastTrade(price=cv.price(w.price), side=cv.optional_side(w.side))


def parse_last_trade_prices(records: Iterable[object]) -> Batch[LastTrade]:
    pairs, rejects = cv.parse_records(records, _last_trade_item)
    return Batch(items=dict(pairs), rejects=tuple(rejects))


@cv.payload_errors
def _history_point(obj: object) -> PricePoint:
    w = cv.to_wire(obj, _HISTORY_POINT, s.HistoryPointWire)
    return PricePoint(t=cv.epoch(w.t, "t"), p=cv.price(w.p, "p"))


def parse_prices_history(wire: s.PricesHistoryWire) -> tuple[list[PricePoint], list[Reject]]:
    points, rejects = cv.parse_records_batch(wire.history or (), _HISTORY_POINTS, _history_point)
    points.sort(key=lambda point: point.t)
    return points, rejects


class _FastHistoryPoint(msgspec.Struct, gc=False):
    """``HistoryPointWire`` with the price as a double (a JSON number only)."""

    t: int
    p: float


def _history_columns(points: list[_FastHistoryPoint]) -> PriceSeries:
    count = len(points)
    return PriceSeries(
        np.fromiter(map(attrgetter("t"), points), np.int64, count),
        np.fromiter(map(attrgetter("p"), points), np.float64, count),
        np.full(count, NO_RESOLUTION, np.int64),
    )


_FAST_HISTORY = FastPage(
    msgspec.json.Decoder(list[_FastHistoryPoint]), _history_columns, _history_point
)


def parse_prices_history_series(wire: s.PricesHistoryWire) -> tuple[PriceSeries, list[Reject]]:
    """``parse_prices_history`` as columns: the same points in the same order, the same
    rejects. A page every record of which is well formed (nearly every page) is decoded in one
    typed pass; any other goes through ``parse_prices_history``."""
    records = wire.history or ()
    series = fast_series(records, _FAST_HISTORY)
    if series is not None:
        return series, []
    points, rejects = parse_prices_history(wire)
    return PriceSeries.from_points(points), rejects


# --- CLOB market catalogue -----------------------------------------------------------------


@cv.payload_errors
def parse_clob_market(obj: object) -> ClobMarket:
    w = cv.to_wire(obj, _CLOB_MARKET, s.ClobMarketWire)
    return ClobMarket(
        condition_id=cv.condition_id(w.condition_id, "condition_id"),
        question_id=cv.optional_text(w.question_id),
        question=w.question,
        market_slug=cv.optional_text(w.market_slug),
        active=w.active,
        closed=w.closed,
        archived=w.archived,
        accepting_orders=w.accepting_orders,
        enable_order_book=w.enable_order_book,
        minimum_tick_size=cv.optional_price(w.minimum_tick_size, "minimum_tick_size"),
        minimum_order_size=cv.optional_size(w.minimum_order_size, "minimum_order_size"),
        neg_risk=w.neg_risk,
        neg_risk_market_id=cv.optional_text(w.neg_risk_market_id),
        end_date=cv.gamma_time(w.end_date_iso, "end_date_iso"),
        is_50_50_outcome=w.is_50_50_outcome,
        tokens=tuple(
            ClobToken(
                token_id=cv.token_id(t.token_id, "tokens[].token_id"),
                outcome=t.outcome,
                price=cv.optional_price(t.price, "tokens[].price"),
                winner=t.winner,
            )
            # Pre-CLOB markets list placeholder tokens with an empty id.
            for t in w.tokens or ()
            if t.token_id != ""
        ),
        tags=tuple(w.tags or ()),
    )


def parse_clob_markets_page(envelope: s.ClobMarketsEnvelope) -> Page[ClobMarket]:
    good, rejects = cv.parse_records(envelope.data or (), parse_clob_market)
    return Page(
        items=tuple(good), rejects=tuple(rejects), next_cursor=cv.next_cursor(envelope.next_cursor)
    )


@cv.payload_errors
def parse_clob_market_info(obj: object) -> ClobMarketInfo:
    """``/clob-markets/{condition_id}`` (short keys: ``c``, ``t``, ``mts``, ``mos``, ``nr``…)."""
    w = cv.to_wire(obj, _CLOB_MARKET_INFO, s.ClobMarketInfoWire)
    fees = w.fd
    return ClobMarketInfo(
        condition_id=cv.condition_id(w.c, "c"),
        tokens=tuple(
            ClobToken(token_id=cv.token_id(t.t, "t[].t"), outcome=t.o, price=None, winner=None)
            for t in w.t or ()
            if t is not None
        ),
        min_tick_size=cv.optional_price(w.mts, "mts"),
        min_order_size=cv.optional_size(w.mos, "mos"),
        neg_risk=bool(w.nr),  # the server leaves ``nr`` out when it is false
        fee_rate=None if fees is None else fees.r,
        fee_exponent=None if fees is None else fees.e,
        fee_taker_only=None if fees is None else fees.to,
    )


@cv.payload_errors
def parse_market_by_token(obj: object) -> MarketByToken:
    w = cv.to_wire(obj, _MARKET_BY_TOKEN, s.MarketByTokenWire)
    return MarketByToken(
        condition_id=cv.condition_id(w.condition_id, "condition_id"),
        primary_token_id=cv.token_id(w.primary_token_id, "primary_token_id"),
        secondary_token_id=cv.token_id(w.secondary_token_id, "secondary_token_id"),
    )
