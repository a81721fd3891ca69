"""The minute grid's own repair: minutes the farm recorded no price in are filled from the
venue's 1-minute price history (a maintenance job of the daemon).

Each round looks at the minutes since the last round looked (``grid_repair_state``), up to
``settle_s`` ago (the venue's newest minute may not be served yet), at most ``lookback``
back. The price collector's successful cycles (its ``task_runs``, the heartbeats behind
``collector_health``) each vouch for one cadence from their start; a minute no cycle vouches
for is downtime: the collector was stopped, crashed, cut off or failing. For every market
open in a downtime span, each token's span is asked from the venue at 1 minute, through both
routes; what the venue serves goes into ``history_points`` and each token's span becomes a
``feed_gaps`` row (stream ``prices``): repaired when every minute was filled, else left
unrepaired with ``unrepairable`` saying why (typically: older than the 1-minute grain is kept).

The watch starts with the price collector's first successful cycle: the minutes before it are
the first-start backfill's business, not downtime. (Starting it at the job's first round
instead, before a venue-sized first metadata scan let the first price cycle run, recorded the
minutes in between as downtime for every token: 894 ``feed_gaps`` rows a minute over an hour's
soak, and a repair of 40,000 tokens.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from polyfarm.backfill.fetch import HistoryFetcher
from polyfarm.backfill.plan import (
    DATA_API_RETENTION_S,
    MINUTE_S,
    RouteBalance,
    Span,
    ceil_to,
    floor_to,
    life_span,
    merge,
    minutes_in,
    subtract,
)
from polyfarm.clock import Clock
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.store.history_writes import HistoryBatch, store_history_points
from polyfarm.store.keys import TokenKeys
from polyfarm.store.stream_writes import GapRecord

log = get_logger(__name__)

STATE_NAME = "minute_grid"
GAP_STREAM = "prices"
GAP_REASON = "collector down (no price cycle)"
FINEST = (MINUTE_S,)
FLUSH_ROWS = 20_000


@dataclass(frozen=True)
class OpenToken:
    token_id: str
    market_id: str
    born_s: int | None
    closed_s: int | None


@dataclass
class GridReport:
    down_spans: list[Span] = field(default_factory=list)
    filled_minutes: int = 0
    unrepairable_minutes: int = 0
    rows: int = 0
    requests: int = 0


def down_spans(window: Span, heartbeats: Sequence[int], cadence_s: float) -> list[Span]:
    """Whole minutes of ``window`` that no price cycle vouches for (pure). A successful cycle
    that started at ``t`` vouches for ``[t, t + cadence)``; spans are rounded inwards to whole
    minutes, so cycles that drift by less than a minute leave no hole."""
    vouched = merge((beat, beat + int(cadence_s)) for beat in heartbeats)
    return [
        (start, end)
        for start, end in (
            (ceil_to(s, MINUTE_S), floor_to(e, MINUTE_S)) for s, e in subtract(window, vouched)
        )
        if end > start
    ]


def unrepairable_reason(span: Span, now_s: int, failures: Sequence[str]) -> str:
    """Why the venue could not fill ``span`` at 1 minute (pure)."""
    notes: list[str] = []
    keep = DATA_API_RETENTION_S[MINUTE_S]
    if keep is not None and span[1] <= now_s - keep:
        notes.append(f"older than the Data API keeps 1-minute points ({keep // 86_400} days)")
    notes.extend(dict.fromkeys(failures))
    base = "the venue served no 1-minute price for these minutes"
    return f"{base} ({'; '.join(notes)})" if notes else base


class GridRepair:
    """``await GridRepair(...).round()`` once per maintenance interval."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        fetcher: HistoryFetcher,
        clock: Clock,
        settle_s: float,
        lookback: timedelta,
        job: str,
        cadence_s: float,
        concurrency: int = 8,
        keys: TokenKeys | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._pool = pool
        self._fetcher = fetcher
        self._clock = clock
        self._settle_s = settle_s
        self._lookback = lookback
        self._job = job
        self._cadence_s = cadence_s
        self._concurrency = max(1, concurrency)
        self._metrics = metrics
        self._flush_lock = asyncio.Lock()
        self._keys = keys or TokenKeys()

    async def round(self) -> GridReport:
        now = self._clock()
        now_s = int(now.timestamp())
        until = floor_to(int(now_s - self._settle_s), MINUTE_S)
        report = GridReport()
        async with self._pool.acquire() as conn:
            since = await self._checked_until(conn)
            if since is None or since >= until:
                return report
            window = (max(since, floor_to(int(now_s - self._lookback.total_seconds()), 60)), until)
            beats = await _heartbeats(conn, self._job, window, self._cadence_s)
        report.down_spans = down_spans(window, beats, self._cadence_s)
        for span in report.down_spans:
            await self._repair(span, now_s, report)
        async with self._pool.acquire() as conn:
            await _set_checked_until(conn, until)
        if report.down_spans:
            log.info(
                "minute grid repaired",
                spans=len(report.down_spans),
                filled_minutes=report.filled_minutes,
                unrepairable_minutes=report.unrepairable_minutes,
            )
        return report

    async def _checked_until(self, conn: asyncpg.Connection) -> int | None:
        """Where the last round stopped; before the first round, the minute of the price
        collector's first successful cycle; None while it has had none (nothing to watch)."""
        found = await conn.fetchval(
            "SELECT checked_until FROM grid_repair_state WHERE name = $1", STATE_NAME
        )
        if found is not None:
            return int(found.timestamp())
        first = await conn.fetchval(
            "SELECT min(started_at) FROM task_runs WHERE task_name = $1 AND status = 'success'",
            self._job,
        )
        if first is None:
            return None
        watch_from = floor_to(int(first.timestamp()), MINUTE_S)
        await _set_checked_until(conn, watch_from)
        return watch_from

    async def _repair(self, span: Span, now_s: int, report: GridReport) -> None:
        """Every open token's part of ``span``, ``concurrency`` tokens at a time; rows and gaps
        stored every ``FLUSH_ROWS`` rows (a long outage is a backfill of its own)."""
        async with self._pool.acquire() as conn:
            tokens = await open_tokens(conn, span)
        work = _SpanWork(span, now_s, report)
        todo = iter(tokens)
        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._concurrency, len(tokens))):
                group.create_task(self._worker(todo, work))
        await self._flush(work)

    async def _worker(self, todo: Iterator[OpenToken], work: _SpanWork) -> None:
        for token in todo:
            await self._repair_token(token, work)
            if work.points >= FLUSH_ROWS:
                await self._flush(work)

    async def _repair_token(self, token: OpenToken, work: _SpanWork) -> None:
        life = life_span(work.span, token.born_s, token.closed_s, work.now_s)
        if life is None:
            return
        prefer = work.balance.choose(life, work.now_s)
        filled = await self._fetcher.fill(
            token.token_id, token.market_id, life, work.now_s, prefer, FINEST
        )
        report = work.report
        report.requests += filled.attempts
        missing = minutes_in(filled.missing)
        report.unrepairable_minutes += missing
        report.filled_minutes += minutes_in([life]) - missing
        why = unrepairable_reason(life, work.now_s, filled.failures) if missing else None
        work.batches.extend(filled.batches)
        work.points += filled.points
        work.gaps.append(
            (GapRecord(GAP_STREAM, token.token_id, token.market_id, *_moments(life), GAP_REASON),
             why)
        )  # fmt: skip

    async def _flush(self, work: _SpanWork) -> None:
        """The rows first, then the gaps that say they are filled."""
        async with self._flush_lock:
            batches, work.batches, work.points = work.batches, [], 0
            gaps, work.gaps = work.gaps, []
            work.report.rows += await store_history_points(self._pool, self._keys, batches)
            async with self._pool.acquire() as conn:
                self._count(await _record_gaps(conn, gaps))

    def _count(self, repaired: Sequence[bool]) -> None:
        """The holes recorded, as the trade repair counts its windows: detected, then repaired
        or unrepaired (the alert on unrepaired holes covers the price grid too)."""
        if self._metrics is None or not repaired:
            return
        counter = self._metrics.feed_gaps
        counter.labels(GAP_STREAM, "detected").inc(len(repaired))
        counter.labels(GAP_STREAM, "repaired").inc(sum(repaired))
        counter.labels(GAP_STREAM, "unrepaired").inc(len(repaired) - sum(repaired))


