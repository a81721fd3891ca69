"""What becomes of a stored fill: its token's rolling window, and a whale event for a big one.

Fills arrive from the live tape (``ingest.py``) and from gap repairs (``repair.py``); both go
through ``FillMemory``, so a fill seen live and repaired later counts once. A whale's event row
waits in ``WhaleLog`` until a chore stores it; one and five minutes later the price is read
again and its impact filled in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import asyncpg

from polyfarm.clock import Clock
from polyfarm.store.rows import TradeRow
from polyfarm.store.stream_writes import WhaleEventRow, insert_whale_events, update_whale_impacts
from polyfarm.stream.livebook import LiveBook
from polyfarm.stream.rolling import TokenActivity, TradeTick
from polyfarm.stream.whales import ImpactTracker, whale_tier

WHALE_BACKLOG_MAX = 10_000  # event rows per store
NOW_TOLERANCE_S = 5.0


class WhaleLog:
    """Whale events waiting to be stored, and whales waiting for their impact."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        clock: Clock,
        books: dict[str, LiveBook],
        activity: dict[str, TokenActivity],
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._books = books
        self._activity = activity
        self._rows: list[WhaleEventRow] = []
        self.impacts = ImpactTracker()

    def add(self, event: WhaleEventRow, exchange_time: datetime) -> None:
        self._rows.append(event)
        self.impacts.watch(event, exchange_time)

    async def store(self) -> None:
        """New event rows, then the impacts that came due (a chore)."""
        if self._rows:
            # Taken off before the await: rows arriving meanwhile wait for the next store.
            rows = self._rows[:WHALE_BACKLOG_MAX]
            del self._rows[:WHALE_BACKLOG_MAX]
            try:
                async with self._pool.acquire() as conn:
                    await insert_whale_events(conn, rows)
            except BaseException:  # not stored: back to the front, for the next try
                self._rows[:0] = rows
                raise
        updates = self.impacts.due(self._clock(), self._price_at)
        if updates:
            async with self._pool.acquire() as conn:
                await update_whale_impacts(conn, updates)

    def _price_at(self, token_id: str, at: datetime) -> float | None:
        """The live price when ``at`` is now, else the minute price of then."""
        now = self._clock()
        book = self._books.get(token_id)
        if book is not None and book.ready and abs((now - at).total_seconds()) <= NOW_TOLERANCE_S:
            return book.price
        activity = self._activity.get(token_id)
        return None if activity is None else activity.price_at(at.timestamp())


class FillMemory:
    """Stored fills into their token's rolling window; new whales into the ``WhaleLog``."""

    def __init__(
        self,
        *,
        activity: dict[str, TokenActivity],
        whales: WhaleLog,
        whale_thresholds: tuple[float, float, float],
        whale_feature_tier: int,
    ) -> None:
        self._activity = activity
        self._whales = whales
        self._thresholds = whale_thresholds
        self._feature_tier = whale_feature_tier

    def remember(self, row: TradeRow, ts_s: float, price_before: float | None) -> None:
        """Add a stored fill to the rolling window; a new whale also gets its event row
        (whale events are idempotent, so a fill of a token no longer tracked still gets one)."""
        notional = row.price * row.size
        tier = whale_tier(notional, self._thresholds)
        activity = self._activity.get(row.token_id)
        if activity is not None:
            tick = TradeTick(ts_s, row.price, row.size, notional, row.side == "BUY", tier)
            if not activity.add_trade(tick, row.trade_key, self._feature_tier):
                return  # already remembered (seen live, now repaired too)
        if tier == 0:
            return
        event = WhaleEventRow(
            row.ts,
            row.token_id,
            row.market_id,
            row.trade_key,
            row.price,
            row.size,
            notional,
            row.side,
            tier,
            price_before,
        )
        self._whales.add(event, row.ts + timedelta(seconds=ts_s % 1))

    def remember_repaired(self, rows: Iterable[TradeRow]) -> None:
        for row in rows:
            activity = self._activity.get(row.token_id)
            ts_s = row.ts.timestamp()
            before = None if activity is None else activity.price_at(ts_s - 60)
            self.remember(row, ts_s, before)
