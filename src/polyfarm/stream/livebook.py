"""Live L2 order books kept from the market WebSocket (pure: no I/O, no clock).

One ``LiveBook`` per token. Each side is a pair of parallel ``array('d')`` (prices ascending,
sizes): about 16 bytes a level and no Python object per level, so 40,000 books of ~60 levels
fit in tens of megabytes, and the touch is an index away (best bid last, best ask first).

Rules (reference §3.4):

* a ``book`` snapshot replaces the book wholesale and makes it ``ready``; after every
  (re)connect a book is not ready until its snapshot arrives, and deltas meanwhile are ignored;
* a ``price_change`` item sets the new total size of one level (zero deletes it);
* items older than the snapshot the book was rebuilt from (``floor_ms``) are already in it;
* the venue's ``hash`` is advisory: the book keeps the hash of its newest change and can compute
  its own (py-clob-client's order-book summary hash) to compare when asked;
* WebSocket ``book`` messages lack ``min_order_size`` and ``neg_risk``, which the hash covers:
  a book is seeded with both from market metadata so it can be verified without REST
  (docs/polymarket-wire.md §10); values a REST book brings take precedence.
"""

from __future__ import annotations

import enum
import hashlib
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from polyfarm.polymarket.domain import BookLevel, OrderBook

Level = tuple[float, float]


