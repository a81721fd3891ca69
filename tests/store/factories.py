"""Small builders of valid rows; tests change one field at a time with ``_replace``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from polyfarm.store.clock_anchors import ANCHOR_COLUMNS, CLOCK_FEATURES
from polyfarm.store.compact import SidMap, exact_midpoint, exact_spread
from polyfarm.store.compact_snapshots import DEPTH_LEVELS
from polyfarm.store.dimensions import EventRecord, MarketRecord, TokenRecord
from polyfarm.store.rows import (
    BOOK_DELTAS,
    FEATURE_COLUMNS,
    MARKET_FEATURES,
    ORDERBOOK_SNAPSHOTS,
    PRICE_SNAPSHOTS,
    TRADES,
    BookDeltaRow,
    FeatureRow,
    OrderBookSnapshotRow,
    PriceSnapshotRow,
    TableSpec,
    TradeRow,
    trade_key,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def token(n: int) -> str:
    return str(10**76 + n)


def price_row(i: int = 0, tok: str = TOKEN, price: float = 0.5) -> PriceSnapshotRow:
    # Venue prices are decimals: the bid and ask as the doubles nearest to them (as parsed),
    # not as a double subtraction leaves them.
    return PriceSnapshotRow(
        T0 + timedelta(minutes=i),
        tok,
        "100",
        price,
        round(price - 0.01, 6),
        round(price + 0.01, 6),
        0.02,
        price,
        1234.5,
        9876.0,
    )


def book_row(i: int = 0, tok: str = TOKEN) -> OrderBookSnapshotRow:
    bids = json.dumps([[0.49, 100.0], [0.48, 250.0]])
    asks = json.dumps([[0.51, 80.0], [0.52, 300.0]])
    depth = (100.0, 350.0, 350.0, 350.0, 80.0, 380.0, 380.0, 380.0)
    return OrderBookSnapshotRow(
        T0 + timedelta(minutes=i),
        tok,
        "100",
        "rest",
        bids,
        asks,
        0.49,
        0.51,
        0.02,
        0.5,
        169.0,
        197.8,
        2,
        2,
        *depth,
        -0.04,
        0.48,
        250.0,
        0.52,
        300.0,
        "ab" * 20,
        T0 + timedelta(minutes=i, seconds=-3),
    )


def trade_row(i: int = 0, tok: str = TOKEN, side: str = "BUY") -> TradeRow:
    ts = T0 + timedelta(seconds=i)
    key = trade_key(tok, int(ts.timestamp()), "0.5", "10", side)
    return TradeRow(
        ts,
        tok,
        "100",
        key,
        0.5,
        10.0,
        side,
        0.0,
        "0x" + "ab" * 32,
        "ws",
        int(ts.timestamp() * 1000) + 123,
        ts + timedelta(milliseconds=40),
    )


def delta_row(i: int = 0, tok: str = TOKEN) -> BookDeltaRow:
    ts = T0 + timedelta(milliseconds=i)
    return BookDeltaRow(ts, tok, "100", i, "BUY", 0.49, 120.0, 0.49, 0.51, ts)


def feature_row(i: int = 0, tok: str = TOKEN) -> FeatureRow:
    values: list[float | int | bool | None] = []
    for n, name in enumerate(FEATURE_COLUMNS):
        if name == "neg_risk":
            values.append(False)
        elif name in {
            "bid_levels",
            "ask_levels",
            "trade_count_1h",
            "buy_count_1h",
            "sell_count_1h",
            "whale_count_1h",
            "day_of_week",
            "hour_of_day",
        }:
            values.append(n % 7)
        else:
            values.append(round(0.01 * (n % 90), 4))
    # What follows from the best bid and ask follows from them (polyfarm.store.derived).
    named = dict(zip(FEATURE_COLUMNS, values, strict=True))
    bid, ask = named["best_bid"], named["best_ask"]
    named["spread"] = exact_spread(bid, ask)  # type: ignore[arg-type]
    named["midpoint"] = named["price"] = exact_midpoint(bid, ask)  # type: ignore[arg-type]
    return FeatureRow(T0 + timedelta(minutes=i), tok, "100", 2, tuple(named.values()))


def event_record(event_id: str = "9") -> EventRecord:
    return EventRecord(
        event_id,
        "an-event",
        "An event",
        "",
        None,
        json.dumps([{"slug": "politics"}]),
        True,
        "0x" + "1" * 64,
        T0,
        T0 + timedelta(days=3),
        True,
        False,
        False,
        100.0,
        50.0,
        json.dumps({"id": event_id}),
        T0,
    )


def market_record(market_id: str = "100", event_id: str | None = "9") -> MarketRecord:
    return MarketRecord(
        market_id,
        event_id,
        "0x" + market_id.rjust(64, "0"),
        None,
        f"m-{market_id}",
        f"Question {market_id}?",
        "desc",
        None,
        None,
        json.dumps(["Yes", "No"]),
        False,
        None,
        None,
        None,
        0.01,
        5.0,
        True,
        False,
        False,
        True,
        True,
        T0,
        T0 + timedelta(days=2),
        None,
        1000.0,
        100.0,
        500.0,
        1,
        json.dumps({"id": market_id}),
        T0,
    )


def token_records(market_id: str = "100") -> list[TokenRecord]:
    condition = "0x" + market_id.rjust(64, "0")
    return [
        TokenRecord(token(int(market_id) * 2), market_id, condition, "Yes", 0),
        TokenRecord(token(int(market_id) * 2 + 1), market_id, condition, "No", 1),
    ]


def token_day_rows(day: datetime, tok: str = TOKEN) -> list[tuple[TableSpec, list[Any]]]:
    """A day of one token in every time series, from ``day`` on: a price snapshot a minute
    (the price moving on its tick), an order book and a feature row every ten minutes, a trade
    every seven minutes and a book delta every 30 seconds."""
    prices, books, features, trades, deltas = [], [], [], [], []
    for minute in range(1440):
        ts = day + timedelta(minutes=minute)
        price = round(0.3 + 0.01 * ((minute * 7 // 60 + int(tok[-1]) % 3) % 20), 2)
        prices.append(price_row(tok=tok, price=price)._replace(ts=ts))
        if minute % 10 == 0:
            book = book_row(tok=tok)
            books.append(book._replace(ts=ts, book_ts=ts - timedelta(seconds=3)))
            features.append(feature_row(tok=tok)._replace(ts=ts))
        if minute % 7 == 0:
            key = trade_key(tok, int(ts.timestamp()), "0.5", "10", "BUY")
            trade = trade_row(tok=tok)
            trades.append(trade._replace(ts=ts, trade_key=key, received_at=ts))
        for half in (0, 1):
            at = ts + timedelta(seconds=30 * half, milliseconds=minute % 1000)
            deltas.append(delta_row(tok=tok)._replace(ts=at, seq=2 * minute + half, received_at=at))
    return [
        (PRICE_SNAPSHOTS, prices),
        (ORDERBOOK_SNAPSHOTS, books),
        (MARKET_FEATURES, features),
        (TRADES, trades),
        (BOOK_DELTAS, deltas),
    ]


def as_before_0020(spec: TableSpec) -> TableSpec:
    """``spec`` as a database before migrations 0020 to 0023 stores it (for tests that fill a
    database at an older migration): book changes without ``mirror_seq`` and never folded;
    imbalances, book depths and clock features stored as they are, not left to the view."""
    storage = spec.storage
    encode = storage.encode
    if storage.mirrored:
        assert encode is not None
        columns = tuple(name for name in storage.columns if name != "mirror_seq")

        def encode_unfolded(
            records: Sequence[Sequence[Any]], sids: SidMap
        ) -> list[tuple[Any, ...]]:
            return [record[: len(columns)] for record in encode(records, sids)]

        storage = replace(storage, columns=columns, encode=encode_unfolded, mirrored=False)
    elif spec in (ORDERBOOK_SNAPSHOTS, MARKET_FEATURES):
        assert encode is not None
        names = _BOOKS_AS_GIVEN if spec is ORDERBOOK_SNAPSHOTS else _FEATURES_AS_GIVEN
        columns = tuple(name for name in storage.columns if name not in ANCHOR_COLUMNS)
        stored_at = [(columns.index(name), _given_at(spec, name)) for name in names]

        def encode_as_given(
            records: Sequence[Sequence[Any]], sids: SidMap
        ) -> list[tuple[Any, ...]]:
            encoded = []
            for row, record in zip(encode(records, sids), records, strict=True):
                old = list(row[: len(columns)])
                for at, given in stored_at:
                    old[at] = record[given]
                encoded.append(tuple(old))
            return encoded

        storage = replace(storage, columns=columns, encode=encode_as_given)
    return replace(spec, storage=storage)


_BOOKS_AS_GIVEN = ("imbalance", *(f"{s}_depth_{n}" for s in ("bid", "ask") for n in DEPTH_LEVELS))
_FEATURES_AS_GIVEN = ("book_imbalance", *(clock.feature for clock in CLOCK_FEATURES))


def _given_at(spec: TableSpec, name: str) -> int:
    if spec is ORDERBOOK_SNAPSHOTS:
        return spec.columns.index(name)
    return 4 + FEATURE_COLUMNS.index(name)  # ts, token, market, tier first
