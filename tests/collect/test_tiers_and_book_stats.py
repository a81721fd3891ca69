from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from polyfarm.markets.book_stats import book_stats, find_wall, imbalance, microprice
from polyfarm.markets.tiers import aligned, cadence_s, hours_to_close, tier_for
from polyfarm.settings import TierSettings

NOW = datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)
TIERS = TierSettings()


@pytest.mark.parametrize(
    ("hours", "tier"),
    [
        (500, 0),
        (48.01, 0),
        (48, 1),
        (12.5, 1),
        (12, 2),
        (5, 2),
        (4, 3),
        (1.5, 3),
        (1, 4),
        (0.1, 4),
        (-3, 4),
    ],
)
def test_tier_by_hours_to_close(hours: float, tier: int) -> None:
    assert tier_for(NOW + timedelta(hours=hours), False, NOW, TIERS) == tier


def test_closed_and_undated_markets() -> None:
    assert tier_for(NOW + timedelta(hours=2), True, NOW, TIERS) is None
    assert tier_for(None, False, NOW, TIERS) == 0
    assert hours_to_close(None, NOW) is None
    assert hours_to_close(NOW + timedelta(minutes=90), NOW) == 1.5


def test_tier_moves_as_time_passes() -> None:
    end = NOW + timedelta(hours=50)
    seen = [tier_for(end, False, NOW + timedelta(hours=h), TIERS) for h in (0, 3, 39, 47, 49.5)]
    assert seen == [0, 1, 2, 3, 4]


def test_cadence_and_alignment() -> None:
    assert [cadence_s(t, TIERS) for t in range(5)] == [3600, 300, 60, 30, 15]
    assert aligned(NOW, 60) == datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert aligned(NOW, 15) == datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)
    assert aligned(NOW + timedelta(seconds=14), 15) == aligned(NOW, 15)


BIDS = [(0.50, 100.0), (0.49, 200.0), (0.48, 50.0), (0.47, 1000.0), (0.46, 50.0), (0.45, 10.0)]
ASKS = [(0.52, 300.0), (0.53, 100.0)]


def test_book_stats_by_hand() -> None:
    stats = book_stats(BIDS, ASKS, wall_multiple=2.5)
    assert stats.best_bid == 0.50
    assert stats.best_ask == 0.52
    assert stats.spread == pytest.approx(0.02)
    assert stats.midpoint == pytest.approx(0.51)
    assert stats.bid_depth == (1400.0, 1410.0, 1410.0, 1410.0)
    assert stats.ask_depth == (400.0, 400.0, 400.0, 400.0)
    assert stats.bid_depth_usd == pytest.approx(
        0.5 * 100 + 0.49 * 200 + 0.48 * 50 + 0.47 * 1000 + 0.46 * 50 + 0.45 * 10
    )
    assert stats.imbalance == pytest.approx((1410 - 400) / 1810)
    # mean of the six bid sizes is 235; 1000 >= 2.5 x 235
    assert stats.bid_wall is not None
    assert (stats.bid_wall.price, stats.bid_wall.size) == (0.47, 1000.0)
    assert stats.ask_wall is None
    # microprice: (0.50 * 300 + 0.52 * 100) / 400
    assert stats.microprice == pytest.approx(0.505)


def test_empty_and_one_sided_books() -> None:
    stats = book_stats([], [], wall_multiple=5)
    assert (stats.best_bid, stats.spread, stats.midpoint, stats.imbalance) == (None,) * 4
    assert stats.bid_depth == (0.0, 0.0, 0.0, 0.0)
    one_sided = book_stats(BIDS, [], wall_multiple=5)
    assert one_sided.spread is None
    assert one_sided.imbalance == 1.0
    assert microprice(BIDS, []) is None
    assert imbalance([], [], 10) is None
    assert find_wall([(0.5, 10.0)], 2) is None
