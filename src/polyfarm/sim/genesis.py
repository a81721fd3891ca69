"""Creating events and markets, at start-up and while the simulation runs (pure, seeded).

Every event gets a tier by hours to close (> 48 h, 12-48, 4-12, 1-4, < 1 h); the initial world
fills the tiers in roughly equal shares by always drawing the least-populated tier.

A market's protocol (v1 or v2 outcome ids), its 0.0025 tick, minimum size and rewards come from
a second random stream (``variants``), so they leave the world's main sequence untouched.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from datetime import UTC, datetime

from polyfarm.sim.model import EventState, MarketState, Outcome
from polyfarm.sim.names import ASSETS, CONTESTS, SUBJECTS, person, slugify, tag_objects
from polyfarm.sim.wire import PRICE_SCALE, TICK_CENT, TICK_MILLI, TICK_QUARTER, hex256, token_id

HOUR = 3600.0
TIER_HOURS: tuple[tuple[float, float], ...] = (
    (48.0, 1080.0),
    (12.0, 48.0),
    (4.0, 12.0),
    (1.0, 4.0),
    (1.0 / 60.0, 1.0),
)
SERIES_WINDOWS = {"5m": 300.0, "15m": 900.0, "1h": HOUR, "4h": 4 * HOUR}
QUARTER_TICK_SHARE = 0.05  # markets ticking at 0.0025 (World Cup markets since 2026-07)
CTF_IDS_SHARE = 0.75  # v2 markets that also publish their CTF ids as clobTokenIds
LEG_SHARE = 0.2  # v1 markets that also publish positionIds (a leg of a V2 workflow)
UNDECLARED_SHARE = 0.5  # v1 markets listed before V2: no ``version`` field
MIN_SIZES = (5, 5, 5, 5, 5, 5, 5, 5, 1, 15)  # orderMinSize in shares
REWARDED_SHARE = 0.4


def logit(price: float) -> float:
    price = min(max(price, 0.002), 0.998)
    return math.log(price / (1.0 - price))


class MarketFactory:
    """Allocates ids and builds events with their markets."""

    def __init__(
        self, rng: random.Random, variants: random.Random | None = None, v2_share: float = 0.0
    ) -> None:
        self.rng = rng
        self.variants = variants or random.Random(rng.random())
        self.v2_share = v2_share
        self.next_market_id = 500_000 + rng.randrange(100_000)
        self.next_event_id = 20_000 + rng.randrange(10_000)
        self.market_count = 0
        self.event_count = 0

    def hours_to_close(self, tier: int) -> float:
        low, high = TIER_HOURS[tier]
        return math.exp(self.rng.uniform(math.log(low), math.log(high)))

    def _event(self, kind: str, title: str, created: float, end: float) -> EventState:
        rng = self.rng
        self.next_event_id += rng.randint(1, 4)
        event = EventState(
            idx=self.event_count,
            gamma_id=self.next_event_id,
            slug=f"{slugify(title)}-{self.next_event_id}",
            title=title,
            description=f"{title} Resolution follows the rules in the market descriptions.",
            created_s=created,
            start_s=created + rng.uniform(1.0, 120.0),
            end_s=end,
            kind=kind,
            tags=tag_objects(rng, rng.randint(1, 3)),
            comment_count=int(rng.expovariate(1 / 40)),
        )
        self.event_count += 1
        return event

    def _market(
        self, event: EventState, question: str, price: float, planned: Outcome
    ) -> MarketState:
        rng = self.rng
        self.next_market_id += rng.randint(1, 3)
        lifetime_vol = 3.0 if event.kind == "series" else rng.lognormvariate(math.log(0.35), 0.5)
        market = MarketState(
            idx=self.market_count,
            gamma_id=self.next_market_id,
            event=event,
            condition_id=hex256(rng),
            question_id=hex256(rng),
            yes_token=token_id(rng),
            no_token=token_id(rng),
            question=question,
            slug=f"{slugify(question)}-{self.next_market_id % 1000}",
            outcomes=("Up", "Down") if event.kind == "series" else ("Yes", "No"),
            group_title=None,
            group_threshold="0",
            neg_risk_request_id="",
            tick=TICK_MILLI if price < 0.04 or price > 0.96 or rng.random() < 0.3 else TICK_CENT,
            created_s=event.created_s,
            end_s=event.end_s,
            planned=planned,
            fair_x=logit(price),
            anchor_x=logit(price),
            sigma=lifetime_vol / math.sqrt(86_400.0),
            fair_s=event.created_s,
            weight=rng.lognormvariate(0.0, 1.1) * (3.0 if event.kind == "series" else 1.0),
            depth=rng.lognormvariate(math.log(300.0), 0.8),
        )
        market.fee_type = self._fee_type(event.kind)
        self._vary(market)
        self.market_count += 1
        event.markets.append(market)
        return market

    def _vary(self, market: MarketState) -> None:
        variants = self.variants
        assign_protocol(variants, market, self.v2_share)
        if market.tick == TICK_CENT and variants.random() < QUARTER_TICK_SHARE:
            market.tick = TICK_QUARTER
        market.min_size = variants.choice(MIN_SIZES)
        market.rewarded = variants.random() < REWARDED_SHARE

    def _fee_type(self, kind: str) -> str | None:
        if kind == "series":
            return "crypto_fees"
        if self.rng.random() < 0.3:
            return self.rng.choice(("politics_fees", "sports_fees_v2", "finance_prices_fees"))
        return None

    def binary_outcome(self, price: float) -> Outcome:
        draw = self.rng.random()
        if draw < 0.02:
            return Outcome.FIFTY
        if draw < 0.03:
            return Outcome.VOID
        return Outcome.YES if self.rng.random() < price else Outcome.NO

    def open_price(self) -> float:
        rng = self.rng
        draw = rng.random()
        if draw < 0.6:
            return rng.uniform(0.1, 0.9)
        if draw < 0.85:
            return rng.uniform(0.01, 0.1) if rng.random() < 0.5 else rng.uniform(0.9, 0.99)
        return rng.uniform(0.45, 0.55)

    def single(self, created: float, end: float, size: int) -> EventState:
        subject = self.rng.choice(SUBJECTS)
        date = datetime.fromtimestamp(end, UTC).strftime("%B %-d, %Y")
        question = f"Will {subject} by {date}?"
        event = self._event("single", question, created, end)
        price = self.open_price()
        self._market(event, question, price, self.binary_outcome(price))
        return event

    def ladder(self, created: float, end: float, size: int) -> EventState:
        rng = self.rng
        asset, _, level = rng.choice(ASSETS)
        date = datetime.fromtimestamp(end, UTC).strftime("%B %-d")
        event = self._event("ladder", f"{asset} above ___ on {date}?", created, end)
        draw, base = rng.random(), rng.uniform(0.6, 0.95)
        for i in range(size):
            strike = level * (1 + 0.05 * (i - size // 2))
            price = max(base - 0.8 * i / size, 0.01)
            title = f"${strike:,.0f}"
            market = self._market(event, f"{asset} above {title} on {date}?", price, Outcome.NO)
            market.planned = Outcome.YES if draw < price else Outcome.NO
            market.group_title, market.group_threshold = title, str(i)
        return event

    def negrisk(self, created: float, end: float, size: int) -> EventState:
        rng = self.rng
        contest = rng.choice(CONTESTS)
        event = self._event("negrisk", f"Who will win {contest}?", created, end)
        event.neg_risk_market_id = hex256(rng)[:-2] + "00"
        shares = [rng.gammavariate(0.6, 1.0) + 1e-3 for _ in range(size)]
        total = sum(shares)
        winner = rng.choices(range(size), weights=shares)[0]
        for i, share in enumerate(shares):
            who = person(rng)
            planned = Outcome.YES if i == winner else Outcome.NO
            market = self._market(event, f"Will {who} win {contest}?", share / total, planned)
            market.group_title, market.group_threshold = who, str(i)
            market.question_id = event.neg_risk_market_id[:-2] + f"{i:02x}"
            market.neg_risk_request_id = hex256(rng)
        return event

    def series(
        self, created: float, end: float, size: int, recurrence: str | None = None
    ) -> EventState:
        """An up/down market over the window before ``end`` (``recurrence``, drawn if None)."""
        rng = self.rng
        asset, code, _ = rng.choice(ASSETS[:4])
        if recurrence is None:
            recurrence = rng.choice(("5m", "5m", "15m", "1h", "4h"))
        window = SERIES_WINDOWS[recurrence]
        start = datetime.fromtimestamp(end - window, UTC).strftime("%B %-d, %-I:%M%p")
        title = f"{asset} Up or Down - {start} ET"
        event = self._event("series", title, min(created, end - window), end)
        series_slug = f"{code}-up-or-down-{recurrence}"
        series_id = str(10_000 + zlib.crc32(series_slug.encode()) % 90_000)
        event.series = {"id": series_id, "slug": series_slug, "recurrence": recurrence}
        price = rng.uniform(0.45, 0.55)
        self._market(event, title, price, Outcome.YES if rng.random() < price else Outcome.NO)
        return event

    def build(self, kind: str, created: float, end: float, size: int) -> EventState:
        builders: dict[str, Callable[[float, float, int], EventState]] = {
            "single": self.single,
            "ladder": self.ladder,
            "negrisk": self.negrisk,
            "series": self.series,
        }
        return builders[kind](created, end, size)

    def pick_kind(self, tier: int) -> tuple[str, int]:
        rng = self.rng
        if tier >= 3 and rng.random() < 0.4:
            return "series", 1
        draw = rng.random()
        if draw < 0.7:
            return "single", 1
        if draw < 0.82:
            return "ladder", rng.randint(2, 5)
        return "negrisk", rng.randint(3, 12)


def assign_protocol(rng: random.Random, market: MarketState, v2_share: float) -> None:
    """Which field publishes the trading ids, and what the other field says (if anything)."""
    trading = (market.yes_token, market.no_token)
    if rng.random() < v2_share:
        market.protocol = "v2"
        market.position_ids = trading
        market.ctf_ids = (token_id(rng), token_id(rng)) if rng.random() < CTF_IDS_SHARE else None
        return
    market.protocol = "v1"
    market.ctf_ids = trading
    market.declares_version = rng.random() >= UNDECLARED_SHARE
    if market.declares_version and rng.random() < LEG_SHARE:
        market.position_ids = (token_id(rng), token_id(rng))


def seed_past_activity(rng: random.Random, market: MarketState, now: float) -> None:
    """Volumes and a last trade for a market that traded before the simulation started."""
    tick = market.tick
    price = round(PRICE_SCALE / (1.0 + math.exp(-market.fair_x)) / tick) * tick
    price = min(max(price, tick), PRICE_SCALE - tick)
    market.ltp = [price, PRICE_SCALE - price]
    market.lts = ["BUY", "SELL"]
    market.vol_total = rng.lognormvariate(math.log(20_000.0), 1.8)
    market.vol24 = market.vol_total * rng.uniform(0.005, 0.2)
    market.vol1wk = min(market.vol_total, market.vol24 * rng.uniform(2.0, 6.0))
    market.vol_s = now
    market.fair_s = now  # the opening price is the price at the start, not at creation


def initial_events(factory: MarketFactory, now: float, markets: int) -> list[EventState]:
    """Events until ``markets`` markets exist, filling the five tiers evenly."""
    events: list[EventState] = []
    per_tier = [0] * len(TIER_HOURS)
    while factory.market_count < markets:
        tier = per_tier.index(min(per_tier))
        kind, size = factory.pick_kind(tier)
        size = min(size, markets - factory.market_count)
        if kind in ("ladder", "negrisk") and size < 2:
            kind = "single"
        end = now + factory.hours_to_close(tier) * HOUR
        age = math.exp(factory.rng.uniform(math.log(HOUR), math.log(180 * 86_400.0)))
        if kind == "series":
            age = factory.rng.uniform(60.0, 6 * HOUR)
        event = factory.build(kind, now - age, end, size)
        per_tier[tier] += len(event.markets)
        events.append(event)
    return events


def spawned_event(factory: MarketFactory, now: float) -> EventState:
    """A market listed while the simulation runs (half of them short-lived up/down series)."""
    tier = factory.rng.randrange(len(TIER_HOURS))
    kind = "series" if factory.rng.random() < 0.5 else "single"
    hours = factory.hours_to_close(4 if kind == "series" else tier)
    return factory.build(kind, now, now + hours * HOUR, 1)
