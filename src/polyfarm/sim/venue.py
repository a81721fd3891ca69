"""The venue mix: open markets spread over the tiers, and active, the way Polymarket's are.

This is a model, not a measurement. Its figures are the simulator's choices, sized from what is
known of the venue in 2026 (the README's "The simulator's market mix" gives the sources):

* **Tiers.** Of the open markets about 80 % close more than 48 h ahead (T0), 8 % in 12–48 h,
  5 % in 4–12 h, 4 % in 1–4 h and 3 % within the hour or past their end date (T4). Three kinds
  of listing (``Horizon``) produce that mix *and keep it* as simulated time passes: each is
  listed at the rate that holds its share of the open markets steady (Little's law: rate =
  open markets / mean time open), lives a drawn time to its end date and trades on for a drawn
  while after it (sports games are played after their nominal end; many long-dated markets wait
  for their outcome). The initial world is a snapshot of that steady state: each market's age
  is drawn from the time-open distribution weighted by its length, so near tiers are already as
  full as they will stay.
* **Activity.** Each market gets a heavy-tailed activity level: a share of markets is dormant
  (books unchanged for hours), the rest lognormal with a wide spread, intraday up/down markets
  busiest. Quotes and trades are spread over the open markets in proportion to that level,
  raised as a market nears its close (``TIER_BOOST``), and scaled so the mean per open market
  is the configured rate. Over an hour the top 10 % of markets carry most of the trades.

The mix's own draws (kinds of listing, lives, levels) come from a seeded stream of their own
(``{seed}:venue``), the rest from the world's seeded streams: one seed gives one world, event
for event.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from polyfarm.sim.genesis import (
    HOUR,
    SERIES_WINDOWS,
    TIER_HOURS,
    MarketFactory,
    seed_past_activity,
)
from polyfarm.sim.model import EventState, MarketState

# Shares of open markets by tier (T0..T4) the mix aims at; tests hold it to them.
TIER_SHARES = (0.80, 0.08, 0.05, 0.04, 0.03)
# Activity multiplier by tier: markets near their close (games in play, up/down windows open)
# quote and trade more than the same market weeks out.
TIER_BOOST = (1.0, 1.0, 1.5, 2.0, 3.0)
TIER_FLOORS_H = tuple(low for low, _ in TIER_HOURS[:4])  # 48, 12, 4, 1
QUIET_LEVEL = (0.003, 1.0)  # lognormal (median, sigma) of a dormant market's level
ACTIVE_SIGMA = 1.6
WEIGHT_REFRESH_S = 60.0  # re-weigh the open markets this often as they drift into nearer tiers
# Mean rates per open market and second. Quotes as in the uniform mix (≈ 2,000 book changes a
# second at 20,000 markets): the public archive of the whole market channel (100–400 MB of
# Parquet an hour, 99.7 % price_change rows) puts the venue very roughly at 1,000–10,000 rows a
# second. Trades a tenth of the uniform mix's (≈ 1,200 a minute): that archive's other 0.3 %
# suggests a few hundred to a thousand a minute, Polygon's ≈ 25 M Polymarket transactions a
# week (April 2026, ≈ 2,500 a minute, not all trades) bounds it from above. Inferences, not
# measurements.
QUOTE_RATE = 0.1
TRADE_RATE = 0.001


@dataclass(frozen=True, slots=True)
class Span:
    """Hours, log-uniform between ``low`` and ``high`` (a point when they are equal)."""

    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        if self.low == self.high:
            return self.low
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))

    def mean(self) -> float:
        if self.low == self.high:
            return self.low
        return (self.high - self.low) / math.log(self.high / self.low)


@dataclass(frozen=True, slots=True)
class Life:
    """When a market is listed, when it ends, how long it trades past the end, and its up/down
    window (a ``SERIES_WINDOWS`` recurrence) when it is one."""

    created_s: float
    end_s: float
    linger_s: float
    recurrence: str | None


def _single(factory: MarketFactory) -> tuple[str, int]:
    return "single", 1


@dataclass(frozen=True, slots=True)
class Horizon:
    """One kind of listing: how far ahead of its end date it is listed, how long it trades past
    it, and how busy it is.

    A market with a ``recurrences`` window is listed ``lead`` hours before the window opens (a
    lead at least as long as the window) and ends when the window closes; ``series_share`` of
    them are up/down series. ``lingers`` are (share, span) pairs for trading on past the end
    date; the remaining share closes at its end date.
    """

    open_share: float
    lead: Span
    recurrences: tuple[str, ...] = ()
    lingers: tuple[tuple[float, Span], ...] = ()
    series_share: float = 0.0
    quiet_share: float = 0.0
    active_median: float = 1.0
    build: Callable[[MarketFactory], tuple[str, int]] = _single

    def _lead(self, window_h: float) -> Span:
        return Span(max(self.lead.low, window_h), self.lead.high)

    def life(self, rng: random.Random, created_s: float) -> Life:
        recurrence = rng.choice(self.recurrences) if self.recurrences else None
        window_h = SERIES_WINDOWS[recurrence] / HOUR if recurrence else 0.0
        listed_h = self._lead(window_h).draw(rng) + window_h
        return Life(created_s, created_s + listed_h * HOUR, self._linger(rng) * HOUR, recurrence)

    def _linger(self, rng: random.Random) -> float:
        draw = rng.random()
        for share, span in self.lingers:
            if draw < share:
                return span.draw(rng)
            draw -= share
        return 0.0

    def mean_open_hours(self) -> float:
        """Mean time a market of this kind is open, listing to close."""
        windows = [SERIES_WINDOWS[r] / HOUR for r in self.recurrences] or [0.0]
        listed = sum(w + self._lead(w).mean() for w in windows) / len(windows)
        return listed + sum(share * span.mean() for share, span in self.lingers)

    def longest_open_hours(self) -> float:
        windows = [SERIES_WINDOWS[r] / HOUR for r in self.recurrences] or [0.0]
        return self.lead.high + max(windows) + max((s.high for _, s in self.lingers), default=0)

    def level(self, rng: random.Random) -> float:
        """A market's activity level, before the tier boost."""
        if rng.random() < self.quiet_share:
            median, sigma = QUIET_LEVEL
            return rng.lognormvariate(math.log(median), sigma)
        return rng.lognormvariate(math.log(self.active_median), ACTIVE_SIGMA)


