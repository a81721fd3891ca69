"""Row types of the time-series tables and their validation (pure: no I/O, no clock).

Rows are NamedTuples in table column order, so a batch goes to ``COPY`` as it is. Each table
has a validator returning the ``Problem`` for which a row must be refused, or None. A refused
row is counted by the problem's kind and reported with its message; it never sinks the valid
rows of its batch.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from polyfarm.store.compact import (
    BOOK_CHANGES,
    PRICE_POINTS,
    SOURCE_CODES,
    TRADE_FILLS,
    Storage,
)
from polyfarm.store.compact_snapshots import BOOK_SAMPLES, feature_storage
from polyfarm.store.derived import (
    HALF_MICRO,
    book_shape_problem,
    feature_shape_problem,
    spread_problem,
)
from polyfarm.store.rejection import Problem, RejectionKind, bad_value


class PriceSnapshotRow(NamedTuple):
    ts: datetime
    token_id: str
    market_id: str
    price: float | None
    best_bid: float | None
    best_ask: float | None
    spread: float | None
    last_trade_price: float | None
    volume_24h: float | None
    liquidity: float | None


class OrderBookSnapshotRow(NamedTuple):
    ts: datetime
    token_id: str
    market_id: str
    source: str
    bids: str  # JSON text [[price, size], ...], best first
    asks: str
    best_bid: float | None
    best_ask: float | None
    spread: float | None
    midpoint: float | None
    bid_depth_usd: float | None
    ask_depth_usd: float | None
    bid_levels: int | None
    ask_levels: int | None
    bid_depth_5: float | None
    bid_depth_10: float | None
    bid_depth_20: float | None
    bid_depth_50: float | None
    ask_depth_5: float | None
    ask_depth_10: float | None
    ask_depth_20: float | None
    ask_depth_50: float | None
    imbalance: float | None
    bid_wall_price: float | None
    bid_wall_size: float | None
    ask_wall_price: float | None
    ask_wall_size: float | None
    book_hash: str | None
    book_ts: datetime | None


class TradeRow(NamedTuple):
    ts: datetime
    token_id: str
    market_id: str
    trade_key: bytes
    price: float
    size: float
    side: str
    fee_rate_bps: float | None
    transaction_hash: str | None
    source: str
    exchange_ms: int | None
    received_at: datetime


class BookDeltaRow(NamedTuple):
    ts: datetime
    token_id: str
    market_id: str
    seq: int  # delta_seq(): which change of the token's millisecond
    side: str
    price: float
    size: float
    best_bid: float | None
    best_ask: float | None
    received_at: datetime


FEATURE_COLUMNS: tuple[str, ...] = (
    # price (5)
    "price",
    "best_bid",
    "best_ask",
    "spread",
    "last_trade_price",
    # momentum from Gamma (3)
    "price_change_1d",
    "price_change_1w",
    "price_change_1m",
    # volume (4)
    "volume_total",
    "volume_24h",
    "volume_1w",
    "liquidity",
    # depth (8)
    "bid_depth_5",
    "bid_depth_10",
    "bid_depth_20",
    "bid_depth_50",
    "ask_depth_5",
    "ask_depth_10",
    "ask_depth_20",
    "ask_depth_50",
    # derived book (7)
    "bid_levels",
    "ask_levels",
    "book_imbalance",
    "bid_wall_price",
    "bid_wall_size",
    "ask_wall_price",
    "ask_wall_size",
    # trade flow 1 h (9)
    "trade_count_1h",
    "buy_count_1h",
    "sell_count_1h",
    "volume_1h",
    "buy_volume_1h",
    "sell_volume_1h",
    "avg_trade_size_1h",
    "max_trade_size_1h",
    "vwap_1h",
    # whales 1 h (8)
    "whale_count_1h",
    "whale_volume_1h",
    "whale_buy_volume_1h",
    "whale_sell_volume_1h",
    "whale_net_flow_1h",
    "whale_buy_ratio_1h",
    "time_since_whale_s",
    "pct_volume_from_whales",
    # context (3)
    "hours_to_close",
    "day_of_week",
    "hour_of_day",
    # beyond seed 004 (17)
    "midpoint",
    "microprice",
    "tick_size",
    "spread_ticks",
    "bid_depth_total",
    "ask_depth_total",
    "return_1m",
    "return_5m",
    "return_15m",
    "return_1h",
    "realized_vol_1h",
    "price_min_1h",
    "price_max_1h",
    "trade_imbalance_1h",
    "seconds_since_trade",
    "neg_risk",
    "hours_since_open",
)

_FEATURE_INT_COLUMNS = frozenset(
    {
        "bid_levels",
        "ask_levels",
        "trade_count_1h",
        "buy_count_1h",
        "sell_count_1h",
        "whale_count_1h",
        "day_of_week",
        "hour_of_day",
    }
)
# In [0, 1]: prices, and the venue decimals stored as integer micro-units (tick, walls).
_FEATURE_PRICE_COLUMNS = frozenset(
    {"price", "best_bid", "best_ask", "last_trade_price", "midpoint", "microprice", "vwap_1h"}
    | {"tick_size", "bid_wall_price", "ask_wall_price"}
)


class FeatureRow(NamedTuple):
    """Key columns plus ``values``: FEATURE_COLUMNS in order (None where unknown)."""

    ts: datetime
    token_id: str
    market_id: str
    tier: int | None
    values: tuple[float | int | bool | None, ...]

    def flat(self) -> tuple[Any, ...]:
        return (self.ts, self.token_id, self.market_id, self.tier, *self.values)


# -- validation -----------------------------------------------------------------------------


def _bad_probability(value: float | None) -> bool:
    return value is not None and not 0.0 <= value <= 1.0  # NaN fails every comparison


def _bad_amount(value: float | None) -> bool:
    return value is not None and not 0.0 <= value < math.inf


def _time_problem(ts: datetime, latest_allowed: datetime) -> Problem | None:
    if ts.tzinfo is None:
        return Problem(RejectionKind.TIMESTAMP, "timestamp without time zone")
    if ts > latest_allowed:
        return Problem(RejectionKind.TIMESTAMP, f"timestamp {ts.isoformat()} is in the future")
    return None


def _key_problem(token_id: str, market_id: str) -> Problem | None:
    if not token_id or not market_id:
        return Problem(RejectionKind.MISSING_KEY, "missing token or market id")
    return None


def price_snapshot_problem(row: PriceSnapshotRow, latest_allowed: datetime) -> Problem | None:
    # One flat expression for the common, valid case: this runs per row on the hottest path.
    # Chained comparisons are False for NaN, so NaN fails the range checks too.
    ts, token_id, market_id, price, bid, ask, spread, last, volume, liquidity = row
    if (
        ts.tzinfo is not None
        and ts <= latest_allowed
        and token_id
        and market_id
        and (price is None or 0.0 <= price <= 1.0)
        and (bid is None or 0.0 <= bid <= 1.0)
        and (ask is None or 0.0 <= ask <= 1.0)
        and (last is None or 0.0 <= last <= 1.0)
        and (volume is None or 0.0 <= volume < math.inf)
        and (liquidity is None or 0.0 <= liquidity < math.inf)
        and (
            spread is None
            if bid is None or ask is None
            else spread is not None
            and 0.0 <= spread < math.inf
            and -HALF_MICRO < spread - (ask - bid) < HALF_MICRO
        )
    ):
        return None
    problem = _generic_problem(row, latest_allowed, _SNAPSHOT_PRICES, _SNAPSHOT_AMOUNTS)
    return problem or spread_problem(row.best_bid, row.best_ask, row.spread)


_SNAPSHOT_PRICES = ("price", "best_bid", "best_ask", "last_trade_price")
_SNAPSHOT_AMOUNTS = ("spread", "volume_24h", "liquidity")


def _generic_problem(
    row: Any, latest_allowed: datetime, prices: Sequence[str], amounts: Sequence[str]
) -> Problem | None:
    problem = _time_problem(row.ts, latest_allowed) or _key_problem(row.token_id, row.market_id)
    if problem:
        return problem
    for name in prices:
        if _bad_probability(getattr(row, name)):
            return bad_value(name, f"{name} {getattr(row, name)!r} outside [0, 1]")
    for name in amounts:
        if _bad_amount(getattr(row, name)):
            return bad_value(name, f"{name} {getattr(row, name)!r} is negative or not finite")
    return None


def orderbook_snapshot_problem(
    row: OrderBookSnapshotRow, latest_allowed: datetime
) -> Problem | None:
    problem = _generic_problem(row, latest_allowed, _BOOK_PRICES, _BOOK_AMOUNTS)
    return problem or book_shape_problem(row)


_BOOK_PRICES = ("best_bid", "best_ask", "midpoint", "bid_wall_price", "ask_wall_price")
_BOOK_AMOUNTS = tuple(
    name
    for name in OrderBookSnapshotRow._fields[8:27]
    if name not in _BOOK_PRICES and name != "imbalance"
)


def trade_problem(row: TradeRow, latest_allowed: datetime) -> Problem | None:
    problem = _time_problem(row.ts, latest_allowed) or _key_problem(row.token_id, row.market_id)
    if problem:
        return problem
    if _bad_probability(row.price):
        return bad_value("price", f"price {row.price!r} outside [0, 1]")
    if not math.isfinite(row.size) or row.size <= 0:
        return bad_value("size", f"size {row.size!r} is not a positive number")
    if row.side not in ("BUY", "SELL"):
        return bad_value("side", f"side {row.side!r} is neither BUY nor SELL")
    if len(row.trade_key) != TRADE_KEY_BYTES:
        return bad_value("trade_key", "trade_key has the wrong length")
    if row.source not in SOURCE_CODES:
        return bad_value("source", f"source {row.source!r} is none of {sorted(SOURCE_CODES)}")
    return None


def book_delta_problem(row: BookDeltaRow, latest_allowed: datetime) -> Problem | None:
    problem = _time_problem(row.ts, latest_allowed) or _key_problem(row.token_id, row.market_id)
    if problem:
        return problem
    if _bad_probability(row.price):
        return bad_value("price", f"price {row.price!r} outside [0, 1]")
    if _bad_amount(row.size):
        return bad_value("size", f"size {row.size!r} is negative or not finite")
    if row.side not in ("BUY", "SELL"):
        return bad_value("side", f"side {row.side!r} is neither BUY nor SELL")
    for name in ("best_bid", "best_ask"):
        if _bad_probability(getattr(row, name)):
            return bad_value(name, f"{name} {getattr(row, name)!r} outside [0, 1]")
    return None


def feature_problem(row: FeatureRow, latest_allowed: datetime) -> Problem | None:
    problem = _time_problem(row.ts, latest_allowed) or _key_problem(row.token_id, row.market_id)
    if problem:
        return problem
    if len(row.values) != len(FEATURE_COLUMNS):
        message = f"{len(row.values)} feature values for {len(FEATURE_COLUMNS)} columns"
        return Problem(RejectionKind.MALFORMED, message)
    for name, value in zip(FEATURE_COLUMNS, row.values, strict=True):
        if value is not None and not isinstance(value, int | float):
            return bad_value(name, f"{name} {value!r} is not a number")
        if isinstance(value, float) and not math.isfinite(value):
            return bad_value(name, f"{name} is not finite")
        if name in _FEATURE_PRICE_COLUMNS and _bad_probability(value):
            return bad_value(name, f"{name} {value!r} outside [0, 1]")
    return feature_shape_problem(dict(zip(FEATURE_COLUMNS, row.values, strict=True)))


# -- table specs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """What the bulk writer needs to know about one time-series table.

    ``name`` and ``columns`` are the public table (a view of that name from migration 0011 on
    for the compact tables) and its row type; ``storage`` says where and how rows are stored."""

    name: str
    columns: tuple[str, ...]
    problem: Callable[[Any, datetime], Problem | None]
    storage: Storage
    # Turns a row into a COPY record; None when the row already is one (a NamedTuple).
    to_record: Callable[[Any], Sequence[Any]] | None = None


PRICE_SNAPSHOTS = TableSpec(
    "price_snapshots", PriceSnapshotRow._fields, price_snapshot_problem, PRICE_POINTS
)
ORDERBOOK_SNAPSHOTS = TableSpec(
    "orderbook_snapshots", OrderBookSnapshotRow._fields, orderbook_snapshot_problem, BOOK_SAMPLES
)
TRADES = TableSpec("trades", TradeRow._fields, trade_problem, TRADE_FILLS)
BOOK_DELTAS = TableSpec("book_deltas", BookDeltaRow._fields, book_delta_problem, BOOK_CHANGES)
_FEATURE_TABLE_COLUMNS = ("ts", "token_id", "market_id", "tier", *FEATURE_COLUMNS)
MARKET_FEATURES = TableSpec(
    "market_features",
    _FEATURE_TABLE_COLUMNS,
    feature_problem,
    feature_storage(FEATURE_COLUMNS),
    to_record=FeatureRow.flat,
)
TIME_SERIES_TABLES = (PRICE_SNAPSHOTS, ORDERBOOK_SNAPSHOTS, TRADES, BOOK_DELTAS, MARKET_FEATURES)
TABLE_SPECS = {spec.name: spec for spec in TIME_SERIES_TABLES}
# How many public rows a stored row of each storage table stands for, as SQL
# (``Storage.represented``: two for a book change folded with its mirror).
REPRESENTED_ROWS = {spec.storage.table: spec.storage.represented for spec in TIME_SERIES_TABLES}


def latest_allowed_time(now: datetime, max_future_skew_s: float) -> datetime:
    return now + timedelta(seconds=max_future_skew_s)


# -- trade identity -------------------------------------------------------------------------

TRADE_KEY_BYTES = 16


def canonical_decimal(text: str) -> str:
    """``".480"``, ``"0.48"`` and ``"0.4800"`` are one price: strip to a canonical spelling."""
    text = text.strip()
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text.startswith("."):
        text = "0" + text
    return text or "0"


def trade_key(
    token_id: str, epoch_s: int, price: str, size: str, side: str, occurrence: int = 0
) -> bytes:
    """The identity of a fill, computable from both the WebSocket and the Data API.

    Polymarket has no public fill id, and the two feeds share only token, time to the second,
    price, size and taker side (the WebSocket may lack the transaction hash, the Data API lacks
    milliseconds). ``occurrence`` numbers otherwise identical fills within the same second, in
    the order seen, so two real fills that look alike are both kept.
    """
    material = "|".join(
        (
            token_id,
            str(epoch_s),
            canonical_decimal(price),
            canonical_decimal(size),
            side.upper(),
            str(occurrence),
        )
    )
    return hashlib.blake2b(material.encode(), digest_size=TRADE_KEY_BYTES).digest()


DELTA_SEQ_MASK = 0x7FFFFFFF  # the column is a signed 32-bit integer


def delta_seq(side: str, price: str, size: str) -> int:
    """31 bits that tell one book change of a token apart from the others of its millisecond
    (``book_deltas``' key is token, time, seq), computed from the change (side, price, new
    size) and not from the order of receipt: two collectors that receive the same change store
    it once, and so does one that receives a repeated frame. The venue's book hash is left out,
    since a subscriber may get a damaged one. Two changes of one token in one millisecond that
    set the same level to the same size are one row: within a millisecond the table keeps no
    order, so the second says nothing the first does not. Two different changes share a number
    with odds of 2^-31."""
    material = "|".join((side.upper(), canonical_decimal(price), canonical_decimal(size)))
    return zlib.crc32(material.encode()) & DELTA_SEQ_MASK
