"""Domain objects the collectors consume: decoded, validated, immutable.

Wire quirks stop at ``parse.py``: here token ids are strings, prices and sizes are ``Decimal``,
every timestamp is a timezone-aware UTC ``datetime``, and stringified JSON is already decoded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Generic, Literal, TypeVar

import msgspec

T = TypeVar("T")

Side = Literal["BUY", "SELL"]


class _Domain(msgspec.Struct, frozen=True, kw_only=True):
    pass


class WsCount(enum.Enum):
    """What the market WebSocket's decoder counts; the value names it in the metrics."""

    MESSAGES = "ws_messages"
    BAD_FRAME = "ws_bad_frame"  # not JSON at all
    BAD_MESSAGE = "ws_bad_message"  # one element refused
    UNKNOWN_EVENT_TYPE = "ws_unknown_event_type"
    CONTROL_PONG = "ws_control_pong"
    CONTROL_PING = "ws_control_ping"
    CONTROL_NO_NEW_ASSETS = "ws_control_no_new_assets"


@dataclass
class Counters:
    """Per-reason counts of the WebSocket decoder, owned by whoever passes it."""

    values: dict[WsCount, int] = field(default_factory=dict)

    def incr(self, reason: WsCount, amount: int = 1) -> None:
        self.values[reason] = self.values.get(reason, 0) + amount

    def get(self, reason: WsCount) -> int:
        return self.values.get(reason, 0)

    def snapshot(self) -> dict[WsCount, int]:
        return dict(self.values)


class Reject(_Domain, frozen=True, kw_only=True):
    """One record that failed validation; callers log, count and quarantine it."""

    reason: str
    raw: bytes
    key: str | None = None


class Page(_Domain, Generic[T], frozen=True, kw_only=True):
    """One page of a paginated listing: good items, rejected items, and where to go next."""

    items: tuple[T, ...]
    rejects: tuple[Reject, ...] = ()
    next_cursor: str | None = None


class Batch(_Domain, Generic[T], frozen=True, kw_only=True):
    """Result of a batched per-token request, keyed by token id (responses are unordered)."""

    items: dict[str, T]
    rejects: tuple[Reject, ...] = ()
    missing: tuple[str, ...] = ()


# --- Gamma -------------------------------------------------------------------------------


class ProtocolVersion(enum.Enum):
    """Which Gamma field holds a market's trading ids: ``clobTokenIds`` (V1, the CTF token ids)
    or ``positionIds`` (V2, PositionManager position ids)."""

    V1 = "v1"
    V2 = "v2"


class TokenInfo(_Domain, frozen=True, kw_only=True):
    """One outcome of a market: ``outcomes[i]`` ↔ ``outcomePrices[i]`` ↔ its ids at index i.

    ``token_id`` is the trading id (books, prices, WebSocket, Data API), chosen by the market's
    protocol version; ``ctf_token_id`` and ``position_id`` are the ``clobTokenIds`` and
    ``positionIds`` entries as published, whichever were.
    """

    index: int
    outcome: str
    token_id: str | None
    price: Decimal | None
    ctf_token_id: str | None = None
    position_id: str | None = None


class MarketInfo(_Domain, frozen=True, kw_only=True):
    market_id: str
    condition_id: str
    question: str
    question_id: str | None = None
    slug: str | None = None
    description: str | None = None
    tokens: tuple[TokenInfo, ...] = ()
    active: bool | None = None
    closed: bool = False
    archived: bool | None = None
    accepting_orders: bool | None = None
    enable_order_book: bool | None = None
    neg_risk: bool = False
    neg_risk_market_id: str | None = None
    neg_risk_request_id: str | None = None
    neg_risk_other: bool = False
    group_item_title: str | None = None
    event_id: str | None = None
    event_slug: str | None = None
    series_slug: str | None = None
    category: str | None = None
    tick_size: Decimal | None = None
    min_order_size: Decimal | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    closed_time: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    volume: Decimal | None = None
    volume_24hr: Decimal | None = None
    volume_1wk: Decimal | None = None
    liquidity: Decimal | None = None
    one_day_price_change: Decimal | None = None
    one_week_price_change: Decimal | None = None
    one_month_price_change: Decimal | None = None
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    spread: Decimal | None = None
    last_trade_price: Decimal | None = None
    uma_resolution_status: str | None = None
    uma_resolution_statuses: tuple[str, ...] = ()
    automatically_resolved: bool | None = None
    fees_enabled: bool | None = None
    fee_type: str | None = None
    # The scheme that chose the trading ids; None when not known (a market heard of on the
    # WebSocket before any Gamma scan). ``declared_version`` is Gamma's ``version`` as sent:
    # None for markets listed before Protocol V2, which are V1.
    protocol_version: ProtocolVersion | None = ProtocolVersion.V1
    declared_version: str | None = None
    # The Gamma object as received, kept for the ``markets.raw`` column (None when parsed
    # from an already-decoded object).
    raw: bytes | None = None

    @property
    def token_ids(self) -> tuple[str, ...]:
        return tuple(t.token_id for t in self.tokens if t.token_id is not None)

    @property
    def outcome_prices(self) -> tuple[Decimal | None, ...]:
        return tuple(t.price for t in self.tokens)