@dataclass
class _SpanWork:
    """One downtime span's repair in progress."""

    span: Span
    now_s: int
    report: GridReport
    balance: RouteBalance = field(default_factory=RouteBalance)
    batches: list[HistoryBatch] = field(default_factory=list)
    points: int = 0
    gaps: list[tuple[GapRecord, str | None]] = field(default_factory=list)


async def open_tokens(conn: asyncpg.Connection, span: Span) -> list[OpenToken]:
    """Tokens of markets stored as open during any part of ``span``."""
    rows = await conn.fetch(
        "SELECT t.token_id, t.market_id, m.start_date, m.closed_time FROM tokens t "
        "JOIN markets m USING (market_id) "
        "WHERE (NOT m.closed OR m.closed_time > $1) AND (m.start_date IS NULL "
        "OR m.start_date < $2) ORDER BY t.market_id, t.outcome_index",
        *_moments(span),
    )
    return [
        OpenToken(
            r["token_id"],
            r["market_id"],
            None if r["start_date"] is None else int(r["start_date"].timestamp()),
            None if r["closed_time"] is None else int(r["closed_time"].timestamp()),
        )
        for r in rows
    ]


async def _heartbeats(
    conn: asyncpg.Connection, job: str, window: Span, cadence_s: float
) -> list[int]:
    """Starts of the price collector's successful cycles that vouch for part of ``window``."""
    start, end = _moments(window)
    rows = await conn.fetch(
        "SELECT started_at FROM task_runs WHERE task_name = $1 AND status = 'success' "
        "AND started_at >= $2 AND started_at < $3",
        job,
        start - timedelta(seconds=cadence_s),
        end,
    )
    return [int(r["started_at"].timestamp()) for r in rows]


