"""Which markets the world holds and how busy each is: the uniform mix or the venue's.

* ``uniform`` — the simulator's original world: open markets spread evenly over the five
  tiers, listings half up/down series, every market quoting and trading at comparable rates
  (lognormal weights). Small worlds have every tier populated, which tier-driven tests need.
* ``venue`` — a model of the venue's mix (``venue.py``): most markets far from their close,
  a heavy-tailed activity with many dormant books. For venue-scale questions (storage, memory).
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Iterator
from typing import Protocol

from polyfarm.sim.genesis import MarketFactory, initial_events, seed_past_activity, spawned_event
from polyfarm.sim.model import EventState, MarketState
from polyfarm.sim.venue import QUOTE_RATE, TRADE_RATE, VenueMix, listing_rate_per_hour

UNIFORM_SPAWN_SHARE_PER_HOUR = 0.02  # new markets per hour, as a share of the initial count


class Mix(enum.StrEnum):
    UNIFORM = "uniform"
    VENUE = "venue"

    @property
    def quote_rate(self) -> float:
        """Default book changes per open market per simulated second (mean)."""
        return QUOTE_RATE if self is Mix.VENUE else 0.1

    @property
    def trade_rate(self) -> float:
        """Default trades per open market per simulated second (mean)."""
        return TRADE_RATE if self is Mix.VENUE else 0.01

    def listing_rate_per_hour(self, markets: int) -> float:
        """Default new markets per hour for a world of ``markets`` markets."""
        if self is Mix.VENUE:
            return listing_rate_per_hour(markets)
        return max(1.0, markets * UNIFORM_SPAWN_SHARE_PER_HOUR)

    def model(self, seed: int) -> MarketMix:
        return VenueMix(seed) if self is Mix.VENUE else UniformMix()


class MarketMix(Protocol):
    """What the world asks of a mix.

    ``renormalise``: True scales the open markets' weights to a mean of one at every refresh
    (the configured rates are means per open market); False keeps the scale fixed at the start
    (the uniform mix's original behaviour). ``refresh_s``: re-weigh at least this often.
    """

    @property
    def renormalise(self) -> bool: ...
    @property
    def refresh_s(self) -> float: ...

    def initial_events(
        self, factory: MarketFactory, now: float, markets: int
    ) -> list[EventState]: ...
    def spawned_event(self, factory: MarketFactory, now: float) -> EventState: ...
    def past_activity(self, rng: random.Random, market: MarketState, now: float) -> None: ...
    def weights(self, markets: list[MarketState], now: float) -> Iterator[float]: ...


class UniformMix:
    renormalise = False
    refresh_s = math.inf

    def initial_events(self, factory: MarketFactory, now: float, markets: int) -> list[EventState]:
        return initial_events(factory, now, markets)

    def spawned_event(self, factory: MarketFactory, now: float) -> EventState:
        return spawned_event(factory, now)

    def past_activity(self, rng: random.Random, market: MarketState, now: float) -> None:
        seed_past_activity(rng, market, now)

    def weights(self, markets: list[MarketState], now: float) -> Iterator[float]:
        return (market.weight for market in markets)
