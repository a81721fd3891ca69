"""Shared helpers: a real local aiohttp server, a fake clock, and a recording sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from polyfarm.polymarket.http import RestClient, RetryPolicy
from polyfarm.polymarket.ratelimit import RateLimiter, Service
from polyfarm.settings import RateLimitSettings


class FakeClock:
    """Monotonic clock whose ``sleep`` advances time instantly and records each delay."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1, an OS-chosen port; yields the base URL without a slash."""
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def make_rest(
    base_url: str,
    service: Service,
    *,
    retry_sleep: FakeClock,
    timeout_s: float = 5.0,
    max_retries: int = 3,
    policy: RetryPolicy | None = None,
    now: Callable[[], datetime] | None = None,
) -> RestClient:
    """A RestClient whose throttle and backoff never really wait (jitter fixed at 0.5)."""
    settings = RateLimitSettings(request_timeout_s=timeout_s, max_retries=max_retries)
    limiter_clock = FakeClock()
    return RestClient(
        base_url,
        service,
        settings=settings,
        limiter=RateLimiter(0.7, clock=limiter_clock, sleep=limiter_clock.sleep),
        policy=policy,
        sleep=retry_sleep.sleep,
        jitter=lambda: 0.5,
        now=now or (lambda: datetime.now(UTC)),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
