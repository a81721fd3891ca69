"""The catalogue forgets markets long closed, so that it does not grow with every market the
venue ever listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from polyfarm.markets.catalog import CLOSED_KEPT, MarketCatalog
from polyfarm.polymarket.domain import MarketInfo, TokenInfo
from polyfarm.settings import TierSettings

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def market(n: int, *, closed: bool = False, end: datetime | None = None) -> MarketInfo:
    tokens = tuple(
        TokenInfo(index=i, outcome=o, token_id=str(10**76 + 2 * n + i), price=None)
        for i, o in enumerate(("Yes", "No"))
    )
    return MarketInfo(
        market_id=str(n), condition_id=f"0x{n:064x}", question="?", tokens=tokens,
        closed=closed, end_date=end or T0,
    )  # fmt: skip


def test_a_closed_market_is_kept_a_day_then_forgotten_with_its_tokens() -> None:
    catalog = MarketCatalog(TierSettings())
    catalog.apply_scan([market(1), market(2)], T0, complete=True)
    catalog.mark_closed(["1"], T0 + timedelta(hours=1))

    catalog.apply_scan([market(2)], T0 + timedelta(hours=1) + CLOSED_KEPT / 2, complete=True)
    assert set(catalog.markets) == {"1", "2"}
    assert catalog.market_of(str(10**76 + 2)) is not None

    catalog.apply_scan([market(2)], T0 + timedelta(hours=1) + CLOSED_KEPT, complete=True)
    assert set(catalog.markets) == {"2"}
    assert catalog.market_of(str(10**76 + 2)) is None
    assert catalog.market_of(str(10**76 + 4)) is not None
    assert catalog.closed_seen == {}


def test_a_market_closed_before_its_end_date_is_kept_until_that_date_is_a_day_behind() -> None:
    catalog = MarketCatalog(TierSettings())
    later = T0 + timedelta(days=5)
    catalog.apply_scan([market(1, closed=True, end=later)], T0, complete=True)
    assert catalog.forget_long_closed(T0 + 2 * CLOSED_KEPT) == []
    assert catalog.forget_long_closed(later + CLOSED_KEPT) == ["1"]


def test_open_markets_are_never_forgotten() -> None:
    catalog = MarketCatalog(TierSettings())
    catalog.apply_scan([market(1, end=T0 - timedelta(days=30))], T0, complete=True)
    assert catalog.forget_long_closed(T0 + timedelta(days=365)) == []
    assert set(catalog.markets) == {"1"}


def test_a_week_of_listings_and_closings_leaves_the_catalogue_its_open_markets_and_a_day() -> None:
    """Ten new markets every 5-minute scan, each closed two hours after its listing: the
    catalogue holds the open ones and those closed within a day, not the week's 20,160."""
    catalog = MarketCatalog(TierSettings())
    open_now: list[int] = []
    listed = 0
    for scan in range(7 * 288):
        now = T0 + scan * timedelta(minutes=5)
        new = list(range(listed, listed + 10))
        listed += 10
        open_now += new
        closing = [n for n in open_now if n < listed - 240]  # listed 24 scans (2 h) ago
        open_now = [n for n in open_now if n >= listed - 240]
        catalog.apply_scan([market(n) for n in open_now], now, complete=True)
        catalog.mark_closed([str(n) for n in closing], now)
    assert listed == 20_160
    kept_closed = len(catalog.markets) - len(open_now)
    assert len(open_now) == 240
    assert 0 < kept_closed <= 10 * (CLOSED_KEPT // timedelta(minutes=5)) + 10
    assert len(catalog.token_market) == 2 * len(catalog.markets)
