"""Rolling windows, whale impact, shard packing and lost-window bookkeeping (pure)."""

from __future__ import annotations

import asyncio
import random
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from polyfarm.markets.catalog import MarketCatalog
from polyfarm.markets.tracked import TrackedMarket
from polyfarm.polymarket.domain import MarketInfo, TokenInfo
from polyfarm.settings import Settings, TierSettings
from polyfarm.store.stream_writes import WhaleEventRow
from polyfarm.stream.connection import SessionEnd
from polyfarm.stream.coverage import Coverage
from polyfarm.stream.livebook import LiveBook
from polyfarm.stream.losses import DeltaGapLog
from polyfarm.stream.repair import Gap, GapCause
from polyfarm.stream.rolling import TokenActivity, TradeTick
from polyfarm.stream.shards import ShardPlan
from polyfarm.stream.subscriptions import Subscriptions
from polyfarm.stream.whales import ImpactTracker, impact, whale_tier

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FRAME = GapCause.UNREADABLE_FRAME
S0 = T0.timestamp()


def tick(ts: float, tier: int = 0) -> TradeTick:
    return TradeTick(ts, 0.5, 10.0, 5.0, True, tier)


# -- rolling windows ------------------------------------------------------------------------


def test_window_keeps_one_hour_and_counts_a_fill_once() -> None:
    activity = TokenActivity()
    assert activity.add_trade(tick(S0 + 0.25), b"a", 2)
    assert not activity.add_trade(tick(S0), b"a", 2)  # the same fill from the Data API (repair)
    assert activity.add_trade(tick(S0 + 0.5), b"twin", 2)  # a different fill in that second
    assert activity.add_trade(tick(S0 + 1800, tier=2), b"b", 2)
    assert activity.add_trade(tick(S0 + 900), b"c", 2)  # late, older than the newest
    assert [t.ts for t in activity.recent_trades(S0 + 1800)] == [
        S0 + 0.25,
        S0 + 0.5,
        S0 + 900,
        S0 + 1800,
    ]
    assert [t.ts for t in activity.recent_trades(S0 + 3601)] == [S0 + 900, S0 + 1800]
    assert activity.add_trade(tick(S0), b"a", 2)  # forgotten once it left the window
    assert (activity.last_trade_s, activity.last_whale_s) == (S0 + 1800, S0 + 1800)


def test_window_holds_a_fill_in_few_bytes_and_gives_them_back_when_it_empties() -> None:
    tracemalloc.start()
    try:
        activity = TokenActivity()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            assert activity.add_trade(tick(S0 + i), i.to_bytes(8, "big"), 2)
        held = tracemalloc.get_traced_memory()[0] - before
        activity.recent_trades(S0 + 9000)
        after_release = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 64 * 1000  # a tuple and a set entry per fill took about 300 bytes
    assert after_release < 200  # the emptied arrays (about 660 bytes) are released too

    for i in range(1000):
        assert activity.add_trade(tick(S0 + i), i.to_bytes(8, "big"), 2)
    assert len(activity.recent_trades(S0 + 3600 + 499.5)) == 500  # the first 500 left
    assert len(activity.recent_trades(S0 + 3600 + 999)) == 1
    assert activity.add_trade(tick(S0 + 999), (999).to_bytes(8, "big"), 2) is False
    assert activity.recent_trades(S0 + 3600 + 1000) == []
    assert activity.add_trade(tick(S0 + 5000), b"new", 2)  # a fresh window after release
    assert [t.ts for t in activity.recent_trades(S0 + 5000)] == [S0 + 5000]


def test_minute_prices_carry_forward() -> None:
    activity = TokenActivity()
    activity.note_price(S0 - 7200, 0.30)  # long before the hour
    activity.note_price(S0 + 5, 0.40)
    activity.note_price(S0 + 50, 0.41)  # last in its minute wins
    activity.note_price(S0 + 125, 0.45)
    activity.note_price(S0 + 60, 0.99)  # older minute than the current one: ignored
    prices = activity.minute_prices(S0 + 180, span=5)
    # minutes S0-2m .. S0+3m; before S0 the price of two hours ago still holds
    assert prices == [0.30, 0.30, 0.41, 0.41, 0.45, 0.45]
    assert activity.price_at(S0 + 70) == 0.41
    assert activity.price_at(S0 - 120) == 0.30
    fresh = TokenActivity()
    fresh.note_price(S0 + 125, 0.45)
    assert fresh.minute_prices(S0 + 180, span=2) == [None, 0.45, 0.45]
    assert fresh.price_at(S0) is None


