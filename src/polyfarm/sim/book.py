"""Order-book rendering and the book hash.

One stored YES book per market; the NO token's book is its mirror (a YES ask at p is a NO bid
at 1 - p, same size). Levels are rendered best-last: bids ascending, asks descending.

Rendering builds the compact JSON text directly, computing each level's size string once for
both tokens: the same text is the hash input (with ``"hash":""``) and, with the hash filled in,
the REST body, so nothing is serialised twice. Hashes are cached per book version. WebSocket
``book`` messages are the same text without ``min_order_size`` and ``neg_risk`` (and with
``event_type``), hashed as the REST body is.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import orjson

from polyfarm.sim.model import Book, MarketState, TokenView
from polyfarm.sim.wire import PRICE_SCALE, PRICE_STR, price_str, size_str

HASH_KEYS = (
    "market", "asset_id", "timestamp", "hash", "bids", "asks",
    "min_order_size", "tick_size", "neg_risk", "last_trade_price",
)  # fmt: skip


def book_hash(summary: dict[str, Any]) -> str:
    """SHA-1 of the compact JSON of the summary with ``hash`` blanked, keys in wire order.

    This is py-clob-client's ``generate_orderbook_summary_hash``; ``render_book`` produces
    byte-identical input without building dictionaries.
    """
    ordered = {key: summary[key] for key in HASH_KEYS}
    ordered["hash"] = ""
    return _sha1(orjson.dumps(ordered))


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _levels_json(prices: list[int], sizes: list[str], mirror: bool) -> str:
    if mirror:
        return ",".join(
            f'{{"price":"{PRICE_STR[PRICE_SCALE - p]}","size":"{s}"}}'
            for p, s in zip(prices, sizes, strict=True)
        )
    return ",".join(
        f'{{"price":"{PRICE_STR[p]}","size":"{s}"}}' for p, s in zip(prices, sizes, strict=True)
    )


def _side_texts(book: Book) -> tuple[str, str, str, str]:
    """Level JSON for (YES bids, YES asks, NO bids, NO asks), each best-last."""
    bid_prices = sorted(book.bids)
    ask_prices = sorted(book.asks, reverse=True)
    bid_sizes = [size_str(book.bids[p]) for p in bid_prices]
    ask_sizes = [size_str(book.asks[p]) for p in ask_prices]
    return (
        _levels_json(bid_prices, bid_sizes, False),
        _levels_json(ask_prices, ask_sizes, False),
        _levels_json(ask_prices, ask_sizes, True),
        _levels_json(bid_prices, bid_sizes, True),
    )


def last_trade_text(market: MarketState, is_yes: bool) -> str:
    price = market.ltp[0 if is_yes else 1]
    return price_str(price) if price else ""


class _Parts(NamedTuple):
    """One token's book as JSON text pieces, so REST and WebSocket bodies share them."""

    head: str  # '{"market":…,"asset_id":…,"timestamp":"…","hash":"'
    levels: str  # '","bids":[…],"asks":[…]'
    min_order_size: str
    tick_size: str
    neg_risk: str
    last_trade_price: str

    def hash_input(self) -> str:
        return f"{self.head}{self.levels}{self._rest_tail()}"

    def rest_body(self, hash_: str) -> str:
        return f"{self.head}{hash_}{self.levels}{self._rest_tail()}"

    def ws_body(self, hash_: str) -> str:
        """The WebSocket ``book``: no ``min_order_size``/``neg_risk``, though the hash covers
        them (docs/polymarket-wire.md §10)."""
        tail = f',"tick_size":"{self.tick_size}","last_trade_price":"{self.last_trade_price}"}}'
        return f'{{"event_type":"book",{self.head[1:]}{hash_}{self.levels}{tail}'

    def _rest_tail(self) -> str:
        return (
            f',"min_order_size":"{self.min_order_size}","tick_size":"{self.tick_size}",'
            f'"neg_risk":{self.neg_risk},"last_trade_price":"{self.last_trade_price}"}}'
        )


