"""The world's state objects and the events a world step produces.

Market state is deliberately compact (``__slots__``, integers for prices and sizes, the order
book materialised lazily) so 20,000 markets fit comfortably and start in seconds. Only the YES
book is stored; the NO book is its mirror at ``1 - p``.
"""

from __future__ import annotations

import enum
from array import array
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.Enum):
    OPEN = "open"
    YES = "yes"
    NO = "no"
    FIFTY = "50/50"
    VOID = "void"


@dataclass(slots=True)
class Book:
    """The YES book: price (ten-thousandths) → size (hundredths of a share)."""

    bids: dict[int, int]
    asks: dict[int, int]
    ts_ms: int
    version: int = 0
    hashes: tuple[int, str, str] = (-1, "", "")  # (version, YES hash, NO hash)

    def best_bid(self) -> int | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> int | None:
        return min(self.asks) if self.asks else None

    def top(self) -> tuple[int | None, int | None]:
        return self.best_bid(), self.best_ask()


@dataclass(slots=True)
class EventState:
    idx: int
    gamma_id: int
    slug: str
    title: str
    description: str
    created_s: float
    start_s: float
    end_s: float
    kind: str  # "single" | "ladder" | "negrisk" | "series"
    neg_risk_market_id: str = ""
    series: dict[str, str] | None = None
    tags: list[dict[str, Any]] = field(default_factory=list)
    comment_count: int = 0
    markets: list[MarketState] = field(default_factory=list)

    @property
    def neg_risk(self) -> bool:
        return self.kind == "negrisk"

    def is_closed(self) -> bool:
        return all(m.closed_s is not None for m in self.markets)


@dataclass(slots=True, eq=False)
class MarketState:
    idx: int
    gamma_id: int
    event: EventState
    condition_id: str
    question_id: str
    yes_token: str
    no_token: str
    question: str
    slug: str
    outcomes: tuple[str, str]
    group_title: str | None
    group_threshold: str
    neg_risk_request_id: str
    tick: int  # wire.TICK_CENT (0.01), TICK_MILLI (0.001) or TICK_QUARTER (0.0025)
    created_s: float
    end_s: float
    planned: Outcome
    fair_x: float  # logit of the fair YES price
    anchor_x: float
    sigma: float  # logit volatility per sqrt(second)
    fair_s: float  # when fair_x was last evolved
    weight: float  # relative activity (uniform mix)
    depth: float  # typical level size in shares
    fee_type: str | None = None
    # Protocol V2 (2026): ``yes_token``/``no_token`` are always the trading ids. A v2 market
    # publishes them as ``positionIds`` and its CTF ids (or nothing) as ``clobTokenIds``; a
    # v1 market the reverse, and sometimes other ``positionIds`` (a leg of a V2 workflow).
    protocol: str = "v1"  # "v1" | "v2"
    declares_version: bool = True  # False: listed before V2, no ``version`` field
    ctf_ids: tuple[str, str] | None = None  # ``clobTokenIds`` as published
    position_ids: tuple[str, str] | None = None  # ``positionIds`` as published
    min_size: int = 5  # ``orderMinSize`` in shares
    rewarded: bool = False  # has liquidity rewards (listed by /sampling-markets)
    activity: float = 1.0  # heavy-tailed activity level (venue mix; see venue.py)
    linger_s: float = 0.0  # trading goes on this long past ``end_s`` before the market closes
    book: Book | None = None
    closed_s: float | None = None
    resolved_s: float | None = None
    result: Outcome = Outcome.OPEN
    disputed: bool = False
    final_mid: int = 10_000  # YES mid at close, in half units (0.00005)
    final_top: tuple[int, int] = (0, 0)  # YES best bid / best ask at close (0 = none)
    ltp: list[int] = field(default_factory=lambda: [0, 0])  # last trade price YES/NO, 0 = none
    lts: list[str] = field(default_factory=lambda: ["", ""])  # last trade side YES/NO
    vol_total: float = 0.0
    vol24: float = 0.0
    vol1wk: float = 0.0
    vol_s: float = 0.0
    hist_min: array[int] = field(default_factory=lambda: array("I"))
    hist_mid: array[int] = field(default_factory=lambda: array("H"))

    @property
    def neg_risk(self) -> bool:
        return self.event.neg_risk

    @property
    def is_open(self) -> bool:
        return self.closed_s is None

    def token(self, is_yes: bool) -> str:
        return self.yes_token if is_yes else self.no_token


@dataclass(slots=True, eq=False)
class Trade:
    """One taker fill: the ground truth that the WebSocket and the Data API both report."""

    id: int
    market: MarketState
    is_yes: bool
    buy: bool
    price: int  # ten-thousandths, from the traded token's point of view
    size: int  # hundredths of a share
    ts_ms: int
    tx_hash: str
    taker: int
    maker: int

    @property
    def token_id(self) -> str:
        return self.market.token(self.is_yes)

    @property
    def notional(self) -> float:
        return self.price * self.size / 1_000_000  # (1e-4 USDC/share) × (1e-2 shares)


@dataclass(slots=True, frozen=True)
class TokenView:
    """Wire values for one token after a book change (captured at event time)."""

    hash: str
    best_bid: str
    best_ask: str


@dataclass(slots=True)
class BookUpdate:
    market: MarketState
    ts_ms: int
    changes: list[tuple[bool, int, int]]  # (YES bid side?, price, new total size)
    yes: TokenView | None  # None when nobody watches the market (no hash computed)
    no: TokenView | None
    top_changed: bool


@dataclass(slots=True)
class TradeEvent:
    trade: Trade
    ts_ms: int


@dataclass(slots=True)
class TickSizeChange:
    market: MarketState
    ts_ms: int
    old_tick: int
    new_tick: int


@dataclass(slots=True)
class MarketCreated:
    market: MarketState
    ts_ms: int


@dataclass(slots=True)
class MarketClosed:
    market: MarketState
    ts_ms: int


@dataclass(slots=True)
class MarketResolved:
    market: MarketState
    ts_ms: int


WorldEvent = (
    BookUpdate | TradeEvent | TickSizeChange | MarketCreated | MarketClosed | MarketResolved
)
