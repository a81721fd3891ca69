"""The fetcher reads the venue's answers as columns: the same points, in the same order, as the
clients' ``PricePoint`` lists the backfill stored before (the simulator's real servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from polyfarm.backfill.fetch import HistoryFetcher
from polyfarm.backfill.plan import MINUTE_S, Attempt, Route, Span
from polyfarm.polymarket.domain import PricePoint
from polyfarm.polymarket.price_series import PriceSeries
from polyfarm.sim import SimConfig, Simulator
from tests.backfill.support import FIXED_START, Venue, simulated_days, venue

DAY = 86_400


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """Ten days, some markets resolved (their series end, the Data API's with a terminal
    tick); the CLOB keeps eight days of history here."""
    config = SimConfig(
        markets=4, seed=5, speed=0.0, rate_limits=False, start_time=FIXED_START,
        trade_rate=0.0, new_markets_per_hour=0.0, resolution_delay_s=(600.0, 1200.0),
        clob_history_max_age_s=8 * DAY,
    )  # fmt: skip
    async with simulated_days(config, 10) as simulator:
        yield simulator


async def points_as_before(
    clients: Venue, attempt: Attempt, token: str, span: Span
) -> list[PricePoint]:
    """What ``HistoryFetcher.points`` returned before it read columns."""
    start, end = (datetime.fromtimestamp(s, UTC) for s in span)
    if attempt.route is Route.DATA_API:
        got = await clients.data.get_prices_history(
            token, start=start, end=end, bucket_seconds=attempt.bucket_s
        )
    else:
        got = await clients.clob.get_prices_history(
            token, start=start, end=end, fidelity=attempt.bucket_s // MINUTE_S
        )
    return [p for p in got if start <= p.t < end and p.resolution_s != 0]


async def test_the_fetcher_s_columns_are_the_points_it_stored_before(sim: Simulator) -> None:
    now = int(sim.clock.now()) // MINUTE_S * MINUTE_S
    spans = [(now - 9 * DAY, now), (now - 2 * DAY - 1_234, now - 7), (now - 3_600, now + 600)]
    async with venue(sim) as clients:
        fetcher = HistoryFetcher(clients.clob, clients.data)
        tokens = [t for m in sim.world.markets[:3] for t in (m.yes_token, m.no_token)]
        compared = 0
        for token in tokens:
            for route in Route:
                for grain in (60, 300, 10_800):
                    for span in spans:
                        attempt = Attempt(route, grain)
                        got = await fetcher.points(attempt, token, span)
                        want = PriceSeries.from_points(
                            await points_as_before(clients, attempt, token, span)
                        )
                        assert got.ts_us.tolist() == want.ts_us.tolist()
                        assert got.price.tolist() == want.price.tolist()
                        assert got.resolution_s.tolist() == want.resolution_s.tolist()
                        compared += len(want)
    assert compared > 100_000
