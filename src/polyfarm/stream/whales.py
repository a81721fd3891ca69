"""Whale trades and their price impact (pure: times and prices are arguments).

A fill is a whale of tier 1, 2 or 3 when its notional (USDC = price x shares) reaches the
configured thresholds (500 / 2,000 / 10,000 by default). Each whale gets a ``whale_events`` row
with the price just before it; one and five minutes later the price is read again and the
impact filled in. ``impact`` is the price move *in the whale's direction* (positive when a buy
was followed by a higher price or a sell by a lower one), in probability points.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from polyfarm.store.stream_writes import ImpactUpdate, WhaleEventRow

AFTER = (timedelta(minutes=1), timedelta(minutes=5))


def whale_tier(notional: float, thresholds: tuple[float, float, float]) -> int:
    """0 below the first threshold, else the highest tier reached."""
    tier = 0
    for level, threshold in enumerate(thresholds, start=1):
        if notional >= threshold:
            tier = level
    return tier


def impact(before: float | None, after: float | None, is_buy: bool) -> float | None:
    if before is None or after is None:
        return None
    move = after - before
    return move if is_buy else -move


@dataclass
class _Pending:
    event: WhaleEventRow
    exchange_time: datetime
    step: int = 0  # 0: waiting for 1 min, 1: waiting for 5 min


class ImpactTracker:
    """Whales waiting for their 1- and 5-minute prices, oldest first, at most ``capacity``."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._pending: deque[_Pending] = deque()
        self._capacity = capacity
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    def watch(self, event: WhaleEventRow, exchange_time: datetime) -> None:
        if len(self._pending) >= self._capacity:
            self.dropped += 1  # impact stays empty for this one; the event row is still written
            return
        self._pending.append(_Pending(event, exchange_time))

    def due(
        self, now: datetime, price_of: Callable[[str, datetime], float | None]
    ) -> list[ImpactUpdate]:
        """Updates whose time has come; ``price_of(token, at)`` reads the price then."""
        updates = []
        waiting: deque[_Pending] = deque()
        for pending in self._pending:
            while pending.step < len(AFTER) and pending.exchange_time + AFTER[pending.step] <= now:
                updates.append(_update(pending, price_of))
                pending.step += 1
            if pending.step < len(AFTER):
                waiting.append(pending)
        self._pending = waiting
        return updates


def _update(pending: _Pending, price_of: Callable[[str, datetime], float | None]) -> ImpactUpdate:
    event = pending.event
    after = price_of(event.token_id, pending.exchange_time + AFTER[pending.step])
    return ImpactUpdate(
        token_id=event.token_id,
        trade_key=event.trade_key,
        ts=event.ts,
        minutes=(1, 5)[pending.step],
        price_after=after,
        impact=impact(event.price_before, after, event.side == "BUY"),
    )
