"""World-model tests (no sockets): determinism, structure, tiers, lifecycle, scale."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict

from polyfarm.sim.bookgen import fair_units
from polyfarm.sim.lifecycle import close_market, outcome_prices, resolve_market
from polyfarm.sim.model import MarketClosed, MarketCreated, MarketResolved, Outcome, TradeEvent
from polyfarm.sim.render_clob import clob_market
from polyfarm.sim.render_gamma import gamma_market
from polyfarm.sim.wire import PRICE_SCALE, TICK_CENT, TICK_MILLI, TICK_QUARTER
from polyfarm.sim.world import World, WorldParams

START = 1_772_366_400.0
TIERS = (48.0, 12.0, 4.0, 1.0)


def tier_of(hours: float) -> int:
    return next((i for i, low in enumerate(TIERS) if hours > low), 4)


def snapshot(world: World) -> list[tuple[object, ...]]:
    return [(m.gamma_id, m.condition_id, m.yes_token, m.end_s, m.tick) for m in world.markets]


def run(world: World, seconds: float, step: float = 1.0) -> list[object]:
    events: list[object] = []
    steps = int(seconds / step)
    for i in range(1, steps + 1):
        events.extend(world.step(START + i * step))
    return events


def test_same_seed_same_world_and_history() -> None:
    first, second = (
        World(WorldParams(seed=3, markets=300), START),
        World(WorldParams(seed=3, markets=300), START),
    )
    assert snapshot(first) == snapshot(second)
    trades = [
        [
            (t.trade.id, t.trade.price, t.trade.size, t.trade.tx_hash)
            for t in run(w, 60)
            if isinstance(t, TradeEvent)
        ]
        for w in (first, second)
    ]
    assert trades[0] == trades[1]
    assert len(trades[0]) > 10
    assert snapshot(World(WorldParams(seed=4, markets=300), START)) != snapshot(first)


def test_identifiers_and_prices_are_well_formed() -> None:
    world = World(WorldParams(seed=9, markets=500), START)
    assert len(world.markets) == 500
    assert len(world.tokens) == 1000
    assert len({m.gamma_id for m in world.markets}) == 500
    for market in world.markets:
        assert re.fullmatch(r"0x[0-9a-f]{64}", market.condition_id)
        for token in (market.yes_token, market.no_token):
            assert re.fullmatch(r"[1-9][0-9]{75,77}", token)
        assert market.tick in (TICK_MILLI, TICK_CENT, TICK_QUARTER)
    assert {m.tick for m in world.markets} == {TICK_MILLI, TICK_CENT, TICK_QUARTER}
    ids = [m.gamma_id for m in world.markets]
    assert ids == sorted(ids), "the world keeps markets in ascending id order"


def test_end_dates_fill_every_tier_evenly() -> None:
    world = World(WorldParams(seed=5, markets=2000), START)
    tiers = Counter(tier_of((m.end_s - START) / 3600) for m in world.markets)
    print("tier shares", sorted(tiers.items()))
    assert set(tiers) == {0, 1, 2, 3, 4}
    assert all(0.15 <= count / 2000 <= 0.25 for count in tiers.values())


def test_neg_risk_events() -> None:
    world = World(WorldParams(seed=5, markets=2000), START)
    neg_risk = [e for e in world.events if e.neg_risk]
    assert neg_risk
    for event in neg_risk:
        assert re.fullmatch(r"0x[0-9a-f]{62}00", event.neg_risk_market_id)
        for index, market in enumerate(event.markets):
            assert market.question_id == event.neg_risk_market_id[:-2] + f"{index:02x}"
            assert market.group_title
            assert re.fullmatch(r"0x[0-9a-f]{64}", market.neg_risk_request_id)
        total = sum(fair_units(m.fair_x) for m in event.markets) / PRICE_SCALE
        assert 0.85 <= total <= 1.15, f"YES prices of {event.slug} sum to {total}"
        assert sum(m.planned is Outcome.YES for m in event.markets) <= 1


def test_markets_close_then_resolve_and_new_ones_appear() -> None:
    params = WorldParams(
        seed=2, markets=300, spawn_rate=20 / 3600, trade_rate=0.001, quote_rate=0.002
    )
    world = World(params, START)
    events = run(world, 3 * 3600, step=60.0)
    closed = [e.market for e in events if isinstance(e, MarketClosed)]
    resolved = [e.market for e in events if isinstance(e, MarketResolved)]
    created = [e.market for e in events if isinstance(e, MarketCreated)]
    print(f"closed {len(closed)} resolved {len(resolved)} created {len(created)}")
    assert closed
    assert resolved
    assert created
    for market in closed:
        assert market.book is None
        assert market.closed_s is not None
        assert market.closed_s <= world.now_s
    for market in resolved:
        assert market.result is market.planned
        assert market.resolved_s is not None
        assert market.closed_s is not None
        assert market.resolved_s >= market.closed_s
        assert outcome_prices(market) in {("1", "0"), ("0", "1"), ("0.5", "0.5"), ("0", "0")}
    assert all(m.closed_s is None or m.closed_s <= world.now_s for m in world.markets)
    per_event: defaultdict[int, int] = defaultdict(int)
    for market in resolved:
        per_event[market.event.idx] += market.result is Outcome.YES and market.neg_risk
    assert max(per_event.values(), default=0) <= 1


def test_fifty_fifty_and_void_rendering() -> None:
    world = World(WorldParams(seed=2, markets=20), START)
    singles = [m for m in world.markets if not m.neg_risk][:2]
    for market, outcome in zip(singles, (Outcome.FIFTY, Outcome.VOID), strict=True):
        market.planned = outcome
        close_market(market, START + 10)
        resolve_market(market, START + 20)
        gamma = gamma_market(market)
        clob = clob_market(market)
        assert gamma["closed"]
        assert gamma["umaResolutionStatus"] == "resolved"
        assert not clob["accepting_orders"]
        assert not any(t["winner"] for t in clob["tokens"])
        if outcome is Outcome.FIFTY:
            assert gamma["outcomePrices"] == '["0.5", "0.5"]'
            assert clob["is_50_50_outcome"]
        else:
            assert gamma["outcomePrices"] == '["0", "0"]'
            assert not clob["is_50_50_outcome"]


def test_whale_trades_occur() -> None:
    world = World(WorldParams(seed=8, markets=400, trade_rate=0.5, quote_rate=0.5), START)
    trades = [e.trade for e in run(world, 120, step=0.5) if isinstance(e, TradeEvent)]
    notionals = [t.notional for t in trades]
    counts = {cut: sum(n >= cut for n in notionals) for cut in (500, 2000, 10_000)}
    print(f"{len(trades)} trades, whales {counts}")
    assert counts[500] > counts[2000] > 0
    assert counts[10_000] > 0


def test_twenty_thousand_markets_build_and_keep_up() -> None:
    """At 20k markets a step costs less real time than it simulates, at the configured rates."""
    params = WorldParams(seed=1, markets=20_000)
    began = time.perf_counter()
    world = World(params, START)
    built = time.perf_counter() - began
    simulated = 5.0
    began = time.perf_counter()
    events = run(world, simulated, step=0.05)
    stepped = time.perf_counter() - began
    print(f"20k markets: build {built:.2f}s; 5 simulated s at speed 1 took {stepped:.2f}s real")
    print(f"{len(events)} world events in those 5 s")
    assert len(world.markets) == 20_000
    assert len(world.tokens) == 40_000
    assert stepped < simulated, f"{simulated} simulated seconds took {stepped:.2f}s of real time"
    # Nothing is dropped to keep up: trades arrive at the configured rate (Poisson, seeded).
    trades = sum(isinstance(event, TradeEvent) for event in events)
    expected = world.trade_rate * params.markets * simulated
    assert 0.8 * expected <= trades <= 1.2 * expected, (trades, expected)
