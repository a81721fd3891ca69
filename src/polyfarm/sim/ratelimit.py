"""Token buckets per the documented per-10-second limits (reference §5).

A request draws one token from every bucket that covers it; when any is empty the request is
answered 429 with a ``Retry-After`` of the time until a token is back. Buckets refill in real
(monotonic) time; the scale comes from the fault controller (0 disables limiting).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

WINDOW_S = 10.0
LIMITS: dict[str, int] = {
    "global": 15_000,
    "gamma": 4_000,
    "gamma_events": 500,
    "gamma_markets": 300,
    "gamma_listing": 900,
    "data": 1_000,
    "data_trades": 200,
    "clob": 9_000,
    "clob_book": 1_500,
    "clob_price": 1_500,
    "clob_midpoint": 1_500,
    "clob_books": 500,
    "clob_prices": 500,
    "clob_midpoints": 500,
    "clob_prices_history": 1_000,
    "clob_tick_size": 200,
}
CLOB_PATHS = {
    "/book": "clob_book", "/price": "clob_price", "/midpoint": "clob_midpoint",
    "/books": "clob_books", "/prices": "clob_prices", "/midpoints": "clob_midpoints",
    "/prices-history": "clob_prices_history", "/batch-prices-history": "clob_prices_history",
    "/tick-size": "clob_tick_size",
}  # fmt: skip
LISTINGS = {"/markets", "/markets/keyset", "/events", "/events/keyset"}


def _gamma_buckets(path: str) -> list[str]:
    names = ["gamma"]
    if path.startswith("/markets"):
        names.append("gamma_markets")
    elif path.startswith("/events"):
        names.append("gamma_events")
    if path in LISTINGS:
        names.append("gamma_listing")
    return names


def buckets_for(api: str, path: str) -> tuple[str, ...]:
    """Buckets covering a request to ``path`` (relative to the API's base)."""
    names = ["global"]
    if api == "gamma":
        names += _gamma_buckets(path)
    elif api == "data":
        names.append("data")
        if path in ("/trades", "/v2/trades"):
            names.append("data_trades")
    elif api == "clob":
        names.append("clob")
        if path in CLOB_PATHS:
            names.append(CLOB_PATHS[path])
    return tuple(names)


class RateLimiter:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._scale = -1.0
        self._tokens: dict[str, float] = {}
        self._stamp: dict[str, float] = {}

    def _rescale(self, scale: float) -> None:
        now = self._monotonic()
        self._scale = scale
        self._tokens = {name: limit * scale for name, limit in LIMITS.items()}
        self._stamp = dict.fromkeys(LIMITS, now)

    def _level(self, name: str, now: float) -> float:
        capacity = LIMITS[name] * self._scale
        refill = (now - self._stamp[name]) * capacity / WINDOW_S
        self._stamp[name] = now
        self._tokens[name] = min(capacity, self._tokens[name] + refill)
        return self._tokens[name]

    def check(self, names: tuple[str, ...], scale: float) -> float | None:
        """None when allowed (tokens taken), else the seconds until a retry can succeed."""
        if scale <= 0:
            return None
        if scale != self._scale:
            self._rescale(scale)
        now = self._monotonic()
        levels = {name: self._level(name, now) for name in names}
        short = [name for name, level in levels.items() if level < 1.0]
        if short:
            waits = [(1.0 - levels[n]) * WINDOW_S / (LIMITS[n] * scale) for n in short]
            return max(1.0, math.ceil(max(waits)))
        for name in names:
            self._tokens[name] -= 1.0
        return None
