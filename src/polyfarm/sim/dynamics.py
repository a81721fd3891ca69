"""Pure price and trade dynamics.

* The fair YES price follows an Ornstein-Uhlenbeck walk on the logit scale, evolved lazily and
  exactly over whatever interval passed since the market was last touched. As the end date nears
  the anchor slides towards the market's planned outcome, so prices converge before closing.
* Trade notionals are heavy-tailed: a lognormal body plus a Pareto tail, so whale trades of
  ≥ 500 / 2,000 / 10,000 USDC occur.
* A trade walks the book from the touch, consuming levels.
"""

from __future__ import annotations

import math
import random

from polyfarm.sim.bookgen import Change
from polyfarm.sim.model import Book, MarketState, Outcome
from polyfarm.sim.wire import PRICE_SCALE

REVERSION_PER_S = 1.0 / (3 * 86_400)
OUTCOME_X = {Outcome.YES: 4.6, Outcome.NO: -4.6, Outcome.FIFTY: 0.0, Outcome.VOID: 0.0}
MAX_NOTIONAL = 250_000.0
MAX_LEVELS_SWEPT = 20


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw; normal approximation for large means."""
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, count, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def trade_notional(rng: random.Random) -> float:
    """USDC notional of one taker order: lognormal body, Pareto tail (alpha 1, from 50)."""
    if rng.random() < 0.3:
        value = 50.0 / (1.0 - rng.random())
    else:
        value = rng.lognormvariate(math.log(20.0), 1.3)
    return min(max(value, 1.0), MAX_NOTIONAL)


def anchor_at(market: MarketState, now: float) -> tuple[float, float]:
    """(anchor logit, extra reversion rate) at ``now``: pulled to the outcome near the end."""
    lifetime = max(market.end_s - market.created_s, 600.0)
    tau = min(max(lifetime * 0.15, 300.0), 12 * 3600.0)
    weight = math.exp(-max(market.end_s - now, 0.0) / tau)
    target = OUTCOME_X.get(market.planned, market.anchor_x)
    return market.anchor_x * (1.0 - weight) + target * weight, weight / tau


def evolve_fair(rng: random.Random, market: MarketState, now: float) -> float:
    """Advance the fair logit to ``now`` with the exact OU transition; returns it."""
    dt = now - market.fair_s
    if dt <= 0:
        return market.fair_x
    anchor, extra = anchor_at(market, now)
    theta = REVERSION_PER_S + extra
    decay = math.exp(-theta * dt)
    spread = market.sigma * math.sqrt((1.0 - decay * decay) / (2.0 * theta))
    market.fair_x = anchor + (market.fair_x - anchor) * decay + spread * rng.gauss(0.0, 1.0)
    market.fair_s = now
    return market.fair_x


def consumes_yes_asks(is_yes: bool, buy: bool) -> bool:
    """A YES buy or a NO sell lifts YES asks; a YES sell or a NO buy hits YES bids."""
    return is_yes == buy


def sweep(
    book: Book, lift_asks: bool, shares: int, max_levels: int = MAX_LEVELS_SWEPT
) -> tuple[int, int, list[Change]]:
    """Consume up to ``shares`` (hundredths) from the YES book.

    Returns (filled hundredths, last YES price touched, level changes); filled is 0 when the
    side is empty.
    """
    side = book.asks if lift_asks else book.bids
    prices = sorted(side, reverse=not lift_asks)[:max_levels]
    filled, last_price, changes = 0, 0, []
    for price in prices:
        if filled >= shares:
            break
        take = min(side[price], shares - filled)
        filled += take
        last_price = price
        changes.append((not lift_asks, price, side[price] - take))
    return filled, last_price, changes


def taker_shares(notional: float, token_price: int) -> int:
    """Hundredths of a share bought with ``notional`` USDC at ``token_price`` (price units)."""
    return max(100, round(notional / (token_price / PRICE_SCALE) * 100))


def impact(notional: float, up: bool) -> float:
    """Logit shift of the fair value caused by a taker order."""
    shift = 0.015 * math.log1p(notional / 100.0)
    return shift if up else -shift
