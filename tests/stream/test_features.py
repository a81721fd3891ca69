"""Feature maths on hand-computed cases (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from polyfarm.markets.book_stats import book_stats
from polyfarm.markets.tracked import TrackedMarket
from polyfarm.polymarket.domain import MarketInfo, TokenInfo
from polyfarm.store.rejection import RejectionKind
from polyfarm.store.rows import FEATURE_COLUMNS, FeatureRow, feature_problem
from polyfarm.stream.features import (
    FeatureInputs,
    calendar,
    feature_values,
    price_changes,
    price_range,
    realized_vol,
    trade_flow,
    whale_flow,
)
from polyfarm.stream.rolling import TokenActivity, TradeTick

NOW = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)  # a Wednesday


def tick(ts: float, price: float, size: float, buy: bool, tier: int = 0) -> TradeTick:
    return TradeTick(ts, price, size, price * size, buy, tier)


def key_of(t: TradeTick) -> bytes:
    return f"{t.ts}-{t.price}-{t.size}".encode()


TRADES = [
    tick(100, 0.50, 100, True),  # 50 USDC
    tick(200, 0.40, 5_000, False, tier=2),  # 2,000 USDC
    tick(300, 0.60, 50, True),  # 30 USDC
    tick(400, 0.50, 30_000, True, tier=3),  # 15,000 USDC
]


def test_trade_flow() -> None:
    flow = trade_flow(TRADES)
    assert (flow.count, flow.buys, flow.sells) == (4, 3, 1)
    assert flow.volume == pytest.approx(17_080)
    assert flow.buy_volume == pytest.approx(15_080)
    assert flow.sell_volume == pytest.approx(2_000)
    assert flow.avg_size == pytest.approx(4_270)
    assert flow.max_size == pytest.approx(15_000)
    # (0.5*100 + 0.4*5000 + 0.6*50 + 0.5*30000) / 35150 shares
    assert flow.vwap == pytest.approx(17_080 / 35_150)


def test_trade_flow_of_nothing() -> None:
    flow = trade_flow([])
    assert (flow.count, flow.volume, flow.avg_size, flow.max_size, flow.vwap) == (
        0,
        0,
        None,
        None,
        None,
    )


def test_whale_flow_counts_tiers_from_the_minimum() -> None:
    whales = whale_flow(TRADES, 2, 17_080, last_whale_s=400, now_s=460)
    assert whales.count == 2
    assert whales.volume == pytest.approx(17_000)
    assert whales.buy_volume == pytest.approx(15_000)
    assert whales.sell_volume == pytest.approx(2_000)
    assert whales.net_flow == pytest.approx(13_000)
    assert whales.buy_ratio == pytest.approx(15 / 17)
    assert whales.time_since_s == 60
    assert whales.pct_volume == pytest.approx(17_000 / 17_080)
    mega = whale_flow(TRADES, 3, 17_080, last_whale_s=None, now_s=460)
    assert (mega.count, mega.sell_volume, mega.buy_ratio, mega.time_since_s) == (1, 0, 1.0, None)


def test_price_changes_volatility_and_range() -> None:
    prices: list[float | None] = [None] * 61
    prices[0] = 0.40  # an hour ago
    prices[45] = 0.45  # 15 minutes ago
    prices[55] = 0.50  # 5 minutes ago
    prices[59] = 0.52  # a minute ago
    prices[60] = 0.55
    assert price_changes(prices, 0.56) == pytest.approx((0.04, 0.06, 0.11, 0.16))
    assert price_changes([None] * 61, 0.5) == (None, None, None, None)
    assert price_changes(prices, None) == (None, None, None, None)
    # known samples 0.40, 0.45, 0.50, 0.52, 0.55: changes .05 .05 .02 .03
    assert realized_vol(prices) == pytest.approx(math.sqrt(0.0025 + 0.0025 + 0.0004 + 0.0009))
    assert realized_vol([0.5, None]) is None
    assert price_range(prices, 0.56) == (0.40, 0.56)
    assert price_range([None], None) == (None, None)


def test_calendar_is_utc() -> None:
    assert calendar(NOW, NOW + timedelta(hours=6, minutes=30)) == (6.5, 2, 15)
    assert calendar(NOW, None) == (None, 2, 15)


def test_every_feature_in_column_order_and_the_row_is_valid() -> None:
    info = MarketInfo(
        market_id="m1",
        condition_id="0x" + "ab" * 32,
        question="Will it?",
        tokens=(
            TokenInfo(index=0, outcome="Yes", token_id="t1", price=None),
            TokenInfo(index=1, outcome="No", token_id="t2", price=None),
        ),
        end_date=NOW + timedelta(hours=2),
        enable_order_book=True,
        neg_risk=True,
        tick_size=Decimal("0.01"),
        volume_24hr=Decimal(1_000),
        liquidity=Decimal(500),
        volume=Decimal(9_000),
        volume_1wk=Decimal(4_000),
        one_day_price_change=Decimal("-0.02"),
        created_at=NOW - timedelta(hours=10),
    )
    market = TrackedMarket(info=info, closed=False, tier=3, book_seed=None)
    bids = [(0.50, 100.0), (0.49, 50.0)]
    asks = [(0.52, 20.0)]
    prices: list[float | None] = [0.45] * 61
    inputs = FeatureInputs(
        now=NOW,
        market=market,
        stats=book_stats(bids, asks, 5.0),
        depth_total=(150.0, 20.0),
        tick_size=0.01,
        last_trade_price=0.5,
        last_trade_s=NOW.timestamp() - 30,
        trades=TRADES,
        minute_prices=prices,
        last_whale_s=None,
        whale_min_tier=2,
    )
    values = dict(zip(FEATURE_COLUMNS, feature_values(inputs), strict=True))
    assert values["price"] == pytest.approx(0.51)
    assert values["spread"] == pytest.approx(0.02)
    assert values["spread_ticks"] == pytest.approx(2)
    assert values["bid_depth_5"] == 150
    assert values["bid_depth_total"] == 150
    assert values["book_imbalance"] == pytest.approx((150 - 20) / 170)
    assert values["microprice"] == pytest.approx((0.50 * 20 + 0.52 * 100) / 120)
    assert values["return_1h"] == pytest.approx(0.06)
    assert values["realized_vol_1h"] == 0
    assert values["trade_count_1h"] == 4
    assert values["trade_imbalance_1h"] == pytest.approx((15_080 - 2_000) / 17_080)
    assert values["whale_count_1h"] == 2
    assert values["seconds_since_trade"] == 30
    assert values["hours_to_close"] == 2
    assert values["hours_since_open"] == 10
    assert (values["day_of_week"], values["hour_of_day"], values["neg_risk"]) == (2, 15, True)
    assert values["price_change_1d"] == -0.02
    row = FeatureRow(NOW, "t1", "m1", 3, tuple(values.values()))
    assert feature_problem(row, NOW) is None
    short = feature_problem(row._replace(values=row.values[:-1]), NOW)
    assert short is not None
    assert (short.kind, short.label) == (RejectionKind.MALFORMED, "malformed")


def test_fills_known_at_a_time_leave_out_every_later_fill() -> None:
    activity = TokenActivity()
    for t in (tick(1_000, 0.5, 10, True), tick(1_050, 0.4, 5_000, False, tier=2)):
        activity.add_trade(t, key_of(t), min_whale_tier=2)
    later = (tick(1_070, 0.6, 20, True), tick(1_090, 0.7, 9_000, True, tier=3))
    for t in later:  # after the row's time
        activity.add_trade(t, key_of(t), min_whale_tier=2)

    known = activity.known_at(1_060, min_whale_tier=2)
    assert [t.ts for t in known.trades] == [1_000, 1_050]
    assert (known.last_trade_s, known.last_trade_price) == (1_050, 0.4)
    assert known.last_whale_s == 1_050

    before_any_whale = activity.known_at(1_020, min_whale_tier=2)
    assert before_any_whale.last_whale_s is None
    assert before_any_whale.last_trade_s == 1_000
    assert activity.known_at(1_100, min_whale_tier=2).last_whale_s == 1_090
