"""Price history from either of the venue's two routes, falling back from one to the other.

The Data API's ``/v2/prices-history`` is the newer route (reportedly meant to replace the
CLOB's); the CLOB's ``/prices-history`` still answered in 2026 (docs/polymarket-wire.md §3.3,
§11). ``PriceHistory`` asks the preferred route first and the other when the first fails (gone,
refusing, answering garbage) or has no points: a miss on one route is not proof that the other
has nothing, and an empty answer costs one more request at most.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from polyfarm.errors import SourceError
from polyfarm.logs import get_logger
from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.data_api import DataApiClient
from polyfarm.polymarket.domain import PricePoint

log = get_logger(__name__)

MINUTE_S = 60


class HistoryRoute(enum.Enum):
    DATA_API = "data_api"
    CLOB = "clob"

    @property
    def other(self) -> HistoryRoute:
        return HistoryRoute.CLOB if self is HistoryRoute.DATA_API else HistoryRoute.DATA_API


@dataclass(frozen=True)
class HistorySeries:
    """The points, the route that served them, and why the preferred one did not (if so)."""

    points: list[PricePoint]
    route: HistoryRoute
    fallback_reason: str | None = None


class PriceHistory:
    """``await PriceHistory(clob, data).between(token, start, end)``."""

    def __init__(
        self,
        clob: ClobClient,
        data: DataApiClient,
        *,
        prefer: HistoryRoute = HistoryRoute.DATA_API,
    ) -> None:
        self._clob = clob
        self._data = data
        self.prefer = prefer

    async def between(
        self, token_id: str, start: datetime, end: datetime, *, bucket_s: int = MINUTE_S
    ) -> HistorySeries:
        """Buckets of ``bucket_s`` seconds (a whole number of minutes, which the CLOB route
        needs) from ``start`` up to but excluding ``end``, whichever route answers."""
        if bucket_s < MINUTE_S or bucket_s % MINUTE_S:
            raise ValueError("bucket_s must be a positive whole number of minutes")
        first = self.prefer
        try:
            points = await self._fetch(first, token_id, start, end, bucket_s)
        except SourceError as exc:
            reason = f"{first.value} failed: {exc!r}"
            log.warning("price history falls back", token=token_id, why=reason)
            fallback = await self._fetch(first.other, token_id, start, end, bucket_s)
            return HistorySeries(fallback, first.other, reason)
        if points:
            return HistorySeries(points, first)
        reason = f"{first.value} had no points"
        try:
            fallback = await self._fetch(first.other, token_id, start, end, bucket_s)
        except SourceError as exc:  # the empty answer stands
            log.warning("price history fallback failed", token=token_id, error=repr(exc))
            return HistorySeries(points, first)
        return (
            HistorySeries(fallback, first.other, reason)
            if fallback
            else HistorySeries(points, first)
        )

    async def _fetch(
        self, route: HistoryRoute, token_id: str, start: datetime, end: datetime, bucket_s: int
    ) -> list[PricePoint]:
        if route is HistoryRoute.DATA_API:
            return await self._data.get_prices_history(
                token_id, start=start, end=end, bucket_seconds=bucket_s
            )
        points = await self._clob.get_prices_history(
            token_id, start=start, end=end, fidelity=bucket_s // MINUTE_S
        )
        # The CLOB's endTs is inclusive, the Data API's end exclusive: without this, a window
        # ending on a bucket boundary has one more point when the CLOB serves it.
        return [p for p in points if p.t < end]
