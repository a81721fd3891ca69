"""The receive path: decoded WebSocket messages → live books, fills, rolling windows, rows.

Synchronous on purpose: one message is handled without a single await, so the hot path costs
no scheduling; rows go to bounded queues (``sink.py``) and lifecycle events to a bounded deque
that an async task works off. Nothing here reads a clock: the receive time comes with each
message (``received_at``, venue clock) and the frame's ``perf_counter`` stamp as an argument.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from polyfarm.markets.catalog import MarketCatalog
from polyfarm.markets.tracked import BookSeed
from polyfarm.polymarket.domain import (
    BestBidAsk,
    BookSnapshot,
    MarketResolved,
    NewMarket,
    PriceChange,
    PriceLevelChange,
    TickSizeChange,
    TradePrint,
)
from polyfarm.store.disk import PressureReading
from polyfarm.store.rows import BookDeltaRow, delta_seq
from polyfarm.stream.bookcheck import BookChecker
from polyfarm.stream.connection import Watermark
from polyfarm.stream.counts import StreamCounts, StreamEvent
from polyfarm.stream.fills import FillMemory
from polyfarm.stream.livebook import LiveBook, epoch_ms
from polyfarm.stream.repair import Gap, GapCause
from polyfarm.stream.rolling import TokenActivity
from polyfarm.stream.sink import Flusher, WriteQueue
from polyfarm.stream.trades import LiveTradeKeys, live_trade_row

LIFECYCLE_MAX = 1_000
RECENT_DELTA_MESSAGES = 4_096
Lifecycle = NewMarket | MarketResolved


@dataclass(kw_only=True)
class StreamIngest:
    """State fed by every connection: books, fills, minute prices and write queues."""

    catalog: MarketCatalog
    books: dict[str, LiveBook]
    activity: dict[str, TokenActivity]  # shared with ``fills``
    fills: FillMemory
    trades: WriteQueue
    deltas: WriteQueue
    flusher: Flusher
    checker: BookChecker
    counts: StreamCounts
    submit_gap: Callable[[Gap], None]
    disk: PressureReading  # below the budget's threshold deltas are not stored (a feed_gaps row)
    drop_deltas: Callable[[str, int], None]
    snapshot_arrived: Callable[[str], None] = lambda token: None
    capture: dict[str, str] = field(default_factory=dict)  # token → market id of kept deltas
    keys: LiveTradeKeys = field(default_factory=LiveTradeKeys)
    lifecycle: deque[Lifecycle] = field(default_factory=deque)
    unseeded: dict[str, None] = field(default_factory=dict)  # books without hash inputs
    _recent_deltas: dict[tuple[object, ...], None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._message_counts = self.counts.messages
        self._dispatch: dict[type, Callable[[Any, float, Watermark], None]] = {
            PriceChange: self._price_change,
            TradePrint: self._trade,
            BookSnapshot: self._book,
            BestBidAsk: self._best_bid_ask,
            TickSizeChange: self._tick_size,
            NewMarket: self._lifecycle,
            MarketResolved: self._lifecycle,
        }

    # -- subscriptions --------------------------------------------------------------------------

    def track(self, token_id: str, condition_id: str, seed: BookSeed | None = None) -> None:
        """Keep a live book for the token, seeded with the hash inputs its WebSocket snapshots
        lack when the market's metadata has them (else ``reseed`` retries)."""
        book = self.books.get(token_id)
        if book is None:
            book = self.books[token_id] = LiveBook(token_id, condition_id)
            self.activity[token_id] = TokenActivity()
        if seed is not None:
            book.seed(seed.min_order_size, seed.neg_risk)
        if not book.seeded:
            self.unseeded[token_id] = None

    def reseed(self, seed_of: Callable[[str], BookSeed | None]) -> None:
        """Seed books whose market has metadata by now (a scan replaced an announcement)."""
        for token in list(self.unseeded):
            book = self.books.get(token)
            seed = None if book is None else seed_of(token)
            if book is not None and seed is not None:
                book.seed(seed.min_order_size, seed.neg_risk)
            if book is None or book.seeded:
                del self.unseeded[token]

    def untrack(self, token_id: str) -> None:
        self.books.pop(token_id, None)
        self.activity.pop(token_id, None)
        self.capture.pop(token_id, None)
        self.unseeded.pop(token_id, None)

    def set_capture(self, capture: dict[str, str]) -> None:
        """Which tokens' deltas are stored (token → market id)."""
        self.capture = capture
        for token, book in self.books.items():
            book.capture_market = capture.get(token)

    def invalidate(self, tokens: Iterable[str]) -> None:
        """A (re)connect: these books wait for fresh snapshots."""
        for token in tokens:
            book = self.books.get(token)
            if book is not None:
                book.invalidate()

    # -- dispatch -------------------------------------------------------------------------------

    def handle(self, message: Any, stamp: float, mark: Watermark) -> None:
        kind = type(message)
        self._message_counts[kind] += 1
        self._dispatch[kind](message, stamp, mark)

    def _price_change(self, message: PriceChange, stamp: float, mark: Watermark) -> None:
        ts_ms = epoch_ms(message.timestamp)
        if ts_ms > mark.ms:
            mark.ms = ts_ms
        books = self.books
        pending = self.checker.pending
        captured: list[tuple[PriceLevelChange, str, float, float]] = []
        for item in message.items:
            token = item.asset_id
            book = books.get(token)
            if book is None or not book.ready:
                self.counts.add(StreamEvent.DELTA_BEFORE_SNAPSHOT)
                continue
            reordered = ts_ms < book.ts_ms
            price, size = float(item.price), float(item.size)
            if not book.apply_change(ts_ms, item.side == "BUY", price, size, item.hash):
                self.counts.add(StreamEvent.DELTA_IN_SNAPSHOT)
                continue
            if reordered:  # may have overwritten a newer level: check now, not later
                self.counts.add(StreamEvent.DELTA_REORDERED)
                self.checker.verify(token)
            elif not book.queued:
                book.queued = True
                pending.append(token)
            if book.capture_market is not None:
                captured.append((item, book.capture_market, price, size))
        if (
            captured
            and self._fresh_delta_message(message, ts_ms)
            and self.disk.pressure().stores_book_deltas
        ):
            for item, market_id, price, size in captured:
                self._capture(message, item, market_id, price, size, stamp)

    def _fresh_delta_message(self, message: PriceChange, ts_ms: int) -> bool:
        """False for a repeated frame (same market, time and item hashes): its rows would only
        meet the table's key and be dropped there (``delta_seq``)."""
        identity = (message.market, ts_ms, tuple((i.asset_id, i.hash) for i in message.items))
        if identity in self._recent_deltas:
            self.counts.add(StreamEvent.REPEATED_DELTA_MESSAGE)
            return False
        self._recent_deltas[identity] = None
        if len(self._recent_deltas) > RECENT_DELTA_MESSAGES:
            del self._recent_deltas[next(iter(self._recent_deltas))]
        return True

    def _capture(  # the hot path passes what it already has
        self,
        message: PriceChange,
        item: PriceLevelChange,
        market_id: str,
        price: float,
        size: float,
        stamp: float,
    ) -> None:
        if self.deltas.full:
            self.drop_deltas(market_id, epoch_ms(message.timestamp))
            return
        row = BookDeltaRow(
            message.timestamp,
            item.asset_id,
            market_id,
            delta_seq(item.side, str(item.price), str(item.size)),
            item.side,
            price,
            size,
            None if item.best_bid is None else float(item.best_bid),
            None if item.best_ask is None else float(item.best_ask),
            message.received_at,
        )
        self.deltas.put(row, stamp)
        self.flusher.nudge(self.deltas)

    def _trade(self, message: TradePrint, stamp: float, mark: Watermark) -> None:
        exchange_ms = epoch_ms(message.timestamp)
        if exchange_ms > mark.ms:
            mark.ms = exchange_ms
        token = message.asset_id
        market = self.catalog.market_of(token)
        if market is None or token not in self.books:
            self.counts.add(StreamEvent.TRADE_UNTRACKED_TOKEN)
            return
        if message.side is None:  # cannot be keyed or stored: have the Data API fill it in
            self.counts.add(StreamEvent.TRADE_WITHOUT_SIDE)
            at = message.timestamp
            gap = Gap(
                (market.market_id,), at - timedelta(seconds=1), at, GapCause.FILL_WITHOUT_SIDE
            )
            self.submit_gap(gap)
            return
        price, size, tx = message.price, message.size, message.transaction_hash
        key = self.keys.key(token, exchange_ms, price, size, message.side, tx)
        if key is None:
            self.counts.add(StreamEvent.REPEATED_FILL)
            return
        row = live_trade_row(message, message.side, key, market.market_id, exchange_ms)
        self.trades.put(row, stamp)
        self.flusher.nudge(self.trades)
        book = self.books[token]
        price_before = book.price
        if price_before is None:  # no book yet (a market just born): the last price sampled
            activity = self.activity.get(token)
            price_before = None if activity is None else activity.price_at(exchange_ms / 1000)
        book.trade_printed(price)
        self.fills.remember(row, exchange_ms / 1000, price_before)

    def sample_prices(self, now_s: float) -> None:
        """Each book's price into its minute ring (once a minute: off the per-message path,
        where touching a second object per level update costs more than the update)."""
        activity = self.activity
        for token, book in self.books.items():
            if book.ready:
                price = book.price
                if price is not None:
                    activity[token].note_price(now_s, price)

    def _book(self, message: BookSnapshot, stamp: float, mark: Watermark) -> None:
        token = message.book.asset_id
        book = self.books.get(token)
        if book is None:
            self.counts.add(StreamEvent.BOOK_UNTRACKED_TOKEN)
            return
        book.replace(message.book)
        book.seen_ms = epoch_ms(message.received_at)
        if book.ts_ms > mark.ms:
            mark.ms = book.ts_ms
        self.checker.changed(token)
        self.snapshot_arrived(token)

    def _tick_size(self, message: TickSizeChange, stamp: float, mark: Watermark) -> None:
        book = self.books.get(message.asset_id)
        if book is not None:
            book.tick_changed(message.new_tick_size)

    def _best_bid_ask(self, message: BestBidAsk, stamp: float, mark: Watermark) -> None:
        pass  # the live book is the source of the touch; counted by type in ``handle``

    def _lifecycle(self, message: Lifecycle, stamp: float, mark: Watermark) -> None:
        if len(self.lifecycle) >= LIFECYCLE_MAX:
            self.counts.add(
                StreamEvent.LIFECYCLE_DROPPED
            )  # the metadata and resolution scans catch up
            return
        self.lifecycle.append(message)