# -- whales -----------------------------------------------------------------------------------


def test_whale_tiers_by_notional() -> None:
    thresholds = (500.0, 2_000.0, 10_000.0)
    assert [whale_tier(x, thresholds) for x in (499.99, 500, 1999, 2000, 10_000, 1e6)] == [
        0,
        1,
        1,
        2,
        3,
        3,
    ]


def test_impact_is_signed_by_the_whale_side() -> None:
    assert impact(0.50, 0.53, True) == pytest.approx(0.03)
    assert impact(0.50, 0.53, False) == pytest.approx(-0.03)
    assert impact(None, 0.5, True) is None


def test_impacts_come_due_at_one_and_five_minutes() -> None:
    tracker = ImpactTracker()
    event = WhaleEventRow(T0, "t", "m", b"k", 0.5, 5000, 2500, "SELL", 2, 0.50)
    tracker.watch(event, T0)
    prices = {T0 + timedelta(minutes=1): 0.48, T0 + timedelta(minutes=5): 0.45}

    def price_of(token: str, at: datetime) -> float | None:
        return prices.get(at)

    assert tracker.due(T0 + timedelta(seconds=59), price_of) == []
    (one,) = tracker.due(T0 + timedelta(minutes=2), price_of)
    assert (one.minutes, one.price_after, one.impact) == (1, 0.48, pytest.approx(0.02))
    (five,) = tracker.due(T0 + timedelta(minutes=6), price_of)
    assert (five.minutes, five.impact) == (5, pytest.approx(0.05))
    assert len(tracker) == 0


def test_tracker_is_bounded() -> None:
    tracker = ImpactTracker(capacity=1)
    event = WhaleEventRow(T0, "t", "m", b"k", 0.5, 5000, 2500, "BUY", 2, 0.5)
    tracker.watch(event, T0)
    tracker.watch(event, T0)
    assert (len(tracker), tracker.dropped) == (1, 1)


# -- shards -----------------------------------------------------------------------------------


def test_markets_are_packed_kept_in_place_and_shards_closed_when_empty() -> None:
    plan = ShardPlan(capacity=4)
    first = plan.sync({"a": ("a1", "a2"), "b": ("b1", "b2"), "c": ("c1", "c2")})
    assert [(c.shard, c.opened, c.subscribe) for c in first] == [
        (0, True, ("a1", "a2", "b1", "b2")),
        (1, True, ("c1", "c2")),
    ]
    second = plan.sync({"b": ("b1", "b2"), "c": ("c1", "c2"), "d": ("d1", "d2")})
    assert [(c.shard, c.subscribe, c.unsubscribe) for c in second] == [
        (0, ("d1", "d2"), ("a1", "a2")),
    ]
    assert plan.shard_of("c") == 1  # never moved
    third = plan.sync({"b": ("b1", "b2"), "d": ("d1", "d2")})
    assert [(c.shard, c.unsubscribe, c.closed) for c in third] == [(1, ("c1", "c2"), True)]
    assert plan.assets(0) == ["b1", "b2", "d1", "d2"]
    assert all(plan.load(s) <= 4 for s in plan.markets)


# -- coverage -----------------------------------------------------------------------------------


def test_lost_sessions_become_gaps_from_the_newest_data_to_the_next_data() -> None:
    gaps: list[Gap] = []
    coverage = Coverage(timedelta(seconds=5), gaps.append)
    coverage.shard_opened(0, T0, GapCause.RESTART)
    coverage.session_started(0)
    coverage.first_data(0, ["m1"], T0 + timedelta(seconds=2))
    assert gaps == [Gap(("m1",), T0, T0 + timedelta(seconds=7), GapCause.RESTART)]
    assert gaps[0].reason == "restart"
    newest = T0 + timedelta(seconds=100)
    coverage.session_lost(0, int(newest.timestamp() * 1000), SessionEnd.STALL)
    assert coverage.vouched_until(T0 + timedelta(hours=1), None) == newest - timedelta(seconds=5)
    coverage.session_started(0)
    coverage.session_lost(0, 0, SessionEnd.CLOSED)  # no data at all: the first loss stays open
    coverage.session_started(0)
    coverage.first_data(0, ["m1", "m2"], T0 + timedelta(seconds=300))
    assert gaps[-1] == Gap(
        ("m1", "m2"),
        newest - timedelta(seconds=5),
        T0 + timedelta(seconds=305),
        GapCause.CONNECTION_LOST,
        "stall",
    )
    assert gaps[-1].reason == "ws_stall"
    assert coverage.vouched_until(T0 + timedelta(hours=1), None) == T0 + timedelta(hours=1)


