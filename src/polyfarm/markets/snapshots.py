"""Order-book snapshot rows, from a REST book or a live WebSocket one: the top levels per side
(best first) and the statistics of ``book_stats``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson

from polyfarm.markets.book_stats import book_stats
from polyfarm.markets.tracked import TrackedMarket
from polyfarm.polymarket.domain import BookLevel, OrderBook
from polyfarm.store.rows import OrderBookSnapshotRow

# A snapshot's content is every column but these: ``ts`` is the slot, and the venue's book
# ``timestamp`` and ``hash`` (which covers the timestamp) change on every fetch or message
# whether or not an order moved. Everything else a reader can see (levels, statistics of the
# whole book, source) must match for a row to count as unchanged.
NOT_CONTENT = ("ts", "book_hash", "book_ts")
_CONTENT = [i for i, f in enumerate(OrderBookSnapshotRow._fields) if f not in NOT_CONTENT]


def book_digest(row: OrderBookSnapshotRow) -> int:
    """Digest of a snapshot's content, for ``markets.unchanged.LastWritten``."""
    return hash(tuple(row[i] for i in _CONTENT))


def best_first(levels: Sequence[BookLevel], *, descending: bool) -> list[tuple[float, float]]:
    """Wire order is best-last and not to be trusted blindly: sort, best level first."""
    pairs = [(float(level.price), float(level.size)) for level in levels if level.size > 0]
    pairs.sort(key=lambda pair: pair[0], reverse=descending)
    return pairs


def snapshot_row(
    ts: datetime,
    book: OrderBook,
    market: TrackedMarket,
    *,
    depth: int,
    wall_multiple: float,
    source: str = "rest",
) -> OrderBookSnapshotRow:
    bids = best_first(book.bids, descending=True)
    asks = best_first(book.asks, descending=False)
    stats = book_stats(bids, asks, wall_multiple)
    return OrderBookSnapshotRow(
        ts,
        book.asset_id,
        market.market_id,
        source,
        orjson.dumps(bids[:depth]).decode(),
        orjson.dumps(asks[:depth]).decode(),
        stats.best_bid,
        stats.best_ask,
        stats.spread,
        stats.midpoint,
        stats.bid_depth_usd,
        stats.ask_depth_usd,
        stats.bid_levels,
        stats.ask_levels,
        *stats.bid_depth,
        *stats.ask_depth,
        stats.imbalance,
        stats.bid_wall.price if stats.bid_wall else None,
        stats.bid_wall.size if stats.bid_wall else None,
        stats.ask_wall.price if stats.ask_wall else None,
        stats.ask_wall.size if stats.ask_wall else None,
        book.hash,
        book.timestamp,
    )
