"""Closing and resolving markets as simulated time passes their end date (pure)."""

from __future__ import annotations

import random

from polyfarm.sim.book import mid_half
from polyfarm.sim.bookgen import fair_units
from polyfarm.sim.history import record_mid
from polyfarm.sim.model import MarketClosed, MarketResolved, MarketState, Outcome, WorldEvent
from polyfarm.sim.wire import HALF_SCALE

DISPUTE_SHARE = 0.05
DISPUTE_DELAY_S = 2 * 3600.0


def close_market(market: MarketState, ts: float) -> list[WorldEvent]:
    """Trading stops: the book disappears (REST 404) and the final midpoint is kept."""
    if market.closed_s is not None:
        return []
    market.final_mid = current_mid_half(market)
    if market.book is not None:
        bid, ask = market.book.top()
        market.final_top = (bid or 0, ask or 0)
    record_mid(market, ts, market.final_mid)
    market.book = None
    market.closed_s = ts
    return [MarketClosed(market, int(ts * 1000))]


def resolution_time(rng: random.Random, market: MarketState, delay: tuple[float, float]) -> float:
    """When the UMA resolution lands; a few markets are disputed first and take longer."""
    assert market.closed_s is not None
    wait = rng.uniform(*delay)
    if rng.random() < DISPUTE_SHARE:
        market.disputed = True
        wait += DISPUTE_DELAY_S
    return market.closed_s + wait


def resolve_market(market: MarketState, ts: float) -> list[WorldEvent]:
    if market.result is not Outcome.OPEN or market.closed_s is None:
        return []
    market.result = market.planned
    market.resolved_s = ts
    return [MarketResolved(market, int(ts * 1000))]


def outcome_prices(market: MarketState) -> tuple[str, str]:
    """Gamma ``outcomePrices`` as decimal strings for the market's current state."""
    fixed = {
        Outcome.YES: ("1", "0"),
        Outcome.NO: ("0", "1"),
        Outcome.FIFTY: ("0.5", "0.5"),
        Outcome.VOID: ("0", "0"),
    }
    if market.result in fixed:
        return fixed[market.result]
    yes = round(current_mid_half(market) / HALF_SCALE, 5)
    return _short(yes), _short(round(1 - yes, 5))


def _short(value: float) -> str:
    return f"{value:.5f}".rstrip("0").rstrip(".") or "0"


def current_mid_half(market: MarketState) -> int:
    """YES midpoint in half units: the book's, the close's, or the fair value's."""
    if market.book is not None:
        mid = mid_half(market.book)
        if mid is not None:
            return mid
    if market.closed_s is not None:
        return market.final_mid
    return 2 * fair_units(market.fair_x)