def test_the_venue_saying_nothing_moved_closes_the_window_of_a_session_without_data() -> None:
    """A connection whose markets all closed during a stall gets no data after the reconnect;
    the venue's word that nothing moved ends its window (once: data then behaves as usual)."""
    gaps: list[Gap] = []
    coverage = Coverage(timedelta(seconds=5), gaps.append)
    coverage.shard_opened(0, T0)
    coverage.session_started(0)
    coverage.first_data(0, ["m1"], T0)
    coverage.venue_quiet(0, ["m1"], T0 + timedelta(seconds=30))  # a live session: nothing to do
    newest = T0 + timedelta(seconds=60)
    coverage.session_lost(0, int(newest.timestamp() * 1000), SessionEnd.STALL)
    coverage.session_started(0)
    quiet_at = T0 + timedelta(seconds=200)
    coverage.venue_quiet(0, ["m1"], quiet_at)
    coverage.venue_quiet(0, ["m1"], quiet_at + timedelta(seconds=60))
    stalled = GapCause.CONNECTION_LOST
    assert gaps == [
        Gap(
            ("m1",),
            newest - timedelta(seconds=5),
            quiet_at + timedelta(seconds=5),
            stalled,
            "stall",
        )
    ]
    assert coverage.vouched_until(quiet_at + timedelta(minutes=5), None) == quiet_at + timedelta(
        minutes=5
    )


def test_markets_added_later_are_covered_from_their_first_snapshot() -> None:
    gaps: list[Gap] = []
    coverage = Coverage(timedelta(seconds=5), gaps.append)
    coverage.market_added("m9", T0, GapCause.NEW_MARKET, 0.0)
    coverage.snapshot_arrived("m9", T0 + timedelta(seconds=30))
    coverage.snapshot_arrived("m9", T0 + timedelta(seconds=40))  # only once
    assert gaps == [
        Gap(("m9",), T0 - timedelta(seconds=5), T0 + timedelta(seconds=35), GapCause.NEW_MARKET)
    ]


def test_markets_still_without_a_snapshot_when_the_stream_stops_are_gaps_until_then() -> None:
    gaps: list[Gap] = []
    coverage = Coverage(timedelta(seconds=5), gaps.append)
    coverage.market_added("m9", T0, "new market", 0.0)
    coverage.market_added("m8", T0 + timedelta(seconds=10), "subscribed", 0.0)
    coverage.snapshot_arrived("m8", T0 + timedelta(seconds=20))
    stop = T0 + timedelta(seconds=30)
    coverage.stream_stopped(stop)
    assert gaps[-1] == Gap(
        ("m9",), T0 - timedelta(seconds=5), stop + timedelta(seconds=5), "new market"
    )
    assert len(gaps) == 2
    assert not coverage.pending_markets


def test_a_first_start_promises_nothing_before_data_but_does_not_vouch_past_it() -> None:
    gaps: list[Gap] = []
    coverage = Coverage(timedelta(seconds=5), gaps.append)
    coverage.shard_opened(0, T0)
    later = T0 + timedelta(minutes=10)
    assert coverage.vouched_until(later, None) == T0, "no data yet: nothing vouched since T0"
    coverage.session_started(0)
    coverage.first_data(0, ["m1"], later)
    assert gaps == []
    assert coverage.vouched_until(later, None) == later
    assert coverage.vouched_until(later, T0) == T0  # a lost window not yet in feed_gaps


def test_markets_leaving_a_connection_that_is_down_take_its_window_with_them() -> None:
    gaps: list[Gap] = []
    coverage = Coverage(timedelta(seconds=5), gaps.append)
    coverage.shard_opened(0, T0)
    coverage.session_started(0)
    coverage.first_data(0, ["m1", "m2"], T0)
    lost_at = int((T0 + timedelta(seconds=60)).timestamp() * 1000)
    coverage.session_lost(0, lost_at, SessionEnd.CLOSED)
    coverage.markets_left(0, ["m2"], T0 + timedelta(seconds=90))
    coverage.shard_closed(1)  # another connection: nothing to do
    closed = GapCause.CONNECTION_LOST
    assert gaps == [
        Gap(("m2",), T0 + timedelta(seconds=55), T0 + timedelta(seconds=95), closed, "closed")
    ]
    assert gaps[0].reason == "ws_closed"
    coverage.session_started(0)
    coverage.first_data(0, ["m1"], T0 + timedelta(seconds=120))
    assert gaps[-1].markets == ("m1",)
    assert gaps[-1].start == T0 + timedelta(seconds=55)