def _sports_kind(factory: MarketFactory) -> tuple[str, int]:
    """Mostly one market a game; a fifth three-way (win / draw / lose) neg-risk events."""
    return ("negrisk", 3) if factory.rng.random() < 0.2 else ("single", 1)


def _long_kind(factory: MarketFactory) -> tuple[str, int]:
    return factory.pick_kind(0)


# The three kinds of listing. Shares, spans and lingers are fitted so that the steady state
# meets TIER_SHARES (≈ 80.1 / 7.8 / 4.9 / 3.9 / 3.2 %); mean times open 3.5 h, 51 h, 80 days.
# Dormant shares and level medians are chosen so that at 20,000 markets ≈ 46 % of books stay
# unchanged for 10 minutes and ≈ 29 % for an hour, and the busiest 10 % of markets carry
# ≈ 85 % of the trades: many long-dated markets see no maker for hours, while up/down windows
# and games in play are quoted all the time.
HORIZONS = (
    # Intraday: crypto up/down series (80 %) and same-day questions, listed up to 6 h ahead.
    Horizon(
        open_share=0.065, lead=Span(5 / 60, 6.0), recurrences=("5m", "5m", "15m", "1h", "4h"),
        series_share=0.8, quiet_share=0.0, active_median=3.0,
    ),
    # Games and daily events: listed 6 h to a week ahead, played / decided 1.5–4 h past the end.
    Horizon(
        open_share=0.17, lead=Span(6.0, 7 * 24.0), lingers=((1.0, Span(1.5, 4.0)),),
        quiet_share=0.25, active_median=1.0, build=_sports_kind,
    ),
    # Long-dated questions, 4 days to a year out; 30 % wait 1 h to 5 days for their outcome.
    Horizon(
        open_share=0.765, lead=Span(4 * 24.0, 365 * 24.0),
        lingers=((0.7, Span(1 / 60, 0.5)), (0.3, Span(1.0, 5 * 24.0))),
        quiet_share=0.55, active_median=0.3, build=_long_kind,
    ),
)  # fmt: skip


