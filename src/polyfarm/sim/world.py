"""The simulated Polymarket: events, markets, books and trades evolving in simulated time.

Pure logic, no I/O. ``step(now)`` advances everything to ``now`` and returns the resulting
``WorldEvent``s in time order. Work per step is proportional to activity, not to the number of
markets: trades and maker updates arrive as one superposed Poisson process and are assigned to
markets by activity weight; closes and resolutions come off heaps; books are built on first use.
A clock jump generates at most ``max_events_per_step`` trades/updates (prices still follow
their exact transition), so ``advance(3600)`` stays cheap.

The mix (``mix.py``) decides which markets exist, which are listed while the world runs, and
each one's activity weight: the uniform mix or the venue's.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from polyfarm.sim.activity import materialize, quote, trade
from polyfarm.sim.dynamics import poisson
from polyfarm.sim.genesis import MarketFactory
from polyfarm.sim.history import SyntheticPath
from polyfarm.sim.lifecycle import close_market, resolution_time, resolve_market
from polyfarm.sim.mix import Mix
from polyfarm.sim.model import EventState, MarketCreated, MarketState, WorldEvent
from polyfarm.sim.tradelog import TradeLog

UNIFORM_SPAWN_RATE = 0.001  # new markets per simulated second when none is given (uniform)


@dataclass(frozen=True, slots=True)
class WorldParams:
    """Rates are per simulated second: trades and book changes per open market (means), new
    markets per world. ``None`` takes the mix's default (``Mix.trade_rate``, ``Mix.quote_rate``;
    new markets: ``UNIFORM_SPAWN_RATE``, or the venue's steady-state listing rate)."""

    seed: int = 7
    markets: int = 200
    trade_rate: float | None = None
    quote_rate: float | None = None
    spawn_rate: float | None = None
    max_events_per_step: int = 4000
    resolution_delay_s: tuple[float, float] = (120.0, 1800.0)
    trade_retention: int = 2_000_000
    v2_share: float = 0.8
    mix: Mix = Mix.UNIFORM

    def rates(self) -> tuple[float, float, float]:
        """(trade rate, quote rate, spawn rate) with the mix's defaults filled in."""
        spawn = self.spawn_rate
        if spawn is None:
            uniform = self.mix is Mix.UNIFORM
            spawn = (
                UNIFORM_SPAWN_RATE
                if uniform
                else self.mix.listing_rate_per_hour(self.markets) / 3600
            )
        return (
            self.mix.trade_rate if self.trade_rate is None else self.trade_rate,
            self.mix.quote_rate if self.quote_rate is None else self.quote_rate,
            spawn,
        )