def test_an_unreadable_frame_loses_its_connection_from_the_newest_venue_time() -> None:
    gaps: list[Gap] = []
    coverage = Coverage(timedelta(seconds=5), gaps.append)
    newest = T0 + timedelta(seconds=50)
    now = T0 + timedelta(seconds=52)
    coverage.frame_lost(["m1", "m2"], int(newest.timestamp() * 1000), now)
    assert gaps == [
        Gap(("m1", "m2"), newest - timedelta(seconds=5), now + timedelta(seconds=5), FRAME)
    ]
    # No venue time yet this session, or a venue clock ahead of ours: the window starts at now.
    coverage.frame_lost(["m1"], 0, now)
    coverage.frame_lost(["m1"], int((now + timedelta(seconds=3)).timestamp() * 1000), now)
    assert {g.start for g in gaps[1:]} == {now - timedelta(seconds=5)}


def test_a_gap_is_stored_with_its_cause_then_its_detail() -> None:
    def reason(cause: GapCause, detail: str = "") -> str:
        return Gap(("m1",), T0, T0, cause, detail).reason

    assert reason(GapCause.CONNECTION_LOST, SessionEnd.STALL.value) == "ws_stall"
    assert reason(GapCause.UNREADABLE_FRAME) == "ws_unreadable_frame"
    assert reason(GapCause.RESTART) == "restart"
    assert reason(GapCause.CLOSED_WHILE_DOWN) == "restart (closed meanwhile)"
    assert reason(GapCause.TAKEN_UP_AGAIN, "ws_closed") == "ws_closed"  # as an earlier run had it
    later = T0 + timedelta(seconds=9)
    same = Gap(("m1",), T0, T0, GapCause.RESTART).merged(
        Gap(("m2",), later, later, GapCause.RESTART)
    )
    assert same == Gap(("m1", "m2"), T0, later, GapCause.RESTART)
    mixed = Gap(("m1",), T0, T0, GapCause.RESTART).merged(Gap(("m1",), T0, T0, GapCause.SUBSCRIBED))
    assert mixed.reason == "merged (queue full)"


def test_windows_lost_to_the_stream_lose_the_captured_deltas_too() -> None:
    """A dropped connection, an unreadable frame or downtime lose a captured market's deltas
    with its fills; a market's own late start (or a fill without side) loses fills alone."""
    catalog = MarketCatalog(TierSettings())
    for market_id in ("kept", "other"):
        catalog.markets[market_id] = _closed_market(market_id, T0)
    books = {token: LiveBook(token, "") for token in ("kept-yes", "other-yes")}
    books["kept-yes"].capture_market = "kept"
    log = DeltaGapLog(books=books, catalog=catalog, pool=None, metrics=None)  # type: ignore[arg-type]
    markets = ("kept", "other", "unknown")
    for cause in (GapCause.NEW_MARKET, GapCause.SUBSCRIBED, GapCause.FILL_WITHOUT_SIDE):
        log.window_lost(Gap(markets, T0, T0, cause))
    assert log.windows == {}
    end = T0 + timedelta(seconds=10)
    log.window_lost(Gap(markets, T0, T0, GapCause.CONNECTION_LOST, "closed"))
    log.window_lost(Gap(markets, end, end, GapCause.UNREADABLE_FRAME))
    assert log.windows == {"kept": (T0, end, "ws_unreadable_frame")}


# -- markets unknown at the start -----------------------------------------------------------


class _NoBooks:
    """The ingest side of a sync in which no market is subscribed: no books to capture."""

    def __init__(self) -> None:
        self.books: dict[str, object] = {}

    def set_capture(self, capture: dict[str, str]) -> None:
        assert capture == {}

    def reseed(self, seed_of: object) -> None:
        pass  # no books, nothing to seed


