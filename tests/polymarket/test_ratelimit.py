"""Token buckets under an injected clock: limits hold in every 10-second window."""

from __future__ import annotations

import asyncio

import pytest

from polyfarm.polymarket.ratelimit import DOCUMENTED_LIMITS, RateLimiter, TokenBucket, families_for
from tests.polymarket.conftest import FakeClock


@pytest.mark.parametrize(
    ("service", "path", "expected"),
    [
        ("gamma", "/markets/keyset", ("gamma_markets", "gamma_listing", "gamma_general")),
        ("gamma", "/markets/123", ("gamma_markets", "gamma_listing", "gamma_general")),
        ("gamma", "/events/keyset", ("gamma_events", "gamma_listing", "gamma_general")),
        ("gamma", "/series", ("gamma_general",)),
        ("clob", "/book", ("clob_book", "clob_general")),
        ("clob", "/books", ("clob_books", "clob_general")),
        ("clob", "/price", ("clob_price", "clob_general")),
        ("clob", "/prices", ("clob_prices", "clob_general")),
        ("clob", "/midpoints", ("clob_midpoints", "clob_general")),
        ("clob", "/prices-history", ("clob_prices_history", "clob_general")),
        ("clob", "/tick-size?token_id=1", ("clob_tick_size", "clob_general")),
        ("clob", "/spreads", ("clob_general",)),
        ("clob", "/markets", ("clob_general",)),
        ("data", "/trades", ("data_trades", "data_general")),
        ("data", "/v2/trades", ("data_trades", "data_general")),
        ("data", "/", ("data_general",)),
    ],
)
def test_families_for(service: str, path: str, expected: tuple[str, ...]) -> None:
    assert families_for(service, path) == expected  # type: ignore[arg-type]


def test_every_family_has_a_documented_limit() -> None:
    for service, path in [("gamma", "/markets"), ("clob", "/tick-size"), ("data", "/positions")]:
        assert all(f in DOCUMENTED_LIMITS for f in families_for(service, path))  # type: ignore[arg-type]


async def acquire_times(bucket: TokenBucket, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        await bucket.acquire()
        times.append(clock.now)
    return times


@pytest.mark.parametrize(("limit", "fraction"), [(200, 0.7), (1500, 0.7), (500, 0.5), (100, 1.0)])
async def test_no_window_exceeds_the_documented_limit(limit: int, fraction: float) -> None:
    clock = FakeClock()
    bucket = TokenBucket(limit, fraction, clock=clock, sleep=clock.sleep)
    times = await acquire_times(bucket, clock, limit * 4)
    for i, start in enumerate(times):
        in_window = sum(1 for t in times[i:] if t < start + 10.0)
        assert in_window <= limit
    # Sustained throughput converges on fraction × limit per 10 s.
    span = times[-1] - times[0]
    assert len(times) / span * 10 == pytest.approx(fraction * limit, rel=0.35)


async def test_bucket_starts_with_a_burst_then_paces() -> None:
    clock = FakeClock()
    bucket = TokenBucket(200, 0.7, clock=clock, sleep=clock.sleep)
    assert bucket.capacity == pytest.approx(60)
    assert bucket.rate == pytest.approx(14)
    times = await acquire_times(bucket, clock, 62)
    assert times[59] == 1_000.0
    assert clock.sleeps
    assert times[60] - 1_000.0 == pytest.approx(1 / 14)
    assert times[61] - times[60] == pytest.approx(1 / 14)


async def test_limiter_takes_family_and_global_tokens() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        0.5,
        limits={"global": 40, "clob_book": 10, "clob_general": 1000},
        clock=clock,
        sleep=clock.sleep,
    )
    for _ in range(5):  # family burst: (1 - 0.5) × 10
        assert await limiter.acquire(("clob_book", "clob_general")) == 0
    assert await limiter.acquire(("clob_book", "clob_general")) > 0  # family exhausted
    clock.now += 1_000
    for _ in range(20):  # global burst: 0.5 × 40
        await limiter.acquire(("clob_general",))
    waited = await limiter.acquire(("clob_general",))
    assert waited == pytest.approx(1 / 2)  # global refills at 0.5 × 40 / 10 s = 2 per s


async def test_concurrent_waiters_are_all_served() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 0.5, clock=clock, sleep=clock.sleep)
    await asyncio.gather(*(bucket.acquire() for _ in range(20)))
    assert clock.now - 1_000.0 == pytest.approx((20 - 5) / 0.5)


def test_bucket_validates_arguments() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="fraction"):
        TokenBucket(10, 0, clock=clock, sleep=clock.sleep)