class World:
    def __init__(self, params: WorldParams, start_s: float) -> None:
        self.params = params
        self.trade_rate, self.quote_rate, self.spawn_rate = params.rates()
        self.seed = params.seed
        self._mix = params.mix.model(params.seed)
        self.rng = random.Random(params.seed + 1)
        self._factory = MarketFactory(
            random.Random(params.seed),
            variants=random.Random(f"{params.seed}:variants"),
            v2_share=params.v2_share,
        )
        self.start_s = start_s
        self.now_s = start_s
        self.events: list[EventState] = []
        self.markets: list[MarketState] = []
        self.tokens: dict[str, tuple[MarketState, bool]] = {}
        self.by_condition: dict[str, MarketState] = {}
        self.by_gamma_id: dict[int, MarketState] = {}
        self.by_slug: dict[str, MarketState] = {}
        self.events_by_id: dict[int, EventState] = {}
        self.events_by_slug: dict[str, EventState] = {}
        self.trades = TradeLog(params.trade_retention)
        self._closing: list[tuple[float, int]] = []
        self._resolving: list[tuple[float, int]] = []
        self._open: list[MarketState] = []
        self._cum_weights: list[float] = []
        self._open_dirty = True
        self._weighed_s = start_s
        self.watch: Callable[[MarketState], bool] = _always
        for event in self._mix.initial_events(self._factory, start_s, params.markets):
            for market in event.markets:
                self._mix.past_activity(self._factory.rng, market, start_s)
            self._register(event)
        self._weight_norm = len(self.markets) / max(sum(m.weight for m in self.markets), 1e-9)

    # -- registry -----------------------------------------------------------------------------

    def _register(self, event: EventState) -> None:
        self.events.append(event)
        self.events_by_id[event.gamma_id] = event
        self.events_by_slug[event.slug] = event
        for market in event.markets:
            self.markets.append(market)
            self.tokens[market.yes_token] = (market, True)
            self.tokens[market.no_token] = (market, False)
            self.by_condition[market.condition_id] = market
            self.by_gamma_id[market.gamma_id] = market
            self.by_slug[market.slug] = market
            heapq.heappush(self._closing, (market.end_s + market.linger_s, market.idx))
        self._open_dirty = True

    def token(self, token_id: str) -> tuple[MarketState, bool] | None:
        return self.tokens.get(token_id)

    def open_book(self, market: MarketState) -> bool:
        """Materialise the book of an open market; False once the market has closed."""
        return materialize(self, market, self.now_s) is not None

    def synthetic(self, market: MarketState) -> SyntheticPath:
        return SyntheticPath(self.seed, market, self.start_s)

    def open_markets(self) -> list[MarketState]:
        self._refresh_open()
        return self._open

    # -- stepping -----------------------------------------------------------------------------

    def step(self, now: float) -> list[WorldEvent]:
        """Advance to ``now``; returns what happened, oldest first."""
        if now <= self.now_s:
            return []
        since, self.now_s = self.now_s, now
        if now - self._weighed_s >= self._mix.refresh_s:
            self._open_dirty = True  # markets drift into nearer tiers: weigh them again
        out: list[WorldEvent] = []
        self._lifecycle(now, out)
        self._spawn(since, now, out)
        self._activity(since, now, out)
        out.sort(key=lambda event: event.ts_ms)
        return out

    def _lifecycle(self, now: float, out: list[WorldEvent]) -> None:
        while self._closing and self._closing[0][0] <= now:
            close_s, idx = heapq.heappop(self._closing)
            market = self.markets[idx]
            out.extend(close_market(market, close_s))
            due = resolution_time(self.rng, market, self.params.resolution_delay_s)
            heapq.heappush(self._resolving, (due, idx))
            self._open_dirty = True
        while self._resolving and self._resolving[0][0] <= now:
            due, idx = heapq.heappop(self._resolving)
            out.extend(resolve_market(self.markets[idx], due))

    def _spawn(self, since: float, now: float, out: list[WorldEvent]) -> None:
        count = poisson(self.rng, self.spawn_rate * (now - since))
        for ts in sorted(self.rng.uniform(since, now) for _ in range(count)):
            event = self._mix.spawned_event(self._factory, ts)
            for market in event.markets:
                market.vol_s = ts
                out.append(MarketCreated(market, int(ts * 1000)))
            self._register(event)

    def _refresh_open(self) -> None:
        if not self._open_dirty:
            return
        self._open = [m for m in self.markets if m.closed_s is None]
        self._cum_weights = list(itertools.accumulate(self._mix.weights(self._open, self.now_s)))
        if self._mix.renormalise and self._cum_weights:
            self._weight_norm = len(self._open) / max(self._cum_weights[-1], 1e-9)
        self._weighed_s = self.now_s
        self._open_dirty = False

    def _activity(self, since: float, now: float, out: list[WorldEvent]) -> None:
        self._refresh_open()
        if not self._open:
            return
        total_weight = self._cum_weights[-1] * self._weight_norm
        trade_rate = self.trade_rate * total_weight
        quote_rate = self.quote_rate * total_weight
        count = poisson(self.rng, (trade_rate + quote_rate) * (now - since))
        count = min(count, self.params.max_events_per_step)
        if count == 0:
            return
        trade_share = trade_rate / (trade_rate + quote_rate)
        rng = self.rng
        chosen = rng.choices(self._open, cum_weights=self._cum_weights, k=count)
        for ts, market in zip(
            sorted(rng.uniform(since, now) for _ in range(count)), chosen, strict=True
        ):
            if market.closed_s is not None or ts < market.created_s:
                continue
            act = trade if rng.random() < trade_share else quote
            out.extend(act(self, market, ts))


def _always(market: MarketState) -> bool:
    return True
