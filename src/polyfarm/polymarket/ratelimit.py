"""Client-side throttling below Polymarket's documented per-10-second limits (reference §5).

Each endpoint family has an async token bucket; a request takes one token from each bucket of
its route (narrowest first) and then from the global one. Cloudflare throttles rather than
rejects, so staying under the limits is about not being queued behind our own bursts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Literal

from polyfarm.settings import RateLimitSettings

Service = Literal["gamma", "clob", "data"]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

GLOBAL = "global"
WINDOW_S = 10.0
_EPSILON = 1e-9

#: Documented requests per 10 s (docs api-reference/rate-limits), by family name.
DOCUMENTED_LIMITS: Mapping[str, int] = MappingProxyType(
    {
        GLOBAL: 15_000,
        "gamma_general": 4_000,
        "gamma_events": 500,
        "gamma_markets": 300,
        "gamma_listing": 900,  # /markets + /events combined
        "gamma_comments": 200,
        "gamma_tags": 200,
        "gamma_search": 350,
        "data_general": 1_000,
        "data_trades": 200,
        "data_positions": 150,
        "data_closed_positions": 150,
        "clob_general": 9_000,
        "clob_book": 1_500,
        "clob_price": 1_500,
        "clob_midpoint": 1_500,
        "clob_books": 500,
        "clob_prices": 500,
        "clob_midpoints": 500,
        "clob_prices_history": 1_000,
        "clob_tick_size": 200,
    }
)

# First path segment → specific families, per service; the service's general family and the
# global bucket always apply on top.
_ROUTES: Mapping[Service, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "gamma": MappingProxyType(
            {
                "markets": ("gamma_markets", "gamma_listing"),
                "events": ("gamma_events", "gamma_listing"),
                "comments": ("gamma_comments",),
                "tags": ("gamma_tags",),
                "public-search": ("gamma_search",),
            }
        ),
        "data": MappingProxyType(
            {
                "trades": ("data_trades",),
                "positions": ("data_positions",),
                "closed-positions": ("data_closed_positions",),
            }
        ),
        "clob": MappingProxyType(
            {
                "book": ("clob_book",),
                "books": ("clob_books",),
                "price": ("clob_price",),
                "prices": ("clob_prices",),
                "midpoint": ("clob_midpoint",),
                "midpoints": ("clob_midpoints",),
                "prices-history": ("clob_prices_history",),
                "batch-prices-history": ("clob_prices_history",),
                "tick-size": ("clob_tick_size",),
            }
        ),
    }
)


def families_for(service: Service, path: str) -> tuple[str, ...]:
    """Buckets a request must pass, narrowest first (the global bucket is added by the limiter).

    >>> families_for("gamma", "/markets/keyset")
    ('gamma_markets', 'gamma_listing', 'gamma_general')
    """
    segments = [part for part in path.split("?", 1)[0].split("/") if part]
    if service == "data" and segments[:1] == ["v2"]:
        segments = segments[1:]  # /v2/trades shares the /trades budget
    specific = _ROUTES[service].get(segments[0], ()) if segments else ()
    return (*specific, f"{service}_general")


class TokenBucket:
    """Async token bucket whose worst 10-second window never exceeds the documented limit.

    Sustained rate is ``fraction × limit / 10 s``; the burst allowance is ``(1 − fraction) ×
    limit`` (at least one token, at most the sustained share), so burst plus ten seconds of
    refill stays within the limit.
    Waiters are served in arrival order.
    """

    def __init__(
        self, limit_per_window: float, fraction: float, *, clock: Clock, sleep: Sleep
    ) -> None:
        if limit_per_window <= 0 or not 0 < fraction <= 1:
            raise ValueError("limit must be positive and fraction in (0, 1]")
        self.capacity = max(1.0, min(fraction, 1.0 - fraction) * limit_per_window)
        sustained = fraction * limit_per_window
        if limit_per_window > self.capacity:  # keep burst + refill within one window's limit
            sustained = min(sustained, limit_per_window - self.capacity)
        self.rate = sustained / WINDOW_S
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                self._refill()
                # The epsilon stops float rounding (0.999…) from spinning on ever tinier sleeps.
                if self._tokens >= 1.0 - _EPSILON:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return waited
                delay = (1.0 - self._tokens) / self.rate
                await self._sleep(delay)
                waited += delay


class RateLimiter:
    """All buckets of one process; share a single instance between the REST clients."""

    def __init__(
        self,
        fraction: float = 0.7,
        *,
        limits: Mapping[str, int] = DOCUMENTED_LIMITS,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.fraction = fraction
        self._buckets = {
            name: TokenBucket(limit, fraction, clock=clock, sleep=sleep)
            for name, limit in limits.items()
        }

    @classmethod
    def from_settings(cls, settings: RateLimitSettings) -> RateLimiter:
        return cls(settings.fraction)

    def bucket(self, family: str) -> TokenBucket:
        return self._buckets[family]

    async def acquire(self, families: Sequence[str]) -> float:
        """Pass every named bucket, then the global one; returns the total seconds waited."""
        waited = 0.0
        for family in (*families, GLOBAL):
            bucket = self._buckets.get(family)
            if bucket is not None:
                waited += await bucket.acquire()
        return waited
