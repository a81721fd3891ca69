"""In-process rolling windows per token (no Redis): the last hour of fills, minute prices.

Fills come from the live tape and from gap repairs; a fill's trade key is remembered while it
is in the window so the same fill from both sources counts once. Prices are kept as one sample
per minute (the last price noted in that minute; the stream notes every book's price once a
minute) in a 64-slot ring, enough for one hour of minute-to-minute changes. Everything here is
pure: times are arguments.
"""

from __future__ import annotations

import math
from array import array
from bisect import insort
from collections import deque
from typing import NamedTuple

WINDOW_S = 3600.0
RING = 64  # minutes kept; more than the 61 samples an hour of minute changes needs


class TradeTick(NamedTuple):
    ts: float  # exchange time, epoch seconds
    price: float
    size: float  # shares
    notional: float  # USDC
    is_buy: bool  # taker side
    whale_tier: int  # 0 below the first whale threshold
    key: bytes


class KnownFills(NamedTuple):
    trades: list[TradeTick]  # the hour up to the as-of time, oldest first
    last_trade_s: float | None
    last_trade_price: float | None
    last_whale_s: float | None


class TokenActivity:
    """One token's recent fills and minute prices."""

    __slots__ = (
        "_keys",
        "_minute",
        "_minute_price",
        "_ring",
        "_trades",
        "last_trade_price",
        "last_trade_s",
        "last_whale_s",
    )

    def __init__(self) -> None:
        self._trades: deque[TradeTick] | None = None  # allocated on the first fill
        self._keys: set[bytes] | None = None
        self._minute = -1
        self._minute_price = math.nan
        # (minute, price) pairs, flat: one object per token instead of two.
        self._ring: array[float] = array("d", [-1.0, math.nan]) * RING
        self.last_trade_price: float | None = None
        self.last_trade_s: float | None = None
        self.last_whale_s: float | None = None

    # -- fills ----------------------------------------------------------------------------------

    def add_trade(self, tick: TradeTick, min_whale_tier: int) -> bool:
        """Remember a fill; False when this fill (by key) is already in the window."""
        if self._trades is None or self._keys is None:
            self._trades, self._keys = deque(), set()
        if tick.key in self._keys:
            return False
        self._keys.add(tick.key)
        if not self._trades or tick.ts >= self._trades[-1].ts:
            self._trades.append(tick)
        else:  # a repaired fill older than the newest live one
            insort(self._trades, tick, key=lambda t: t.ts)
        if self.last_trade_s is None or tick.ts >= self.last_trade_s:
            self.last_trade_s, self.last_trade_price = tick.ts, tick.price
        if tick.whale_tier >= min_whale_tier and tick.ts > (self.last_whale_s or -math.inf):
            self.last_whale_s = tick.ts
        return True

    def known_at(self, as_of_s: float, min_whale_tier: int) -> KnownFills:
        """The fills of the hour up to ``as_of_s`` and the last fill and whale at or before it:
        what a row stamped ``as_of_s`` may know, whatever arrived since."""
        trades = self.recent_trades(as_of_s)
        last_s, last_price = self.last_trade_s, self.last_trade_price
        if last_s is not None and last_s > as_of_s:
            last_s = trades[-1].ts if trades else None
            last_price = trades[-1].price if trades else None
        whale_s = self.last_whale_s
        if whale_s is not None and whale_s > as_of_s:
            whales = [t.ts for t in trades if t.whale_tier >= min_whale_tier]
            whale_s = whales[-1] if whales else None
        return KnownFills(trades, last_s, last_price, whale_s)

    def recent_trades(self, now_s: float) -> list[TradeTick]:
        """Fills of the last hour (older ones are dropped for good)."""
        trades, keys = self._trades, self._keys
        if trades is None or keys is None:
            return []
        oldest = now_s - WINDOW_S
        while trades and trades[0].ts < oldest:
            keys.discard(trades.popleft().key)
        return [t for t in trades if t.ts <= now_s]

    # -- prices ---------------------------------------------------------------------------------

    def note_price(self, ts_s: float, price: float) -> None:
        """The price at ``ts_s`` (live order: older minutes than the current one are ignored)."""
        minute = int(ts_s // 60)
        if minute != self._minute:
            if minute < self._minute:
                return
            self._close_minute()
            self._minute = minute
        self._minute_price = price

    def _close_minute(self) -> None:
        if self._minute >= 0 and not math.isnan(self._minute_price):
            slot = 2 * (self._minute % RING)
            self._ring[slot] = self._minute
            self._ring[slot + 1] = self._minute_price

    def _samples(self) -> dict[int, float]:
        samples = {
            int(minute): price
            for minute, price in zip(self._ring[::2], self._ring[1::2], strict=True)
            if minute >= 0
        }
        if self._minute >= 0 and not math.isnan(self._minute_price):
            samples[self._minute] = self._minute_price
        return samples

    def minute_prices(self, now_s: float, span: int = 60) -> list[float | None]:
        """``span + 1`` prices, from ``span`` minutes ago to now, carried forward; None where
        nothing was known yet."""
        now_min = int(now_s // 60)
        samples = self._samples()
        first = now_min - span
        earlier = [m for m in samples if m < first]
        carry: float | None = samples[max(earlier)] if earlier else None
        out: list[float | None] = []
        for minute in range(first, now_min + 1):
            carry = samples.get(minute, carry)
            out.append(carry)
        return out

    def price_at(self, ts_s: float) -> float | None:
        """The last price known in or before the minute of ``ts_s``."""
        minute = int(ts_s // 60)
        known = [(m, p) for m, p in self._samples().items() if m <= minute]
        return max(known)[1] if known else None
