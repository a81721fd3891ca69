"""Why fills are missing: a report for a failed ground-truth comparison.

A missing fill is one of three kinds, and each points somewhere else:

* outside every recorded ``feed_gaps`` window of its market — a hole in the coverage
  accounting (the stream vouched for a time it did not hear);
* inside a window marked repaired — the repair closed the window without getting the row
  (paging, a window edge, a trade key that differs between the feeds);
* inside a window not (yet) repaired — the stream was not quiet when ``settle`` said it was.

``Timeline`` samples the stream's public state while the test runs (when each market entered
the catalogue, was placed on a connection, was on its socket's subscription, got its first
book; when each connection started a session), so the report can put each missing fill next
to its market's life.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from polyfarm.sim import Simulator
from polyfarm.stream.connection import ShardConnection
from polyfarm.stream.service import StreamRun

from .harness import TradeIdentity, truth_identity

SAMPLE_S = 0.01
NEARBY_S = 600.0  # windows and sessions shown around a market's missing fills
LINES_PER_MARKET = 12
MARKETS_SHOWN = 12


@dataclass
class Timeline:
    """Simulated times (epoch s) of what the stream did, as seen from its public state."""

    catalogued: dict[str, float] = field(default_factory=dict)  # market → entered the catalogue
    placed: dict[str, tuple[float, int]] = field(default_factory=dict)  # → (time, shard)
    left: dict[str, float] = field(default_factory=dict)  # market → last seen on a connection
    on_socket: dict[str, float] = field(default_factory=dict)  # market → subscribed on a socket
    first_book: dict[str, float] = field(default_factory=dict)  # market → a book was ready
    sessions: dict[int, list[float]] = field(default_factory=dict)  # shard → session starts
    _seen_sessions: dict[int, int] = field(default_factory=dict)

    def sample(self, run: StreamRun, now_s: float) -> None:
        for market_id in run.deps.catalog.markets:
            self.catalogued.setdefault(market_id, now_s)
        self._sample_placement(run, now_s)
        token_market = run.deps.catalog.token_market
        for token, book in run.books.items():
            market_id = token_market.get(token)
            if book.ready and market_id is not None:
                self.first_book.setdefault(market_id, now_s)
        for shard, entry in run.subscriptions.shards.items():
            self._sample_connection(shard, entry.connection, token_market, now_s)

    def _sample_placement(self, run: StreamRun, now_s: float) -> None:
        on_connection: set[str] = set()
        for shard, markets in run.subscriptions.plan.markets.items():
            for market_id in markets:
                on_connection.add(market_id)
                self.placed.setdefault(market_id, (now_s, shard))
        for market_id in self.placed:
            if market_id not in on_connection:
                self.left.setdefault(market_id, now_s)

    def _sample_connection(
        self, shard: int, connection: ShardConnection, token_market: dict[str, str], now_s: float
    ) -> None:
        stream = connection.stream
        for token in () if stream is None else stream.asset_ids:
            market_id = token_market.get(token)
            if market_id is not None:
                self.on_socket.setdefault(market_id, now_s)
        if connection.sessions != self._seen_sessions.get(shard, 0):
            self._seen_sessions[shard] = connection.sessions
            self.sessions.setdefault(shard, []).append(now_s)


@contextlib.asynccontextmanager
async def watching(run: StreamRun, sim: Simulator) -> AsyncIterator[Timeline]:
    """A ``Timeline`` sampled every ``SAMPLE_S`` (real time) until the block ends."""
    timeline = Timeline()
    timeline.sample(run, sim.clock.now())  # before the test moves the clock

    async def sample() -> None:
        while True:
            timeline.sample(run, sim.clock.now())
            await asyncio.sleep(SAMPLE_S)

    task = asyncio.create_task(sample(), name="test:timeline")
    try:
        yield timeline
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def missing_fills_report(
    missing: Counter[TradeIdentity],
    truth: list[dict[str, Any]],
    pool: asyncpg.Pool,
    sim: Simulator,
    timeline: Timeline | None = None,
) -> str:
    """Each missing fill by market: in which recorded window it lies (repaired or not), the
    market's life on the venue and in the stream, and the source of its stored neighbours."""
    left = Counter(missing)
    by_condition: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(truth, key=lambda r: r["id"]):
        identity = truth_identity(row)
        if left[identity] > 0:
            left[identity] -= 1
            by_condition[row["condition_id"]].append(row)
    async with pool.acquire() as conn:
        market_ids = dict(
            await conn.fetch(
                "SELECT condition_id, market_id FROM markets WHERE condition_id = ANY($1)",
                list(by_condition),
            )
        )
        reports = []
        ranked = sorted(by_condition.items(), key=lambda kv: -len(kv[1]))
        for condition, fills in ranked[:MARKETS_SHOWN]:
            market_id = market_ids.get(condition)
            reports.append(await _market_report(conn, sim, timeline, condition, market_id, fills))
    kinds = Counter(kind for report in reports for kind in report.kinds)
    head = (
        f"{sum(missing.values())} fills missing in {len(by_condition)} markets "
        f"(of those shown: {dict(kinds)})"
    )
    more = len(by_condition) - MARKETS_SHOWN
    tail = [f"... and {more} more markets"] if more > 0 else []
    return "\n".join([head, *(line for r in reports for line in r.lines), *tail])


