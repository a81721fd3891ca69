"""The two market mixes (no sockets): the venue's tier shares and heavy-tailed activity, its
determinism, and the uniform mix exactly as it was."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from click.testing import CliRunner

from polyfarm.sim import SimConfig
from polyfarm.sim.command import sim_command
from polyfarm.sim.mix import Mix
from polyfarm.sim.model import BookUpdate, MarketClosed, MarketCreated, TradeEvent, WorldEvent
from polyfarm.sim.server import world_params
from polyfarm.sim.venue import TIER_SHARES, tier_of
from polyfarm.sim.world import World, WorldParams

START = 1_772_366_400.0
HOUR = 3600.0


def tier_shares(world: World) -> list[float]:
    counts = Counter(tier_of((m.end_s - world.now_s) / HOUR) for m in world.open_markets())
    total = sum(counts.values())
    return [counts[tier] / total for tier in range(5)]


def assert_near_targets(shares: list[float], tolerance: tuple[float, float]) -> None:
    """T0 within the first tolerance (points as fractions), T1..T4 within the second."""
    for tier, (share, target) in enumerate(zip(shares, TIER_SHARES, strict=True)):
        allowed = tolerance[0] if tier == 0 else tolerance[1]
        assert abs(share - target) <= allowed, f"T{tier}: {share:.3f} vs {target}"


def run(world: World, seconds: float, step: float) -> list[WorldEvent]:
    events: list[WorldEvent] = []
    for i in range(1, int(seconds / step) + 1):
        events.extend(world.step(world.start_s + i * step))
    return events


def unwatched(world: World) -> World:
    """Skip the WebSocket book hashes (no one listens here); the draws are the same."""
    world.watch = lambda market: False
    return world


def venue(markets: int, seed: int = 1, **rates: float) -> World:
    return unwatched(World(WorldParams(seed=seed, markets=markets, mix=Mix.VENUE, **rates), START))


@pytest.mark.parametrize(("markets", "tolerance"), [(20_000, (0.02, 0.01)), (1_000, (0.03, 0.02))])
def test_venue_tier_shares_match_the_venue(markets: int, tolerance: tuple[float, float]) -> None:
    world = venue(markets)
    shares = tier_shares(world)
    print(f"{markets} markets, open by tier:", [f"{s:.1%}" for s in shares])
    assert len(world.open_markets()) == markets
    assert_near_targets(shares, tolerance)


def test_venue_tier_shares_hold_as_simulated_time_passes() -> None:
    """Markets drift into nearer tiers and close; new ones are listed far out, at the rate that
    keeps the mix (and the count) steady."""
    world = venue(20_000, trade_rate=0.0, quote_rate=0.0)
    events = run(world, 6 * HOUR, step=60.0)
    closed = sum(isinstance(e, MarketClosed) for e in events)
    created = sum(isinstance(e, MarketCreated) for e in events)
    shares = tier_shares(world)
    print(f"after 6 h: closed {closed}, listed {created}, shares", [f"{s:.1%}" for s in shares])
    assert closed > 1_500  # the near tiers turned over several times
    assert 0.9 * closed <= created <= 1.1 * closed
    assert abs(len(world.open_markets()) - 20_000) <= 600
    assert_near_targets(shares, (0.02, 0.01))
    past_end = [m for m in world.open_markets() if m.end_s < world.now_s]
    assert past_end, "some markets trade on past their end date (games, pending outcomes)"


def test_venue_trades_concentrate_in_few_markets() -> None:
    """Over a simulated hour the busiest 10 % of markets carry most trades (quotes are off to
    keep this fast; books drained by trades only lower the busiest markets' counts)."""
    world = venue(5_000, quote_rate=0.0, spawn_rate=0.0)
    trades = Counter(
        e.trade.market.idx for e in run(world, HOUR, 10.0) if isinstance(e, TradeEvent)
    )
    per_market = sorted((trades[m.idx] for m in world.open_markets()), reverse=True)
    top = sum(per_market[: len(per_market) // 10]) / sum(per_market)
    idle = sum(count == 0 for count in per_market) / len(per_market)
    print(f"{sum(per_market)} trades; top 10 % of markets {top:.1%}; no trade {idle:.1%}")
    assert top >= 0.6
    assert idle >= 0.4


def test_venue_has_many_quiet_books() -> None:
    """A sizeable share of markets sees no book change for ten simulated minutes, and many for
    a whole hour, while the mean rate stays the configured one."""
    world = venue(400, trade_rate=0.0, spawn_rate=0.0)
    events = [e for e in run(world, HOUR, step=1.0) if isinstance(e, BookUpdate)]
    open_markets = world.open_markets()
    first = Counter(e.market.idx for e in events if e.ts_ms < (START + 600) * 1000)
    hour = Counter(e.market.idx for e in events)
    quiet_10min = sum(first[m.idx] == 0 for m in open_markets) / len(open_markets)
    quiet_hour = sum(hour[m.idx] == 0 for m in open_markets) / len(open_markets)
    mean_rate = len(events) / len(open_markets) / HOUR
    print(f"quiet for 10 min {quiet_10min:.1%}, for 1 h {quiet_hour:.1%}; rate {mean_rate:.3f}")
    assert quiet_10min >= 0.3
    assert quiet_hour >= 0.15
    assert 0.07 <= mean_rate <= 0.13  # quote_rate 0.1; a few maker actions change nothing


def fingerprint(world: World) -> list[tuple[object, ...]]:
    return [
        (m.gamma_id, m.yes_token, m.end_s, m.linger_s, m.activity, m.event.kind)
        for m in world.markets
    ]


def event_trace(events: list[WorldEvent]) -> list[tuple[object, ...]]:
    trace: list[tuple[object, ...]] = []
    for event in events:
        market = getattr(event, "market", None)
        detail = event.trade.tx_hash if isinstance(event, TradeEvent) else None
        trace.append((type(event).__name__, event.ts_ms, market and market.idx, detail))
    return trace


def test_venue_worlds_are_deterministic_by_seed() -> None:
    first, second, other = venue(800, seed=4), venue(800, seed=4), venue(800, seed=5)
    assert fingerprint(first) == fingerprint(second)
    assert fingerprint(first) != fingerprint(other)
    trace = event_trace(run(first, 60.0, 0.5))
    assert trace == event_trace(run(second, 60.0, 0.5))
    assert any(kind == "TradeEvent" for kind, *_ in trace)


def uniform_digest(world: World, seconds: int) -> str:
    digest = hashlib.sha256()
    for m in world.markets:
        digest.update(f"{m.gamma_id}|{m.yes_token}|{m.end_s!r}|{m.weight!r}|{m.tick}|".encode())
    for i in range(1, seconds + 1):
        for e in world.step(START + i):
            market = getattr(e, "market", None)
            digest.update(f"{type(e).__name__}|{e.ts_ms}|{market and market.idx}|".encode())
            if isinstance(e, TradeEvent):
                digest.update(f"{e.trade.price}|{e.trade.size}|{e.trade.tx_hash}".encode())
    return digest.hexdigest()[:16]


def test_uniform_mix_is_unchanged() -> None:
    """The default is the uniform mix, event for event as before the venue mix existed (digest
    taken from the simulator before the change), every tier (almost) equally full; the counts
    are those the simulator gave before the change."""
    assert SimConfig().mix is Mix.UNIFORM
    world = unwatched(World(WorldParams(seed=3, markets=2000, spawn_rate=0.05), START))
    assert uniform_digest(world, 120) == "2f747f72a85281ad"
    params = world_params(SimConfig(markets=20_000))
    assert (params.mix, params.trade_rate, params.quote_rate) == (Mix.UNIFORM, 0.01, 0.1)
    assert params.spawn_rate == pytest.approx(400 / 3600)
    counts = Counter(tier_of((m.end_s - START) / HOUR) for m in World(params, START).markets)
    assert [counts[tier] for tier in range(5)] == [4000, 3998, 3998, 4006, 3998]


def test_config_and_cli_pick_a_mix() -> None:
    config = SimConfig(markets=20_000, mix="venue")  # type: ignore[arg-type]
    assert config.mix is Mix.VENUE
    params = world_params(config)
    assert (params.mix, params.trade_rate, params.quote_rate) == (Mix.VENUE, 0.001, 0.1)
    assert 400 <= params.spawn_rate * 3600 <= 480  # ≈ 2.2 % of the markets an hour
    assert world_params(SimConfig(mix=Mix.VENUE, trade_rate=0.02)).trade_rate == 0.02
    with pytest.raises(ValueError, match="mix"):
        SimConfig(mix="busy")  # type: ignore[arg-type]
    result = CliRunner().invoke(sim_command, ["--mix", "busy"])
    assert result.exit_code != 0
    assert "uniform" in result.output
    assert "venue" in result.output
