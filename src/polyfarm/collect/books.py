"""Order-book snapshots: every active token every 5 minutes, near-close tiers at their tier's
cadence (T2 60 s, T3 30 s, T4 15 s by default).

The collector ticks at the fastest cadence and fetches only the tokens that are due, with
``POST /books`` in batches of 500. Each snapshot stores the top N levels per side as JSONB
(best first) and the statistics of ``book_stats``, stamped with the start of the token's
cadence slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import orjson

from polyfarm.clock import Clock
from polyfarm.collect.book_stats import book_stats
from polyfarm.collect.catalog import MarketCatalog, TrackedMarket
from polyfarm.collect.rejects import RejectSink
from polyfarm.collect.tiers import aligned, cadence_s
from polyfarm.logs import get_logger
from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.domain import BookLevel, OrderBook
from polyfarm.runtime import CycleResult
from polyfarm.settings import Settings
from polyfarm.store.rows import ORDERBOOK_SNAPSHOTS, OrderBookSnapshotRow
from polyfarm.store.writing import Writer

log = get_logger(__name__)

CHUNK_TOKENS = 2_000


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


class BookCollector:
    name = "orderbooks"

    def __init__(
        self,
        clob: ClobClient,
        writer: Writer,
        catalog: MarketCatalog,
        clock: Clock,
        settings: Settings,
        rejects: RejectSink,
    ) -> None:
        self._rejects = rejects
        self._clob = clob
        self._writer = writer
        self._catalog = catalog
        self._clock = clock
        self._settings = settings
        self._last_slot: dict[str, datetime] = {}
        # Tokens whose live WebSocket book is snapshotted by the stream itself (at the same
        # cadence); the stream sets this when it is wired in.
        self.covered: Callable[[str], bool] = lambda token: False

    @property
    def tick_s(self) -> float:
        """How often the collector looks for due tokens: the fastest cadence it serves."""
        fast = [cadence_s(t, self._settings.tiers) for t in self._settings.tiers.orderbook_tiers]
        return min([self._settings.intervals.orderbooks_s, *fast])

    def cadence_for(self, market: TrackedMarket) -> float:
        tiers = self._settings.tiers
        if market.tier is not None and market.tier in tiers.orderbook_tiers:
            return min(cadence_s(market.tier, tiers), self._settings.intervals.orderbooks_s)
        return self._settings.intervals.orderbooks_s

    def due(self, now: datetime) -> list[tuple[str, TrackedMarket, datetime]]:
        due = []
        for token, market in self._catalog.active_tokens():
            if self.covered(token):
                continue
            slot = aligned(now, self.cadence_for(market))
            if self._last_slot.get(token) != slot:
                due.append((token, market, slot))
        return due

    async def cycle(self) -> CycleResult:
        due = self.due(self._clock())
        rows = 0
        # A chunk at a time: 40,000 parsed books at once would hold ~1.6 M Decimal levels.
        for start in range(0, len(due), CHUNK_TOKENS):
            rows += await self._fetch_and_store(due[start : start + CHUNK_TOKENS])
        return CycleResult(markets=len({m.market_id for _, m, _ in due}), rows=rows)

    async def _fetch_and_store(self, due: list[tuple[str, TrackedMarket, datetime]]) -> int:
        books = await self._clob.get_books([token for token, _, _ in due])
        await self._rejects.add("clob_book", books.rejects)
        rows = [
            snapshot_row(
                slot,
                books.items[token],
                market,
                depth=self._settings.orderbook.depth,
                wall_multiple=self._settings.orderbook.wall_multiple,
            )
            for token, market, slot in due
            if token in books.items
        ]
        result = await self._writer.write(ORDERBOOK_SNAPSHOTS, rows)
        for token, _, slot in due:
            if token in books.items:
                self._last_slot[token] = slot
        return result.inserted