def listing_rate_per_hour(markets: int) -> float:
    """New markets per hour that keep ``markets`` open in the venue's tier mix."""
    return sum(h.open_share * markets / h.mean_open_hours() for h in HORIZONS)


def tier_of(hours_to_close: float) -> int:
    """T0..T4 by hours to the end date (T4: the last hour and past it), as the collector does."""
    return next((tier for tier, low in enumerate(TIER_FLOORS_H) if hours_to_close > low), 4)


class VenueMix:
    """Builds and lists events in the venue's mix and weighs their activity."""

    renormalise = True
    refresh_s = WEIGHT_REFRESH_S

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"{seed}:venue")
        rates = [h.open_share / h.mean_open_hours() for h in HORIZONS]
        self._listing_cum = [sum(rates[: i + 1]) for i in range(len(rates))]

    def initial_events(self, factory: MarketFactory, now: float, markets: int) -> list[EventState]:
        """Events until ``markets`` markets are open, each kind of listing at its share, each
        market at a point of its life drawn from the steady state."""
        events: list[EventState] = []
        have = [0] * len(HORIZONS)
        while factory.market_count < markets:
            index = min(range(len(HORIZONS)), key=lambda i: have[i] / HORIZONS[i].open_share)
            horizon = HORIZONS[index]
            life = self._steady_life(horizon, now)
            kind, size = self._kind(factory, horizon, life)
            size = min(size, markets - factory.market_count)
            if kind in ("ladder", "negrisk") and size < 2:
                kind = "single"
            event = self._event(factory, horizon, kind, life, size)
            have[index] += len(event.markets)
            events.append(event)
        return events

    def _steady_life(self, horizon: Horizon, now: float) -> Life:
        """A life seen at a random instant: drawn in proportion to its length (a market open
        twice as long is twice as likely to be open now), then a uniform point of it."""
        rng = self.rng
        longest = horizon.longest_open_hours() * HOUR
        while True:
            life = horizon.life(rng, 0.0)
            span = life.end_s + life.linger_s
            if rng.random() * longest < span:
                break
        created = now - rng.uniform(0.0, span)
        return Life(created, created + life.end_s, life.linger_s, life.recurrence)

    def spawned_event(self, factory: MarketFactory, now: float) -> EventState:
        """A market listed while the simulation runs, of a kind drawn by listing rate."""
        rng = self.rng
        index = bisect.bisect_right(self._listing_cum, rng.random() * self._listing_cum[-1])
        horizon = HORIZONS[min(index, len(HORIZONS) - 1)]
        life = horizon.life(rng, now)
        kind, _ = self._kind(factory, horizon, life) if life.recurrence else ("single", 1)
        return self._event(factory, horizon, kind, life, 1)

    def _kind(self, factory: MarketFactory, horizon: Horizon, life: Life) -> tuple[str, int]:
        if life.recurrence is not None:
            return ("series", 1) if self.rng.random() < horizon.series_share else ("single", 1)
        return horizon.build(factory)

    def _event(
        self, factory: MarketFactory, horizon: Horizon, kind: str, life: Life, size: int
    ) -> EventState:
        if kind == "series":
            assert life.recurrence is not None
            event = factory.series(life.created_s, life.end_s, 1, recurrence=life.recurrence)
        else:
            event = factory.build(kind, life.created_s, life.end_s, size)
        for market in event.markets:
            market.linger_s = life.linger_s
            market.activity = horizon.level(self.rng)
        return event

    def past_activity(self, rng: random.Random, market: MarketState, now: float) -> None:
        """Volumes and a last trade from before the start; recent volumes follow the activity
        level (a dormant market shows next to none)."""
        seed_past_activity(rng, market, now)
        market.vol1wk = min(market.vol_total, market.vol1wk * market.activity)
        market.vol24 = min(market.vol1wk, market.vol24 * market.activity)

    def weights(self, markets: list[MarketState], now: float) -> Iterator[float]:
        """Activity level times the boost of the tier each market is in at ``now``."""
        t1, t2, t3, t4 = (now + hours * HOUR for hours in TIER_FLOORS_H)  # ends beyond which
        boost = TIER_BOOST
        for market in markets:  # inline comparisons: this runs over every open market
            end = market.end_s
            tier = 0 if end > t1 else 1 if end > t2 else 2 if end > t3 else 3 if end > t4 else 4
            yield market.activity * boost[tier]