async def _record_gaps(
    conn: asyncpg.Connection, gaps: Sequence[tuple[GapRecord, str | None]]
) -> list[bool]:
    """One row per token's span: repaired when filled, else with why it cannot be. A span
    recorded already (a round cut short and run again) is not recorded twice. Returns whether
    each row recorded now is repaired."""
    if not gaps:
        return []
    columns = list(zip(*((*record, why is None, why) for record, why in gaps), strict=True))
    rows = await conn.fetch(
        """
        INSERT INTO feed_gaps (stream, token_id, market_id, gap_start, gap_end, reason,
                               repaired, unrepairable)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                             $5::timestamptz[], $6::text[], $7::boolean[], $8::text[])
            AS g(stream, token_id, market_id, gap_start, gap_end, reason, repaired, why)
        WHERE NOT EXISTS (
            SELECT 1 FROM feed_gaps f
            WHERE f.token_id = g.token_id AND f.gap_start = g.gap_start
              AND f.gap_end = g.gap_end AND f.stream = g.stream)
        RETURNING repaired
        """,
        *(list(column) for column in columns),
    )
    return [r["repaired"] for r in rows]


async def _set_checked_until(conn: asyncpg.Connection, until: int) -> None:
    await conn.execute(
        "INSERT INTO grid_repair_state (name, checked_until) VALUES ($1, $2) "
        "ON CONFLICT (name) DO UPDATE SET checked_until = excluded.checked_until, "
        "updated_at = now()",
        STATE_NAME,
        datetime.fromtimestamp(until, UTC),
    )


def _moments(span: Span) -> tuple[datetime, datetime]:
    return datetime.fromtimestamp(span[0], UTC), datetime.fromtimestamp(span[1], UTC)