class Tag(_Domain, frozen=True, kw_only=True):
    tag_id: str
    label: str | None = None
    slug: str | None = None


class EventInfo(_Domain, frozen=True, kw_only=True):
    event_id: str
    slug: str | None = None
    ticker: str | None = None
    title: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    closed_time: datetime | None = None
    active: bool | None = None
    closed: bool = False
    archived: bool | None = None
    neg_risk: bool = False
    enable_neg_risk: bool | None = None
    neg_risk_augmented: bool | None = None
    neg_risk_market_id: str | None = None
    series_slug: str | None = None
    liquidity: Decimal | None = None
    volume: Decimal | None = None
    volume_24hr: Decimal | None = None
    open_interest: Decimal | None = None
    tags: tuple[Tag, ...] = ()
    markets: tuple[MarketInfo, ...] = ()
    market_rejects: tuple[Reject, ...] = ()


# --- CLOB REST ---------------------------------------------------------------------------


class BookLevel(_Domain, frozen=True, kw_only=True):
    price: Decimal
    size: Decimal


class OrderBook(_Domain, frozen=True, kw_only=True):
    """Bids ascending and asks descending by price, so the best level is the *last* element."""

    market: str
    asset_id: str
    timestamp: datetime
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    hash: str | None = None
    min_order_size: Decimal | None = None
    tick_size: Decimal | None = None
    neg_risk: bool | None = None
    last_trade_price: Decimal | None = None

    @property
    def best_bid(self) -> BookLevel | None:
        return self.bids[-1] if self.bids else None

    @property
    def best_ask(self) -> BookLevel | None:
        return self.asks[-1] if self.asks else None

    @property
    def midpoint(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return (bid.price + ask.price) / 2 if bid and ask else None

    @property
    def spread(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return ask.price - bid.price if bid and ask else None


class NoOrderBook(_Domain, frozen=True, kw_only=True):
    """``/book`` answered 404: unknown token or closed market (the API cannot tell which)."""

    asset_id: str
    reason: str


class Quote(_Domain, frozen=True, kw_only=True):
    """``POST /prices``: BUY is the best bid, SELL the best ask."""

    buy: Decimal | None
    sell: Decimal | None


class LastTrade(_Domain, frozen=True, kw_only=True):
    price: Decimal
    side: Side | None  # None when the token has no trades yet (side "")


class PricePoint(_Domain, frozen=True, kw_only=True):
    """A price-history point: the forward-filled midpoint of a bucket, not a trade.

    ``resolution_s`` is the window the point was observed in (Data API v2 only; 0 for the
    series' terminal tick); None from the CLOB route.
    """

    t: datetime
    p: Decimal
    resolution_s: int | None = None


class ClobToken(_Domain, frozen=True, kw_only=True):
    token_id: str
    outcome: str | None
    price: Decimal | None
    winner: bool | None


class ClobMarket(_Domain, frozen=True, kw_only=True):
    condition_id: str
    question_id: str | None = None
    question: str | None = None
    market_slug: str | None = None
    active: bool | None = None
    closed: bool | None = None
    archived: bool | None = None
    accepting_orders: bool | None = None
    enable_order_book: bool | None = None
    minimum_tick_size: Decimal | None = None
    minimum_order_size: Decimal | None = None
    neg_risk: bool | None = None
    neg_risk_market_id: str | None = None
    end_date: datetime | None = None
    is_50_50_outcome: bool | None = None
    tokens: tuple[ClobToken, ...] = ()
    tags: tuple[str, ...] = ()


class ClobMarketInfo(_Domain, frozen=True, kw_only=True):
    """``/clob-markets/{condition_id}``: the CLOB's own tick, minimum size and neg-risk flag
    (the equivalents of Gamma's ``orderPriceMinTickSize``, ``orderMinSize`` and ``negRisk``)."""

    condition_id: str
    tokens: tuple[ClobToken, ...]
    min_tick_size: Decimal | None
    min_order_size: Decimal | None
    neg_risk: bool
    fee_rate: Decimal | None = None
    fee_exponent: Decimal | None = None
    fee_taker_only: bool | None = None


class MarketByToken(_Domain, frozen=True, kw_only=True):
    """``/markets-by-token/{token_id}``: the market a trading id belongs to."""

    condition_id: str
    primary_token_id: str
    secondary_token_id: str


# --- Data API ----------------------------------------------------------------------------


class DataTrade(_Domain, frozen=True, kw_only=True):
    """One trade-tape row, from v1 (camelCase) or v2 (snake_case) alike."""

    condition_id: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    timestamp: datetime
    proxy_wallet: str | None = None
    transaction_hash: str | None = None
    outcome: str | None = None
    outcome_index: int | None = None
    title: str | None = None
    slug: str | None = None
    event_slug: str | None = None
    name: str | None = None
    pseudonym: str | None = None

    @property
    def notional(self) -> Decimal:
        return self.price * self.size

    @property
    def dedupe_key(self) -> tuple[str | None, str, str | None, str, Decimal, Decimal, datetime]:
        # The API has no trade id; several fills can share one transaction hash.
        return (
            self.transaction_hash,
            self.token_id,
            self.proxy_wallet,
            self.side,
            self.size,
            self.price,
            self.timestamp,
        )


# --- Market WebSocket --------------------------------------------------------------------


class BookSnapshot(_Domain, frozen=True, kw_only=True):
    book: OrderBook
    received_at: datetime


class PriceLevelChange(_Domain, frozen=True, kw_only=True):
    """``size`` is the new total at ``price`` (zero deletes the level), not a delta."""

    asset_id: str
    price: Decimal
    size: Decimal
    side: Side
    hash: str | None = None
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None


class PriceChange(_Domain, frozen=True, kw_only=True):
    market: str
    timestamp: datetime
    received_at: datetime
    items: tuple[PriceLevelChange, ...]


class TradePrint(_Domain, frozen=True, kw_only=True):
    asset_id: str
    market: str
    price: Decimal
    size: Decimal
    side: Side | None
    timestamp: datetime
    received_at: datetime
    fee_rate_bps: Decimal | None = None
    transaction_hash: str | None = None


class TickSizeChange(_Domain, frozen=True, kw_only=True):
    asset_id: str
    market: str
    old_tick_size: Decimal | None
    new_tick_size: Decimal
    timestamp: datetime
    received_at: datetime


class BestBidAsk(_Domain, frozen=True, kw_only=True):
    asset_id: str
    market: str
    best_bid: Decimal | None
    best_ask: Decimal | None
    spread: Decimal | None
    timestamp: datetime
    received_at: datetime


class NewMarket(_Domain, frozen=True, kw_only=True):
    """``asset_ids`` are the trading ids to subscribe; ``clob_token_ids`` as sent (on a
    Protocol V2 market they are the CTF ids, not trading ids)."""

    market_id: str | None
    condition_id: str
    asset_ids: tuple[str, ...]
    outcomes: tuple[str, ...]
    clob_token_ids: tuple[str, ...] = ()
    timestamp: datetime
    received_at: datetime
    question: str | None = None
    slug: str | None = None
    event_id: str | None = None
    event_slug: str | None = None
    group_item_title: str | None = None
    tick_size: Decimal | None = None
    tags: tuple[str, ...] = ()


class MarketResolved(_Domain, frozen=True, kw_only=True):
    market_id: str | None
    condition_id: str
    asset_ids: tuple[str, ...]
    winning_asset_id: str | None
    winning_outcome: str | None
    timestamp: datetime
    received_at: datetime
    tags: tuple[str, ...] = ()


WsMessage = (
    BookSnapshot
    | PriceChange
    | TradePrint
    | TickSizeChange
    | BestBidAsk
    | NewMarket
    | MarketResolved
)


# --- Resolution --------------------------------------------------------------------------


class ResolutionKind(enum.Enum):
    WINNER = "winner"
    FIFTY_FIFTY = "fifty_fifty"
    VOID = "void"
    UNRESOLVED = "unresolved"


class Resolution(_Domain, frozen=True, kw_only=True):
    kind: ResolutionKind
    winner_index: int | None = None
    winner_token_id: str | None = None
    winner_outcome: str | None = None
