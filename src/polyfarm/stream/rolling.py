"""In-process rolling windows per token (no Redis): the last hour of fills, minute prices.

Fills come from the live tape and from gap repairs; a fill's trade key is remembered while it
is in the window so the same fill from both sources counts once. Prices are kept as one sample
per minute (the last price noted in that minute; the stream notes every book's price once a
minute) in a 64-slot ring, enough for one hour of minute-to-minute changes. Everything here is
pure: times are arguments.

Memory: at venue scale every token's hour of fills is held at once, so a fill is kept as one
slot in parallel typed arrays (about 41 bytes) rather than as a tuple of boxed floats plus its
key in a set (about 300 bytes), and a token whose window empties gives its arrays back.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from typing import NamedTuple

WINDOW_S = 3600.0
RING = 64  # minutes kept; more than the 61 samples an hour of minute changes needs
_COMPACT_AFTER = 256  # dropped slots tolerated at the front before the arrays are shifted


class TradeTick(NamedTuple):
    ts: float  # exchange time, epoch seconds
    price: float
    size: float  # shares
    notional: float  # USDC
    is_buy: bool  # taker side
    whale_tier: int  # 0 below the first whale threshold


class KnownFills(NamedTuple):
    trades: list[TradeTick]  # the hour up to the as-of time, oldest first
    last_trade_s: float | None
    last_trade_price: float | None
    last_whale_s: float | None


def key_fingerprint(key: bytes) -> int:
    """64 bits of a trade key. Keys are BLAKE2b digests, so any 8 of their bytes are uniform;
    two different fills of one token in the same second share a fingerprint with odds of
    about 2^-64, and the cost would be one fill missing from an hour's features."""
    return int.from_bytes(key[:8], "big")


class FillWindow:
    """One token's fills, oldest first, in parallel arrays; slots before ``_start`` have left
    the window and are shifted out in bulk."""

    __slots__ = ("_flags", "_keys", "_notional", "_price", "_size", "_start", "_ts")

    def __init__(self) -> None:
        self._ts: array[float] = array("d")
        self._price: array[float] = array("d")
        self._size: array[float] = array("d")
        self._notional: array[float] = array("d")
        self._flags: array[int] = array("B")  # bit 0: taker bought; bits 1+: whale tier
        self._keys: array[int] = array("Q")
        self._start = 0

    def __len__(self) -> int:
        return len(self._ts) - self._start

    def holds(self, ts_s: float, fingerprint: int) -> bool:
        """Whether this fill is in the window. A trade key names the fill's second, so the
        same fill from either feed lies in that second; only those slots are compared."""
        second = math.floor(ts_s)
        lo = bisect_left(self._ts, second, self._start)
        hi = bisect_left(self._ts, second + 1, lo)
        return fingerprint in self._keys[lo:hi]

    def add(self, tick: TradeTick, fingerprint: int) -> None:
        """Keep the fill in time order (a repaired fill may be older than the newest)."""
        ts = self._ts
        at = len(ts) if not ts or tick.ts >= ts[-1] else bisect_right(ts, tick.ts, self._start)
        ts.insert(at, tick.ts)
        self._price.insert(at, tick.price)
        self._size.insert(at, tick.size)
        self._notional.insert(at, tick.notional)
        self._flags.insert(at, int(tick.is_buy) | tick.whale_tier << 1)
        self._keys.insert(at, fingerprint)

    def drop_before(self, oldest_s: float) -> None:
        self._start = bisect_left(self._ts, oldest_s, self._start)
        if self._start >= _COMPACT_AFTER and 2 * self._start >= len(self._ts):
            for column in (self._ts, self._price, self._size, self._notional):
                del column[: self._start]
            for flags_or_keys in (self._flags, self._keys):
                del flags_or_keys[: self._start]
            self._start = 0

    def up_to(self, now_s: float) -> list[TradeTick]:
        """The fills at or before ``now_s``, as ticks for the feature maths."""
        end = bisect_right(self._ts, now_s, self._start)
        ts, price, size, notional, flags = (
            self._ts,
            self._price,
            self._size,
            self._notional,
            self._flags,
        )
        return [
            TradeTick(ts[i], price[i], size[i], notional[i], bool(flags[i] & 1), flags[i] >> 1)
            for i in range(self._start, end)
        ]


class TokenActivity:
    """One token's recent fills and minute prices."""

    __slots__ = (
        "_fills",
        "_minute",
        "_minute_price",
        "_ring",
        "last_trade_price",
        "last_trade_s",
        "last_whale_s",
    )

    def __init__(self) -> None:
        self._fills: FillWindow | None = None  # allocated on a fill, released when empty
        self._minute = -1
        self._minute_price = math.nan
        # (minute, price) pairs, flat: one object per token instead of two.
        self._ring: array[float] = array("d", [-1.0, math.nan]) * RING
        self.last_trade_price: float | None = None
        self.last_trade_s: float | None = None
        self.last_whale_s: float | None = None

    # -- fills ----------------------------------------------------------------------------------

    def add_trade(self, tick: TradeTick, key: bytes, min_whale_tier: int) -> bool:
        """Remember a fill; False when this fill (by key) is already in the window."""
        fingerprint = key_fingerprint(key)
        if self._fills is None:
            self._fills = FillWindow()
        elif self._fills.holds(tick.ts, fingerprint):
            return False
        self._fills.add(tick, fingerprint)
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
        fills = self._fills
        if fills is None:
            return []
        fills.drop_before(now_s - WINDOW_S)
        if not fills:
            self._fills = None
            return []
        return fills.up_to(now_s)

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