class HashSource(enum.Enum):
    """Where the venue hash a book is checked against came from."""

    WS_BOOK = "ws_book"  # a WebSocket ``book`` snapshot
    WS_PRICE_CHANGE = "ws_price_change"  # a ``price_change`` item
    REST = "rest"  # a REST ``/book`` or ``/books`` snapshot


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def number_text(value: float) -> str:
    """The venue's spelling of a decimal that went through a float: ``1250``, ``0.51``."""
    return str(int(value)) if value.is_integer() else repr(value)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class LiveBook:
    """One token's book; see the module docstring for the rules."""

    __slots__ = (
        "ask_px",
        "ask_sz",
        "bid_px",
        "bid_sz",
        "capture_market",
        "expected_hash",
        "floor_ms",
        "hash_source",
        "last_trade",
        "market",
        "min_order_size",
        "neg_risk",
        "queued",
        "ready",
        "seen_ms",
        "suspect",
        "tick_size",
        "token_id",
        "ts_ms",
    )

    def __init__(self, token_id: str, market: str) -> None:
        self.token_id = token_id
        self.market = market
        self.bid_px: array[float] = array("d")
        self.bid_sz: array[float] = array("d")
        self.ask_px: array[float] = array("d")
        self.ask_sz: array[float] = array("d")
        self.ts_ms = 0  # newest venue time applied
        self.floor_ms = 0  # venue time of the snapshot the book was last rebuilt from
        self.seen_ms = 0  # venue time of the last snapshot's arrival (liveness of quiet books)
        self.ready = False
        self.suspect = False  # its hash did not match: not snapshotted until rebuilt
        self.queued = False  # waiting for a hash check
        self.capture_market: str | None = None  # market id when its deltas are stored
        self.expected_hash: str | None = None
        self.hash_source = HashSource.WS_BOOK
        self.tick_size: str | None = None
        self.min_order_size: str | None = None
        self.neg_risk: bool | None = None
        self.last_trade = ""

    # -- updates --------------------------------------------------------------------------------

    def seed(self, min_order_size: str, neg_risk: bool) -> None:
        """Hash inputs from market metadata, for the ones no snapshot has brought."""
        if self.min_order_size is None:
            self.min_order_size = min_order_size
        if self.neg_risk is None:
            self.neg_risk = neg_risk

    @property
    def seeded(self) -> bool:
        return self.min_order_size is not None and self.neg_risk is not None

    def replace(self, book: OrderBook, source: HashSource = HashSource.WS_BOOK) -> None:
        """Rebuild from a snapshot (WebSocket ``book`` or REST ``/book``)."""
        _fill(self.bid_px, self.bid_sz, book.bids)  # in place: the arrays stay the same objects
        _fill(self.ask_px, self.ask_sz, book.asks)
        self.market = book.market
        self.ts_ms = self.floor_ms = epoch_ms(book.timestamp)
        self.expected_hash = book.hash
        self.hash_source = source
        self.tick_size = _text(book.tick_size) or self.tick_size
        self.min_order_size = _text(book.min_order_size) or self.min_order_size
        self.neg_risk = book.neg_risk if book.neg_risk is not None else self.neg_risk
        self.last_trade = _text(book.last_trade_price) or ""
        self.ready = True
        self.suspect = False

    def set_level(self, is_bid: bool, price: float, size: float) -> None:
        prices, sizes = (self.bid_px, self.bid_sz) if is_bid else (self.ask_px, self.ask_sz)
        i = bisect_left(prices, price)
        if i < len(prices) and prices[i] == price:
            if size > 0:
                sizes[i] = size
            else:
                del prices[i]
                del sizes[i]
        elif size > 0:
            prices.insert(i, price)
            sizes.insert(i, size)

    def apply_change(
        self, ts_ms: int, is_bid: bool, price: float, size: float, venue_hash: str | None
    ) -> bool:
        """One ``price_change`` item; False when the snapshot already holds it.

        An item older than the newest one applied (a reordered frame) is applied too, but if
        it touched a level a newer item set, the level is now wrong: callers verify the hash.
        """
        if ts_ms < self.floor_ms:
            return False
        self.set_level(is_bid, price, size)
        if ts_ms >= self.ts_ms:
            # The newest change's hash describes the whole book, older late arrivals included.
            self.ts_ms = ts_ms
            self.expected_hash = venue_hash
            self.hash_source = HashSource.WS_PRICE_CHANGE
        return True

    @property
    def usable(self) -> bool:
        """Ready and not known to be wrong: fit to be snapshotted."""
        return self.ready and not self.suspect

    def trade_printed(self, price: Decimal) -> None:
        self.last_trade = str(price)
        self.expected_hash = None  # the hash input changed; the next change brings a new one

    def tick_changed(self, tick_size: Decimal) -> None:
        self.tick_size = str(tick_size)
        self.expected_hash = None

    def invalidate(self) -> None:
        """A (re)connect: wait for a fresh snapshot before trusting deltas again."""
        self.ready = False
        self.expected_hash = None

    # -- reads ----------------------------------------------------------------------------------

    @property
    def best_bid(self) -> float | None:
        return self.bid_px[-1] if self.bid_px else None

    @property
    def best_ask(self) -> float | None:
        return self.ask_px[0] if self.ask_px else None

    @property
    def mid(self) -> float | None:
        if self.bid_px and self.ask_px:
            return (self.bid_px[-1] + self.ask_px[0]) / 2
        return None

    @property
    def price(self) -> float | None:
        """The midpoint, else the last trade (the ``price`` of snapshots and features)."""
        mid = self.mid
        if mid is None and self.last_trade:
            return float(self.last_trade)
        return mid

    def bids_best_first(self) -> list[Level]:
        return list(zip(reversed(self.bid_px), reversed(self.bid_sz), strict=True))

    def asks_best_first(self) -> list[Level]:
        return list(zip(self.ask_px, self.ask_sz, strict=True))

    def levels(self) -> int:
        return len(self.bid_px) + len(self.ask_px)

    @property
    def heard_ms(self) -> int:
        """When the venue last told us anything about this book (venue clock)."""
        return max(self.ts_ms, self.seen_ms)

    def to_order_book(self) -> OrderBook:
        """The book as a domain object (best last, as the parsers produce it)."""
        return OrderBook(
            market=self.market,
            asset_id=self.token_id,
            timestamp=datetime.fromtimestamp(self.ts_ms / 1000, UTC),
            bids=tuple(_levels(self.bid_px, self.bid_sz, reverse=False)),
            asks=tuple(_levels(self.ask_px, self.ask_sz, reverse=True)),
            hash=self.expected_hash,
            min_order_size=None if self.min_order_size is None else Decimal(self.min_order_size),
            tick_size=None if self.tick_size is None else Decimal(self.tick_size),
            neg_risk=self.neg_risk,
            last_trade_price=Decimal(self.last_trade) if self.last_trade else None,
        )

    def summary_hash(self) -> str | None:
        """py-clob-client's summary hash of this book; None when a hash input is unknown."""
        if self.tick_size is None or self.min_order_size is None or self.neg_risk is None:
            return None
        summary = {
            "market": self.market,
            "asset_id": self.token_id,
            "timestamp": str(self.ts_ms),
            "hash": "",
            "bids": _wire_levels(self.bid_px, self.bid_sz, reverse=False),
            "asks": _wire_levels(self.ask_px, self.ask_sz, reverse=True),
            "min_order_size": self.min_order_size,
            "tick_size": self.tick_size,
            "neg_risk": self.neg_risk,
            "last_trade_price": self.last_trade,
        }
        return hashlib.sha1(orjson.dumps(summary), usedforsecurity=False).hexdigest()

    def matches(self, book: OrderBook) -> bool:
        """Same levels as ``book`` (a REST snapshot), price and size alike."""
        bid_px, bid_sz = _side(book.bids)
        ask_px, ask_sz = _side(book.asks)
        return (bid_px, bid_sz, ask_px, ask_sz) == (
            self.bid_px,
            self.bid_sz,
            self.ask_px,
            self.ask_sz,
        )


def _fill(prices: array[float], sizes: array[float], levels: tuple[BookLevel, ...]) -> None:
    new_prices, new_sizes = _side(levels)
    prices[:] = new_prices
    sizes[:] = new_sizes


def _side(levels: tuple[BookLevel, ...]) -> tuple[array[float], array[float]]:
    pairs = sorted((float(level.price), float(level.size)) for level in levels if level.size > 0)
    return array("d", (p for p, _ in pairs)), array("d", (s for _, s in pairs))


def _pairs(prices: array[float], sizes: array[float], reverse: bool) -> Iterator[Level]:
    pairs = zip(prices, sizes, strict=True)
    return reversed(list(pairs)) if reverse else pairs


def _levels(prices: array[float], sizes: array[float], *, reverse: bool) -> Iterator[BookLevel]:
    for price, size in _pairs(prices, sizes, reverse):
        yield BookLevel(price=Decimal(number_text(price)), size=Decimal(number_text(size)))


def _wire_levels(
    prices: array[float], sizes: array[float], *, reverse: bool
) -> list[dict[str, str]]:
    """Wire order: bids ascending, asks descending (best last), decimal strings."""
    return [
        {"price": number_text(price), "size": number_text(size)}
        for price, size in _pairs(prices, sizes, reverse)
    ]
