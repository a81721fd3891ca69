"""A token's price history over a span, as fine as the venue still serves it.

``HistoryFetcher.fill`` walks the ladder of ``polyfarm.backfill.plan``: it asks for the whole
span at the finest grain, then only for the holes left, at the other route and then at coarser
grains, until nothing is missing or the ladder ends. A route that fails (gone, refusing,
answering garbage) is one failed attempt, not the end: the next one is tried, and the failure
is reported with the holes it leaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from polyfarm.backfill.plan import (
    GRAINS_S,
    MINUTE_S,
    Attempt,
    Route,
    Span,
    floor_to,
    holes_on_grid,
    ladder,
    merge,
    worth_asking,
)
from polyfarm.errors import SourceError
from polyfarm.logs import get_logger
from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.data_api import DataApiClient
from polyfarm.polymarket.price_series import US_PER_S, PriceSeries
from polyfarm.store.history_writes import HistoryBatch, HistoryRouteCode

log = get_logger(__name__)

ROUTE_CODES = {Route.DATA_API: HistoryRouteCode.DATA_API, Route.CLOB: HistoryRouteCode.CLOB}
ROUTE_NAMES = {code: route.value for route, code in ROUTE_CODES.items()}


@dataclass
class Filled:
    """What the venue served for one token's span: one batch of points per answer that had
    any, in the order they came."""

    batches: list[HistoryBatch] = field(default_factory=list)
    missing: list[Span] = field(default_factory=list)  # whole minutes nothing covers
    attempts: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(len(batch) for batch in self.batches)

    @property
    def finest_s(self) -> int | None:
        return min((batch.fidelity_s for batch in self.batches), default=None)

    @property
    def routes(self) -> str | None:
        names = sorted({ROUTE_NAMES[batch.route] for batch in self.batches})
        return ",".join(names) or None


class HistoryFetcher:
    """``await HistoryFetcher(clob, data).fill(token, market, span, now_s, prefer)``."""

    def __init__(self, clob: ClobClient, data: DataApiClient) -> None:
        self._clob = clob
        self._data = data

    @property
    def clients(self) -> tuple[ClobClient, DataApiClient]:
        return self._clob, self._data

    async def fill(
        self,
        token_id: str,
        market_id: str,
        span: Span,
        now_s: int,
        prefer: Route,
        grains: Sequence[int] = GRAINS_S,
    ) -> Filled:
        filled = Filled()
        todo = [span]
        for attempt in ladder(prefer, grains):
            todo = await self._attempt(attempt, token_id, market_id, todo, now_s, filled)
            if not todo:
                break
        filled.missing = merge(todo)
        return filled

    async def _attempt(
        self,
        attempt: Attempt,
        token_id: str,
        market_id: str,
        todo: list[Span],
        now_s: int,
        filled: Filled,
    ) -> list[Span]:
        left: list[Span] = []
        for hole in todo:
            if not worth_asking(attempt, hole, now_s):
                left.append(hole)
                continue
            filled.attempts += 1
            points = await self._ask(attempt, token_id, hole, filled)
            if points is None:
                left.append(hole)
                continue
            if len(points):
                filled.batches.append(
                    HistoryBatch(
                        token_id, market_id, attempt.bucket_s, ROUTE_CODES[attempt.route],
                        points.ts_us, points.price,
                    )
                )  # fmt: skip
            left.extend(holes_on_grid(hole, points.seconds(), attempt.bucket_s))
        return left

    async def _ask(
        self, attempt: Attempt, token_id: str, hole: Span, filled: Filled
    ) -> PriceSeries | None:
        """The points for ``hole``, from the start of the bucket it begins in (that bucket
        covers it too); None when the route failed (the failure is noted)."""
        asked = (floor_to(hole[0], attempt.bucket_s), hole[1])
        try:
            return await self.points(attempt, token_id, asked)
        except SourceError as exc:
            filled.failures.append(f"{attempt.route.value} at {attempt.bucket_s}s: {exc}")
            log.debug("history attempt failed", token=token_id, error=repr(exc))
            return None

    async def points(self, attempt: Attempt, token_id: str, span: Span) -> PriceSeries:
        """The bucket points of ``span`` at the attempt's grain, in time order. The Data API's
        terminal tick (``resolution_s`` 0, between buckets) is not a bucket and is left out;
        the CLOB's end is inclusive, so its point at the span's end is too."""
        start = datetime.fromtimestamp(span[0], UTC)
        end = datetime.fromtimestamp(span[1], UTC)
        if attempt.route is Route.DATA_API:
            got = await self._data.get_price_series(
                token_id, start=start, end=end, bucket_seconds=attempt.bucket_s
            )
        else:
            got = await self._clob.get_price_series(
                token_id, start=start, end=end, fidelity=attempt.bucket_s // MINUTE_S
            )
        return got.buckets_between(span[0] * US_PER_S, span[1] * US_PER_S)