def _token_parts(market: MarketState, is_yes: bool, bids: str, asks: str) -> _Parts:
    book = market.book
    assert book is not None
    return _Parts(
        head=(
            f'{{"market":"{market.condition_id}","asset_id":"{market.token(is_yes)}",'
            f'"timestamp":"{book.ts_ms}","hash":"'
        ),
        levels=f'","bids":[{bids}],"asks":[{asks}]',
        min_order_size=str(market.min_size),
        tick_size=PRICE_STR[market.tick],
        neg_risk="true" if market.neg_risk else "false",
        last_trade_price=last_trade_text(market, is_yes),
    )


def render_book(
    market: MarketState, want_yes: bool | None = None, *, websocket: bool = False
) -> tuple[str, str]:
    """(YES body, NO body) as JSON text; only ``want_yes``'s side is rendered when given.
    ``websocket`` renders the ``book`` message instead of the REST body (same hash)."""
    book = market.book
    if book is None:
        raise LookupError("market has no open book")
    yes_bids, yes_asks, no_bids, no_asks = _side_texts(book)
    bodies = ["", ""]
    hashes = [book.hashes[1], book.hashes[2]] if book.hashes[0] == book.version else ["", ""]
    for slot, is_yes, bids, asks in ((0, True, yes_bids, yes_asks), (1, False, no_bids, no_asks)):
        if want_yes is not None and want_yes != is_yes:
            continue
        parts = _token_parts(market, is_yes, bids, asks)
        hashes[slot] = hashes[slot] or _sha1(parts.hash_input().encode())
        bodies[slot] = parts.ws_body(hashes[slot]) if websocket else parts.rest_body(hashes[slot])
    if hashes[0] and hashes[1]:
        book.hashes = (book.version, hashes[0], hashes[1])
    return bodies[0], bodies[1]


def book_body(market: MarketState, is_yes: bool) -> str:
    """The REST ``/book`` JSON text for one token."""
    yes, no = render_book(market, is_yes)
    return yes if is_yes else no


def ws_book_body(market: MarketState, is_yes: bool) -> str:
    """The WebSocket ``book`` message for one token."""
    yes, no = render_book(market, is_yes, websocket=True)
    return yes if is_yes else no


def book_summary(market: MarketState, is_yes: bool) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(book_body(market, is_yes))
    return parsed


def token_hashes(market: MarketState) -> tuple[str, str]:
    book = market.book
    assert book is not None
    if book.hashes[0] != book.version:
        render_book(market)
    return book.hashes[1], book.hashes[2]


def token_top(book: Book, is_yes: bool) -> tuple[int | None, int | None]:
    """Best bid and best ask (price units) of a token's view of the book."""
    bid, ask = book.top()
    if is_yes:
        return bid, ask
    no_bid = PRICE_SCALE - ask if ask is not None else None
    return no_bid, PRICE_SCALE - bid if bid is not None else None


def top_strings(book: Book, is_yes: bool) -> tuple[str, str]:
    """Best bid / best ask as wire strings; an empty side reads ``"0"`` / ``"1"``."""
    bid, ask = token_top(book, is_yes)
    return (price_str(bid) if bid is not None else "0", price_str(ask) if ask is not None else "1")


def token_views(market: MarketState) -> tuple[TokenView, TokenView]:
    book = market.book
    assert book is not None
    yes_hash, no_hash = token_hashes(market)
    return (
        TokenView(yes_hash, *top_strings(book, True)),
        TokenView(no_hash, *top_strings(book, False)),
    )


def mid_half(book: Book) -> int | None:
    """YES midpoint in half units (0.00005); None when a side is empty."""
    bid, ask = book.top()
    if bid is None or ask is None:
        return None
    return bid + ask


def apply_changes(book: Book, changes: list[tuple[bool, int, int]], ts_ms: int) -> None:
    """Set each level to its new total size (0 deletes) and bump the version."""
    for is_bid, price, size in changes:
        side = book.bids if is_bid else book.asks
        if size > 0:
            side[price] = size
        else:
            side.pop(price, None)
    book.version += 1
    book.ts_ms = ts_ms