@dataclass
class _MarketReport:
    lines: list[str]
    kinds: list[str]


async def _market_report(
    conn: asyncpg.Connection,
    sim: Simulator,
    timeline: Timeline | None,
    condition: str,
    market_id: str | None,
    fills: list[dict[str, Any]],
) -> _MarketReport:
    gaps = await conn.fetch(
        "SELECT id, gap_start, gap_end, reason, repaired FROM feed_gaps"
        " WHERE stream = 'ws_trades' AND (market_id = $1 OR market_id IS NULL)"
        " ORDER BY gap_start",
        market_id,
    )
    lines = [f"market {market_id} ({condition[:12]}…): {len(fills)} missing"]
    span = (fills[0]["timestamp_ms"] / 1000 - NEARBY_S, fills[-1]["timestamp_ms"] / 1000 + NEARBY_S)
    lines.append("  " + _lifecycle(sim, timeline, condition, market_id, span))
    kinds = []
    for fill in fills[:LINES_PER_MARKET]:
        kind, where = _where(fill, gaps)
        kinds.append(kind)
        neighbours = await _neighbours(conn, fill)
        lines.append(
            f"  {_at(fill['timestamp_ms'] / 1000)} {fill['token_id'][:10]}… {where}; {neighbours}"
        )
    kinds += [_where(fill, gaps)[0] for fill in fills[LINES_PER_MARKET:]]
    if len(fills) > LINES_PER_MARKET:
        lines.append(f"  ... {len(fills) - LINES_PER_MARKET} more: {dict(Counter(kinds))}")
    nearby = [g for g in gaps if _overlaps(g, span)]
    lines.append("  windows nearby: " + ("; ".join(_window(g) for g in nearby) or "none"))
    return _MarketReport(lines, kinds)


def _where(fill: dict[str, Any], gaps: Iterable[asyncpg.Record]) -> tuple[str, str]:
    """Which recorded window holds the fill: the Data API walks whole seconds of it."""
    second = fill["timestamp_ms"] // 1000
    holding = [
        g
        for g in gaps
        if int(g["gap_start"].timestamp()) <= second <= int(g["gap_end"].timestamp())
    ]
    if not holding:
        return "outside any window", "OUTSIDE every recorded window"
    repaired = [g for g in holding if g["repaired"]]
    kind = "in a repaired window" if repaired else "in an unrepaired window"
    return kind, f"in {', '.join(_window(g) for g in holding)}"


def _overlaps(gap: asyncpg.Record, span: tuple[float, float]) -> bool:
    return gap["gap_start"].timestamp() <= span[1] and gap["gap_end"].timestamp() >= span[0]


def _window(gap: asyncpg.Record) -> str:
    state = "repaired" if gap["repaired"] else "UNREPAIRED"
    start, end = gap["gap_start"].timestamp(), gap["gap_end"].timestamp()
    return f"#{gap['id']} [{_at(start)}, {_at(end)}] {gap['reason']} {state}"


async def _neighbours(conn: asyncpg.Connection, fill: dict[str, Any]) -> str:
    at = datetime.fromtimestamp(fill["timestamp_ms"] / 1000, UTC)
    before = await conn.fetchrow(
        "SELECT ts, source FROM trades WHERE token_id = $1 AND ts <= $2 ORDER BY ts DESC LIMIT 1",
        fill["token_id"],
        at,
    )
    after = await conn.fetchrow(
        "SELECT ts, source FROM trades WHERE token_id = $1 AND ts > $2 ORDER BY ts LIMIT 1",
        fill["token_id"],
        at,
    )
    return f"stored before: {_stored(before)}, after: {_stored(after)}"


def _stored(row: asyncpg.Record | None) -> str:
    return "none" if row is None else f"{_at(row['ts'].timestamp())} {row['source']}"


def _lifecycle(
    sim: Simulator,
    timeline: Timeline | None,
    condition: str,
    market_id: str | None,
    span: tuple[float, float],
) -> str:
    market = sim.world.by_condition.get(condition)
    venue = "unknown to the simulator"
    if market is not None:
        closed = "open" if market.closed_s is None else f"closed {_at(market.closed_s)}"
        venue = f"venue: created {_at(market.created_s)}, {closed}"
    if timeline is None or market_id is None:
        return venue
    placed = timeline.placed.get(market_id)
    shard = None if placed is None else placed[1]
    stream = (
        f"stream: catalogued {_maybe(timeline.catalogued.get(market_id))}, "
        f"placed {_maybe(None if placed is None else placed[0])} on shard {shard}, "
        f"on its socket {_maybe(timeline.on_socket.get(market_id))}, "
        f"first book {_maybe(timeline.first_book.get(market_id))}, "
        f"left {_maybe(timeline.left.get(market_id))}"
    )
    starts = [] if shard is None else timeline.sessions.get(shard, [])
    near = ", ".join(_at(s) for s in starts if span[0] <= s <= span[1]) or "none"
    sessions = f"shard {shard}: {len(starts)} sessions, nearby ones began {near}"
    return f"{venue}; {stream}; {sessions}"


def _maybe(at: float | None) -> str:
    return "never" if at is None else _at(at)


def _at(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%H:%M:%S.%f")[:-3]
