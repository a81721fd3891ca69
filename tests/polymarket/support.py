"""Helpers for tests that drive the REST clients against a server (the simulator's or a stub)."""

from __future__ import annotations

import asyncio

from polyfarm.polymarket.http import RestClient
from polyfarm.polymarket.ratelimit import RateLimiter, Service
from polyfarm.settings import RateLimitSettings


class RecordingSleep:
    """Backoff sleeps are recorded, not waited: fault tests stay fast and deterministic."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def rest(url: str, service: Service, sleep: RecordingSleep, timeout_s: float = 5.0) -> RestClient:
    settings = RateLimitSettings(request_timeout_s=timeout_s, max_retries=10)
    return RestClient(url, service, settings=settings, limiter=RateLimiter(0.7), sleep=sleep)