def _closed_market(market_id: str, created_at: datetime) -> TrackedMarket:
    info = MarketInfo(
        market_id=market_id,
        condition_id="0x" + market_id.encode().hex().rjust(64, "0"),
        question=f"{market_id}?",
        tokens=(
            TokenInfo(index=0, outcome="Yes", token_id=f"{market_id}-yes", price=None),
            TokenInfo(index=1, outcome="No", token_id=f"{market_id}-no", price=None),
        ),
        end_date=created_at + timedelta(hours=4),
        closed=True,
        enable_order_book=True,
        tick_size=Decimal("0.01"),
        created_at=created_at,
    )
    return TrackedMarket(info=info, closed=True, tier=None, book_seed=None)


def _subscriptions(catalog: MarketCatalog, gaps: list[Gap]) -> Subscriptions:
    """Subscriptions that open no socket: what a sync decides, gaps into ``gaps``."""
    return Subscriptions(
        settings=Settings(),
        catalog=catalog,
        ingest=_NoBooks(),  # type: ignore[arg-type]
        coverage=Coverage(timedelta(seconds=5), gaps.append),
        hooks=None,  # type: ignore[arg-type]
        open_stream=None,  # type: ignore[arg-type]
        submit_gap=gaps.append,
    )


async def test_a_market_listed_after_the_start_is_wanted_from_its_listing_not_its_creation() -> (
    None
):
    """Recurring series markets are created hours before they are listed. One the stream
    first hears of mid-run is wanted from then (an hour back: a listing can trade before we
    see it), though its createdAt is older than the start; one created since the start, from
    its creation. Both closed before they could be subscribed: their windows go to repair."""
    gaps: list[Gap] = []
    catalog = MarketCatalog(TierSettings())
    catalog.markets["known"] = _closed_market("known", T0 - timedelta(days=3))
    subscriptions = _subscriptions(catalog, gaps)
    subscriptions.coverage_start = T0
    async with asyncio.TaskGroup() as group:
        await subscriptions.sync(group, T0)  # learns what the start knew
        assert gaps == []
        later = T0 + timedelta(hours=3)
        catalog.markets["series"] = _closed_market("series", T0 - timedelta(hours=2))
        catalog.markets["fresh"] = _closed_market("fresh", T0 + timedelta(minutes=30))
        await subscriptions.sync(group, later)
    end = later + timedelta(seconds=5)
    assert sorted(gaps, key=lambda g: g.markets) == [
        Gap(("fresh",), T0, end, GapCause.NEVER_SUBSCRIBED),
        Gap(("series",), later - timedelta(hours=1), end, GapCause.NEVER_SUBSCRIBED),
    ]
    assert subscriptions.wanted_since(catalog.markets["known"]) is None


def test_the_plan_s_indexes_agree_with_its_markets_through_any_syncs() -> None:
    rng = random.Random(5)
    plan = ShardPlan(capacity=10)
    universe = {
        f"m{i}": tuple(f"m{i}t{k}" for k in range(rng.choice((1, 2, 3)))) for i in range(60)
    }
    for _ in range(40):
        wanted = {m: tokens for m, tokens in universe.items() if rng.random() < 0.6}
        plan.sync(wanted)
        placed = {m: s for s, markets in plan.markets.items() for m in markets}
        assert placed.keys() == wanted.keys()
        assert all(plan.shard_of(m) == s for m, s in placed.items())
        assert all(plan.shard_of(m) is None for m in universe.keys() - wanted.keys())
        for shard, markets in plan.markets.items():
            assert plan.load(shard) == sum(len(t) for t in markets.values()) <= 10


async def test_markets_the_catalogue_forgets_leave_the_subscriptions_memory_too() -> None:
    gaps: list[Gap] = []
    catalog = MarketCatalog(TierSettings())
    subscriptions = _subscriptions(catalog, gaps)
    subscriptions.coverage_start = T0
    async with asyncio.TaskGroup() as group:
        await subscriptions.sync(group, T0)
        for n in range(50):
            catalog.markets[f"m{n}"] = _closed_market(f"m{n}", T0 + timedelta(minutes=n))
        await subscriptions.sync(group, T0 + timedelta(hours=1))
        assert len(subscriptions._considered) == len(subscriptions._discovered) == 50
        for n in range(40):
            del catalog.markets[f"m{n}"]  # as ``forget_long_closed`` drops them
        await subscriptions.sync(group, T0 + timedelta(days=2))
    assert subscriptions._considered == {f"m{n}" for n in range(40, 50)}
    assert set(subscriptions._discovered) == subscriptions._considered
    assert len(gaps) == 50  # each newcomer's window went to repair once, none again
