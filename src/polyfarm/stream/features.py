"""ML feature maths for ``market_features`` (pure: every input is an argument).

The seed-004 set — price 5, momentum 3, volume 4, depth 8, derived book 7, trade flow 9,
whales 8, context 3 — plus 17 more, in ``FEATURE_COLUMNS`` order. Units and definitions,
where the seed left them open or got them wrong:

* ``price`` is the midpoint, else the last trade; ``spread`` is ask - bid.
* Volumes (``volume_1h``, ``buy_volume_1h``, whale volumes, ``avg/max_trade_size_1h``) are in
  USDC (price x shares), like Gamma's ``volume24hr``; the seed summed shares. ``vwap_1h`` is
  weighted by shares.
* Whales are classified by notional (the seed compared share counts with USDC thresholds);
  whale features count trades of ``feature_min_tier`` and above (2 = 2,000 USDC by default).
  ``time_since_whale_s`` is measured from the last such trade ever seen, even beyond the hour.
* ``return_*`` and ``realized_vol_1h`` are in probability points (price differences), like
  Gamma's ``oneDayPriceChange``: relative returns explode near 0. ``realized_vol_1h`` is the
  root of the summed squared minute-to-minute changes over the last hour.
* Depths are shares: ``*_depth_N`` within the best N levels, ``*_depth_total`` the whole side.
* ``day_of_week`` (Monday = 0) and ``hour_of_day`` are UTC.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from polyfarm.markets.book_stats import BookStats
from polyfarm.markets.tiers import hours_to_close
from polyfarm.markets.tracked import TrackedMarket
from polyfarm.store.rows import FEATURE_COLUMNS, FeatureRow
from polyfarm.stream.rolling import TradeTick

Value = float | int | bool | None
RETURN_MINUTES = (1, 5, 15, 60)
BID_DEPTHS = ("bid_depth_5", "bid_depth_10", "bid_depth_20", "bid_depth_50")
ASK_DEPTHS = ("ask_depth_5", "ask_depth_10", "ask_depth_20", "ask_depth_50")


@dataclass(frozen=True)
class TradeFlow:
    count: int
    buys: int
    sells: int
    volume: float
    buy_volume: float
    sell_volume: float
    avg_size: float | None
    max_size: float | None
    vwap: float | None


@dataclass(frozen=True)
class WhaleFlow:
    count: int
    volume: float
    buy_volume: float
    sell_volume: float
    net_flow: float
    buy_ratio: float | None
    time_since_s: float | None
    pct_volume: float | None


def trade_flow(trades: Sequence[TradeTick]) -> TradeFlow:
    buys = [t for t in trades if t.is_buy]
    volume = sum(t.notional for t in trades)
    buy_volume = sum(t.notional for t in buys)
    shares = sum(t.size for t in trades)
    return TradeFlow(
        count=len(trades),
        buys=len(buys),
        sells=len(trades) - len(buys),
        volume=volume,
        buy_volume=buy_volume,
        sell_volume=volume - buy_volume,
        avg_size=volume / len(trades) if trades else None,
        max_size=max((t.notional for t in trades), default=None),
        vwap=sum(t.price * t.size for t in trades) / shares if shares > 0 else None,
    )


def whale_flow(
    trades: Sequence[TradeTick],
    min_tier: int,
    total_volume: float,
    last_whale_s: float | None,
    now_s: float,
) -> WhaleFlow:
    whales = [t for t in trades if t.whale_tier >= min_tier]
    volume = sum(t.notional for t in whales)
    buy_volume = sum(t.notional for t in whales if t.is_buy)
    sell_volume = volume - buy_volume
    return WhaleFlow(
        count=len(whales),
        volume=volume,
        buy_volume=buy_volume,
        sell_volume=sell_volume,
        net_flow=buy_volume - sell_volume,
        buy_ratio=buy_volume / volume if volume > 0 else None,
        time_since_s=None if last_whale_s is None else max(0.0, now_s - last_whale_s),
        pct_volume=volume / total_volume if total_volume > 0 else None,
    )


def price_changes(
    minute_prices: Sequence[float | None], price: float | None
) -> tuple[float | None, ...]:
    """Price now minus the price 1, 5, 15 and 60 minutes ago (``minute_prices[-1]`` is now)."""
    out: list[float | None] = []
    for minutes in RETURN_MINUTES:
        index = len(minute_prices) - 1 - minutes
        then = minute_prices[index] if index >= 0 else None
        out.append(None if price is None or then is None else price - then)
    return tuple(out)


def realized_vol(minute_prices: Sequence[float | None]) -> float | None:
    known = [p for p in minute_prices if p is not None]
    if len(known) < 2:
        return None
    return math.sqrt(sum((b - a) ** 2 for a, b in itertools.pairwise(known)))


def price_range(
    minute_prices: Sequence[float | None], price: float | None
) -> tuple[float | None, float | None]:
    known = [p for p in (*minute_prices, price) if p is not None]
    return (min(known), max(known)) if known else (None, None)


def calendar(now: datetime, end_date: datetime | None) -> tuple[float | None, int, int]:
    """Hours to close, day of week (Monday 0), hour of day — UTC."""
    return hours_to_close(end_date, now), now.weekday(), now.hour


@dataclass(frozen=True)
class FeatureInputs:
    now: datetime
    market: TrackedMarket
    stats: BookStats
    depth_total: tuple[float, float]  # shares, whole side (bids, asks)
    tick_size: float | None
    last_trade_price: float | None
    last_trade_s: float | None
    trades: Sequence[TradeTick]  # the last hour
    minute_prices: Sequence[float | None]  # 61 samples, the last one is now
    last_whale_s: float | None
    whale_min_tier: int


def feature_values(inputs: FeatureInputs) -> tuple[Value, ...]:
    """Every feature, in ``FEATURE_COLUMNS`` order."""
    values = {
        **_price_and_book(inputs),
        **_momentum_and_volume(inputs.market),
        **_flows(inputs),
        **_history(inputs),
        **_context(inputs),
    }
    return tuple(values[name] for name in FEATURE_COLUMNS)


def _price(inputs: FeatureInputs) -> float | None:
    mid = inputs.stats.midpoint
    return mid if mid is not None else inputs.last_trade_price


def _price_and_book(inputs: FeatureInputs) -> dict[str, Value]:
    s = inputs.stats
    tick = inputs.tick_size
    return {
        "price": _price(inputs),
        "best_bid": s.best_bid,
        "best_ask": s.best_ask,
        "spread": s.spread,
        "last_trade_price": inputs.last_trade_price,
        **dict(zip(BID_DEPTHS, s.bid_depth, strict=True)),
        **dict(zip(ASK_DEPTHS, s.ask_depth, strict=True)),
        "bid_levels": s.bid_levels,
        "ask_levels": s.ask_levels,
        "book_imbalance": s.imbalance,
        "bid_wall_price": s.bid_wall.price if s.bid_wall else None,
        "bid_wall_size": s.bid_wall.size if s.bid_wall else None,
        "ask_wall_price": s.ask_wall.price if s.ask_wall else None,
        "ask_wall_size": s.ask_wall.size if s.ask_wall else None,
        "midpoint": s.midpoint,
        "microprice": s.microprice,
        "tick_size": tick,
        "spread_ticks": round(s.spread / tick, 6) if s.spread is not None and tick else None,
        "bid_depth_total": inputs.depth_total[0],
        "ask_depth_total": inputs.depth_total[1],
    }


def _momentum_and_volume(market: TrackedMarket) -> dict[str, Value]:
    return {
        "price_change_1d": market.price_change_1d,
        "price_change_1w": market.price_change_1w,
        "price_change_1m": market.price_change_1m,
        "volume_total": market.volume_total,
        "volume_24h": market.volume_24h,
        "volume_1w": market.volume_1w,
        "liquidity": market.liquidity,
        "neg_risk": market.neg_risk,
    }


def _flows(inputs: FeatureInputs) -> dict[str, Value]:
    flow = trade_flow(inputs.trades)
    now_s = inputs.now.timestamp()
    whales = whale_flow(
        inputs.trades, inputs.whale_min_tier, flow.volume, inputs.last_whale_s, now_s
    )
    return {
        "trade_count_1h": flow.count,
        "buy_count_1h": flow.buys,
        "sell_count_1h": flow.sells,
        "volume_1h": flow.volume,
        "buy_volume_1h": flow.buy_volume,
        "sell_volume_1h": flow.sell_volume,
        "avg_trade_size_1h": flow.avg_size,
        "max_trade_size_1h": flow.max_size,
        "vwap_1h": flow.vwap,
        "trade_imbalance_1h": (flow.buy_volume - flow.sell_volume) / flow.volume
        if flow.volume > 0
        else None,
        "whale_count_1h": whales.count,
        "whale_volume_1h": whales.volume,
        "whale_buy_volume_1h": whales.buy_volume,
        "whale_sell_volume_1h": whales.sell_volume,
        "whale_net_flow_1h": whales.net_flow,
        "whale_buy_ratio_1h": whales.buy_ratio,
        "time_since_whale_s": whales.time_since_s,
        "pct_volume_from_whales": whales.pct_volume,
    }


def _history(inputs: FeatureInputs) -> dict[str, Value]:
    price = _price(inputs)
    changes = price_changes(inputs.minute_prices, price)
    low, high = price_range(inputs.minute_prices, price)
    last = inputs.last_trade_s
    return {
        **dict(zip(("return_1m", "return_5m", "return_15m", "return_1h"), changes, strict=True)),
        "realized_vol_1h": realized_vol(inputs.minute_prices),
        "price_min_1h": low,
        "price_max_1h": high,
        "seconds_since_trade": None if last is None else max(0.0, inputs.now.timestamp() - last),
    }


def _context(inputs: FeatureInputs) -> dict[str, Value]:
    hours, weekday, hour = calendar(inputs.now, inputs.market.end_date)
    opened = inputs.market.start_date or inputs.market.created_at
    return {
        "hours_to_close": hours,
        "day_of_week": weekday,
        "hour_of_day": hour,
        "hours_since_open": None
        if opened is None
        else (inputs.now - opened).total_seconds() / 3600.0,
    }


# Features that move with the clock alone. A row whose other values are unchanged is the same
# state seen later, so these are compared as the instant they measure from (the last trade, the
# last whale, the close, the open: ts minus or plus the value, to the millisecond), and the
# calendar ones not at all: all of them follow from ``ts`` and the row last written.
_SINCE_S = ("seconds_since_trade", "time_since_whale_s")
_HOURS_FROM_TS = {"hours_to_close": 3600.0, "hours_since_open": -3600.0}
_CALENDAR = ("day_of_week", "hour_of_day")
_CLOCKED = {*_SINCE_S, *_HOURS_FROM_TS, *_CALENDAR}
_STATE = [i for i, name in enumerate(FEATURE_COLUMNS) if name not in _CLOCKED]
_SINCE_AT = [FEATURE_COLUMNS.index(name) for name in _SINCE_S]
_HOURS_AT = [(FEATURE_COLUMNS.index(name), k) for name, k in _HOURS_FROM_TS.items()]


def feature_digest(row: FeatureRow) -> int:
    """Digest of a feature row's state, for ``markets.unchanged.LastWritten``."""
    ts_s = row.ts.timestamp()
    values = row.values
    anchors = [_anchor(ts_s, values[i], -1.0) for i in _SINCE_AT]
    anchors += [_anchor(ts_s, values[i], k) for i, k in _HOURS_AT]
    return hash((row.market_id, row.tier, *(values[i] for i in _STATE), *anchors))


def _anchor(ts_s: float, value: Value, seconds_per_unit: float) -> float | None:
    if value is None:
        return None
    return round(ts_s + float(value) * seconds_per_unit, 3)
