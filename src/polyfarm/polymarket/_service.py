"""What every REST client shares: one ``RestClient``, its lifecycle, construction from settings."""

from __future__ import annotations

from typing import ClassVar, Self

import aiohttp

from polyfarm.aio import AsyncResource
from polyfarm.polymarket.http import RestClient
from polyfarm.polymarket.ratelimit import RateLimiter, Service
from polyfarm.settings import Settings


class RestService(AsyncResource):
    """Base of the Gamma, CLOB and Data API clients; ``async with`` opens and closes it."""

    service: ClassVar[Service]  # names the URL setting ("<service>_url") and the rate buckets

    def __init__(self, rest: RestClient) -> None:
        self.rest = rest

    @classmethod
    def rest_from_settings(
        cls,
        settings: Settings,
        limiter: RateLimiter | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> RestClient:
        """Share one ``limiter`` between all clients so the global budget is global."""
        base_url: str = getattr(settings, f"{cls.service}_url")
        return RestClient(
            base_url, cls.service, settings=settings.rate_limits, limiter=limiter, session=session
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        limiter: RateLimiter | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> Self:
        return cls(cls.rest_from_settings(settings, limiter, session))

    async def open(self) -> None:
        await self.rest.open()

    async def close(self) -> None:
        await self.rest.close()
