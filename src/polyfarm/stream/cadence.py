"""Order-book snapshots and ML feature rows from the live state, at each tier's cadence.

For tokens the WebSocket covers (a ready live book), ``orderbook_snapshots`` rows come from the
live book (``source = ws``) at the same cadence the REST book collector uses, which skips those
tokens; ``market_features`` rows come at the tier's cadence. Rows carry the start of their
cadence slot, like every collector's; a slot is only written within ``LATE_S`` (or half a
cadence) of its start, so a row never claims an earlier time than its data.

A row equal to the token's previous one is not written again (``markets.unchanged``); a token
left out of a walk (its book not usable, its market closed or gone) is forgotten, so its next
row is written whatever the REST collector stored meanwhile.

Work is proportional to slot changes, not to ticks: each distinct cadence is checked once per
tick and the tokens are walked only when one of them enters a new slot.

When the disk budget runs low (``DiskPressure.slows_far_snapshots``), the tiers of
``storage.slowed_tiers`` (far from close) get cadences ``storage.slow_factor`` times longer;
trades and price snapshots are not written here and never slowed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from polyfarm.aio import sleep_unless
from polyfarm.clock import Clock
from polyfarm.markets.book_stats import book_stats
from polyfarm.markets.catalog import MarketCatalog
from polyfarm.markets.snapshots import book_digest, snapshot_row
from polyfarm.markets.tiers import aligned, book_cadence_s, cadence_s, slowed_cadence_s
from polyfarm.markets.tracked import TrackedMarket
from polyfarm.markets.unchanged import LastWritten
from polyfarm.settings import Settings
from polyfarm.store.disk import PressureReading
from polyfarm.store.rows import MARKET_FEATURES, ORDERBOOK_SNAPSHOTS, FeatureRow
from polyfarm.store.rows import OrderBookSnapshotRow as BookRow
from polyfarm.store.writing import Writer
from polyfarm.stream.features import FeatureInputs, feature_digest, feature_values
from polyfarm.stream.livebook import LiveBook
from polyfarm.stream.rolling import TokenActivity

LATE_S = 60.0
TICK_S = 0.5
# Tokens walked between two yields to the event loop. A far-tier slot takes every T0/T1 token
# at once (32,000 at the venue's mix): walked in one go, that held the loop for seconds,
# long enough for PINGs to be missed and the venue to close the sockets.
WALK_BATCH = 500
# Tokens whose rows are written together: a slot's rows are stored part by part, so that the
# rows of 32,000 tokens (about 100 MB of Python objects) are never all in memory at once and
# each write's validation holds the loop only briefly.
WRITE_BATCH = 1_000


@dataclass
class CadenceStats:
    book_rows: int = 0
    feature_rows: int = 0
    late_slots: int = 0
    unchanged_book_rows: int = 0
    unchanged_feature_rows: int = 0


class CadenceWriter:
    def __init__(
        self,
        *,
        books: dict[str, LiveBook],
        activity: dict[str, TokenActivity],
        catalog: MarketCatalog,
        settings: Settings,
        writer: Writer,
        clock: Clock,
        disk: PressureReading,
    ) -> None:
        self._books = books
        self._activity = activity
        self._catalog = catalog
        self._settings = settings
        self._writer = writer
        self._clock = clock
        self._disk = disk
        self._slots: dict[float, datetime] = {}
        unchanged = settings.unchanged
        self._last_books = LastWritten(
            book_digest, skip=unchanged.skip, keyframe_s=unchanged.keyframe_s
        )
        self._last_features = LastWritten(
            feature_digest, skip=unchanged.skip, keyframe_s=unchanged.keyframe_s
        )
        self.stats = CadenceStats()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.tick(self._clock())
            await sleep_unless(stop, TICK_S)

    async def tick(self, now: datetime) -> None:
        async for book_rows, feature_rows in self._due_parts(now):
            await self._write(book_rows, feature_rows)
        self.stats.unchanged_book_rows = self._last_books.skipped
        self.stats.unchanged_feature_rows = self._last_features.skipped

    async def _write(self, book_rows: list[BookRow], feature_rows: list[FeatureRow]) -> None:
        if book_rows:
            await self._writer.write(ORDERBOOK_SNAPSHOTS, book_rows)
            self._last_books.remember(book_rows)
            self.stats.book_rows += len(book_rows)
        if feature_rows:
            await self._writer.write(MARKET_FEATURES, feature_rows)
            self._last_features.remember(feature_rows)
            self.stats.feature_rows += len(feature_rows)

    def _book_cadence(self, market: TrackedMarket, slowed: bool) -> float:
        settings = self._settings
        cadence = book_cadence_s(market.tier, settings.tiers, settings.intervals.orderbooks_s)
        return slowed_cadence_s(cadence, market.tier, settings.storage) if slowed else cadence

    def _new_slots(self, now: datetime) -> dict[float, datetime]:
        tiers = self._settings.tiers
        cadences = {self._settings.intervals.orderbooks_s, *tiers.intervals()}
        # Every value the book cadence can take (see ``book_cadence_s``).
        cadences |= {min(c, self._settings.intervals.orderbooks_s) for c in tiers.intervals()}
        # And each of them slowed by the disk budget (tracked always: a slot is cheap).
        cadences |= {c * self._settings.storage.slow_factor for c in cadences}
        fresh = {}
        for cadence in cadences:
            slot = aligned(now, cadence)
            if self._slots.get(cadence) == slot:
                continue
            self._slots[cadence] = slot
            if (now - slot).total_seconds() <= min(LATE_S, cadence / 2):
                fresh[cadence] = slot
            else:
                self.stats.late_slots += 1
        return fresh

    async def due_rows(self, now: datetime) -> tuple[list[BookRow], list[FeatureRow]]:
        """Rows of the slots that start now, less those equal to the token's last written,
        all at once (the writer takes them part by part: ``tick``)."""
        book_rows: list[BookRow] = []
        feature_rows: list[FeatureRow] = []
        async for books, features in self._due_parts(now):
            book_rows += books
            feature_rows += features
        return book_rows, feature_rows

    async def _due_parts(
        self, now: datetime
    ) -> AsyncIterator[tuple[list[BookRow], list[FeatureRow]]]:
        """The due rows of ``WRITE_BATCH`` tokens at a time. Each row is taken from its book
        with no await in between; the walk yields to the event loop every ``WALK_BATCH``
        tokens."""
        fresh = self._new_slots(now)
        if not fresh:
            return
        slowed = self._disk.pressure().slows_far_snapshots
        tokens = list(self._books)
        book_rows: list[BookRow] = []
        feature_rows: list[FeatureRow] = []
        for start in range(0, len(tokens), WALK_BATCH):
            if start:
                await asyncio.sleep(0)
            for token in tokens[start : start + WALK_BATCH]:
                self._take_rows(token, fresh, slowed, book_rows, feature_rows)
            if (start + WALK_BATCH) % WRITE_BATCH == 0 or start + WALK_BATCH >= len(tokens):
                yield (
                    [r for r in book_rows if self._last_books.due(r)],
                    [r for r in feature_rows if self._last_features.due(r)],
                )
                book_rows, feature_rows = [], []
        self._last_books.keep_only(self._books)
        self._last_features.keep_only(self._books)

    def _take_rows(
        self,
        token: str,
        fresh: dict[float, datetime],
        slowed: bool,
        book_rows: list[BookRow],
        feature_rows: list[FeatureRow],
    ) -> None:
        """The token's rows of the fresh slots, if its cadences are among them."""
        book = self._books.get(token)  # gone meanwhile: dropped while the walk yielded
        market = self._catalog.market_of(token)
        if book is None or not book.usable or market is None or market.closed:
            self._last_books.forget(token)
            self._last_features.forget(token)
            return
        book_slot = fresh.get(self._book_cadence(market, slowed))
        if book_slot is not None:
            book_rows.append(self.book_row(book_slot, book, market))
        feature_slot = (
            None if market.tier is None else fresh.get(self._feature_cadence(market, slowed))
        )
        if feature_slot is not None:
            feature_rows.append(self.feature_row(feature_slot, book, market))

    def _feature_cadence(self, market: TrackedMarket, slowed: bool) -> float:
        assert market.tier is not None
        cadence = cadence_s(market.tier, self._settings.tiers)
        return slowed_cadence_s(cadence, market.tier, self._settings.storage) if slowed else cadence

    def book_row(self, slot: datetime, book: LiveBook, market: TrackedMarket) -> BookRow:
        ob = self._settings.orderbook
        return snapshot_row(
            slot,
            book.to_order_book(),
            market,
            depth=ob.depth,
            wall_multiple=ob.wall_multiple,
            source="ws",
        )

    def feature_row(self, slot: datetime, book: LiveBook, market: TrackedMarket) -> FeatureRow:
        """Features as of ``slot``, the time the row carries: fills and prices stamped later
        (the row is computed up to ``LATE_S`` after it) are left out, so a training set built
        on these rows cannot see the future. The book is the live one, observed meanwhile."""
        activity = self._activity.get(book.token_id) or TokenActivity()
        slot_s = slot.timestamp()
        whale_min_tier = self._settings.whales.feature_min_tier
        known = activity.known_at(slot_s, whale_min_tier)
        bids, asks = book.bids_best_first(), book.asks_best_first()
        last_price = known.last_trade_price
        if last_price is None and book.last_trade:
            last_price = float(book.last_trade)  # the venue's, from before we saw any fill
        inputs = FeatureInputs(
            now=slot,
            market=market,
            stats=book_stats(bids, asks, self._settings.orderbook.wall_multiple),
            depth_total=(sum(book.bid_sz), sum(book.ask_sz)),
            tick_size=float(book.tick_size) if book.tick_size else market.tick_size,
            last_trade_price=last_price,
            last_trade_s=known.last_trade_s,
            trades=known.trades,
            minute_prices=activity.minute_prices(slot_s),
            last_whale_s=known.last_whale_s,
            whale_min_tier=whale_min_tier,
        )
        return FeatureRow(
            slot, book.token_id, market.market_id, market.tier, feature_values(inputs)
        )
