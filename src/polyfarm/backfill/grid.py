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

The first round of a farm only marks where it starts looking: the minutes before its first
start are the first-start backfill's business, not downtime.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from polyfarm.store.history_writes import HistoryPointRow, store_history_points
from polyfarm.store.keys import TokenKeys
from polyfarm.store.stream_writes import GapRecord, insert_gaps

log = get_logger(__name__)

STATE_NAME = "minute_grid"
GAP_STREAM = "prices"
GAP_REASON = "collector down (no price cycle)"
FINEST = (MINUTE_S,)


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
        keys: TokenKeys | None = None,
    ) -> None:
        self._pool = pool
        self._fetcher = fetcher
        self._clock = clock
        self._settle_s = settle_s
        self._lookback = lookback
        self._job = job
        self._cadence_s = cadence_s
        self._keys = keys or TokenKeys()

    async def round(self) -> GridReport:
        now = self._clock()
        now_s = int(now.timestamp())
        until = floor_to(int(now_s - self._settle_s), MINUTE_S)
        report = GridReport()
        async with self._pool.acquire() as conn:
            since = await self._checked_until(conn, until)
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

    async def _checked_until(self, conn: asyncpg.Connection, until: int) -> int | None:
        """Where the last round stopped; None on the first round (which starts the watch)."""
        found = await conn.fetchval(
            "SELECT checked_until FROM grid_repair_state WHERE name = $1", STATE_NAME
        )
        if found is None:
            await _set_checked_until(conn, until)
            return None
        return int(found.timestamp())

    async def _repair(self, span: Span, now_s: int, report: GridReport) -> None:
        async with self._pool.acquire() as conn:
            tokens = await open_tokens(conn, span)
        gaps: list[tuple[GapRecord, str | None]] = []
        rows: list[HistoryPointRow] = []
        balance = RouteBalance()
        for token in tokens:
            life = life_span(span, token.born_s, token.closed_s, now_s)
            if life is None:
                continue
            prefer = balance.choose(life, now_s)
            filled = await self._fetcher.fill(
                token.token_id, token.market_id, life, now_s, prefer, FINEST
            )
            report.requests += filled.attempts
            rows.extend(filled.rows)
            missing = minutes_in(filled.missing)
            report.unrepairable_minutes += missing
            report.filled_minutes += minutes_in([life]) - missing
            why = unrepairable_reason(life, now_s, filled.failures) if missing else None
            record = GapRecord(GAP_STREAM, token.token_id, token.market_id, *_moments(life),
                               GAP_REASON)  # fmt: skip
            gaps.append((record, why))
        report.rows += await store_history_points(self._pool, self._keys, rows)
        async with self._pool.acquire() as conn:
            await _record_gaps(conn, gaps)


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
) -> None:
    """One row per token's span: repaired when filled, else with why it cannot be."""
    if not gaps:
        return
    async with conn.transaction():
        ids = await insert_gaps(conn, [record for record, _ in gaps])
        await conn.executemany(
            "UPDATE feed_gaps SET repaired = $2, unrepairable = $3 WHERE id = $1",
            [(gap_id, why is None, why) for gap_id, (_, why) in zip(ids, gaps, strict=True)],
        )


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
