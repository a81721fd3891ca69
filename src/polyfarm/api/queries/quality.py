"""Reads behind ``/api/data-quality``: expected against stored snapshots, gaps, stale markets.

**Expected** counts cadence slots. A token is expected once per slot of its cadence (slots
are aligned to the epoch, as the collectors stamp them) from its first stored snapshot until its
market closed (or its last snapshot, when the collector learnt of the close later), and at the
latest until one cadence before now, so that a cycle still running is not a hole. Markets are
grouped by their tier *now*: order-book cadences follow the tier, so a market that changed tier
within the window is judged at its new cadence. A market never stored at all has nothing
expected here; it is listed among the stale markets instead.

**Unchanged** (order books only): the writers skip a snapshot equal to the token's previous one
(``markets.unchanged``), so a slot without a row is not necessarily a hole. It counts as
unchanged when it lies after a stored row of the token, before that row's keyframe window ends
(a row is written in every window whatever happens) and while the row's writer was running and
covering: for both writers, the REST book collector's cycles (``task_runs``) went on without a
failure or a pause of three ticks (they run whenever the daemon does); for the stream's rows
(``source = ws``), also no ``ws_*`` feed gap of the token, its market or the whole stream
overlaps it. **Missing** is what is expected and neither stored nor unchanged. A row that a
running collector lost without a trace would count as unchanged until its keyframe window ends;
no table records skipped slots.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from polyfarm.api.schemas import (
    Coverage,
    CoverageCell,
    FeedGap,
    Gaps,
    GapSummary,
    StaleMarket,
    TierCoverage,
)
from polyfarm.settings import Settings

Stream = Literal["prices", "orderbooks"]
STREAM_TABLES: dict[Stream, str] = {
    "prices": "price_snapshots",
    "orderbooks": "orderbook_snapshots",
}

# $1 window start (on the hour), $2 now, $3 cadence by tier (index 1: closed, 2..6: T0..T4),
# $4 whether closed markets count. One template per stream table (fixed names).
_EXPECTED = """
WITH spans AS (
    SELECT m.tier, m.market_id, e.every_s,
           greatest(f.first_ts, $1) AS a,
           least(CASE WHEN NOT m.closed THEN 'infinity'
                      ELSE greatest(coalesce(m.closed_time, m.updated_at),
                                    (SELECT s.ts FROM {table} s
                                     WHERE s.token_sid = k.token_sid
                                     ORDER BY s.ts DESC LIMIT 1)
                                    + make_interval(secs => e.every_s)) END,
                 $2::timestamptz - make_interval(secs => e.every_s)) AS b
    FROM markets m
    JOIN tokens t USING (market_id)
    LEFT JOIN token_keys k USING (token_id)
    CROSS JOIN LATERAL (SELECT ($3::float8[])[coalesce(m.tier, -1) + 2] AS every_s) e
    CROSS JOIN LATERAL (SELECT s.ts AS first_ts FROM {table} s
                        WHERE s.token_sid = k.token_sid ORDER BY s.ts LIMIT 1) f
    WHERE (NOT m.closed OR ($4::boolean AND coalesce(m.closed_time, m.updated_at) >= $1))
),
hours AS (SELECT generate_series($1::timestamptz, $2::timestamptz, INTERVAL '1 hour') AS hour)
SELECT h.hour, s.tier, count(DISTINCT s.market_id) AS markets,
       sum(ceil(extract(epoch FROM least(s.b, h.hour + INTERVAL '1 hour')) / s.every_s)
           - ceil(extract(epoch FROM greatest(s.a, h.hour)) / s.every_s))::bigint AS expected
FROM spans s JOIN hours h ON s.a < h.hour + INTERVAL '1 hour' AND s.b > h.hour
GROUP BY GROUPING SETS ((h.hour, s.tier), (s.tier))
"""

_ACTUAL = """
SELECT time_bucket(INTERVAL '1 hour', s.ts) AS hour, m.tier, count(*) AS actual
FROM {table} s JOIN markets m USING (market_id)
WHERE s.ts >= $1::timestamptz
  AND s.ts < $2::timestamptz - make_interval(secs => ($3::float8[])[coalesce(m.tier, -1) + 2])
  AND (NOT m.closed OR $4::boolean)
GROUP BY 1, 2
"""

# $1 window start, $2 now, $3 cadences by tier, $4 keyframe seconds, $5 REST collector tick.
# Silences: from one slot after a stored row to the next row, the end of the row's keyframe
# window, or one cadence before now, whichever is first; counted when covered (see above).
_UNCHANGED = """
WITH runs AS (
    SELECT started_at, completed_at, status FROM task_runs
    WHERE task_name = 'orderbooks'
      AND started_at >= $1::timestamptz - make_interval(secs => $4 + 3 * $5)
      AND started_at <= $2
),
paused AS (
    SELECT prev AS a, started_at AS b
    FROM (SELECT started_at, lag(started_at) OVER (ORDER BY started_at) AS prev
          FROM runs WHERE status = 'success') r
    WHERE started_at - prev > make_interval(secs => 3 * $5)
    UNION ALL
    SELECT started_at, coalesce(completed_at, $2) FROM runs WHERE status <> 'success'
    UNION ALL
    SELECT '-infinity'::timestamptz, coalesce(min(started_at), 'infinity')
    FROM runs WHERE status = 'success'
    UNION ALL
    SELECT coalesce(max(started_at) + make_interval(secs => 3 * $5), '-infinity'), 'infinity'
    FROM runs WHERE status = 'success'
),
stored AS (
    SELECT s.token_id, s.market_id, s.source, s.ts,
           lead(s.ts) OVER (PARTITION BY s.token_id ORDER BY s.ts) AS next_ts
    FROM {table} s WHERE s.ts >= $1::timestamptz - make_interval(secs => $4) AND s.ts < $2
),
silences AS (
    SELECT m.tier, r.market_id, r.token_id, r.source, e.every_s,
           r.ts + make_interval(secs => e.every_s) AS a,
           least(coalesce(r.next_ts, 'infinity'),
                 to_timestamp((floor(extract(epoch FROM r.ts) / $4) + 1) * $4),
                 $2::timestamptz - make_interval(secs => e.every_s)) AS b
    FROM stored r JOIN markets m USING (market_id)
    CROSS JOIN LATERAL (SELECT ($3::float8[])[coalesce(m.tier, -1) + 2] AS every_s) e
    WHERE NOT m.closed
),
covered AS (
    SELECT * FROM silences s
    WHERE s.a < s.b
      AND NOT EXISTS (SELECT 1 FROM paused p WHERE p.a < s.b AND p.b > s.a)
      AND (s.source <> 'ws' OR NOT EXISTS (
            SELECT 1 FROM feed_gaps g
            WHERE g.stream LIKE 'ws\\_%' AND g.gap_start < s.b AND g.gap_end > s.a
              AND (g.token_id = s.token_id OR g.market_id = s.market_id
                   OR (g.token_id IS NULL AND g.market_id IS NULL))))
),
hours AS (SELECT generate_series($1::timestamptz, $2::timestamptz, INTERVAL '1 hour') AS hour)
SELECT h.hour, s.tier,
       sum(ceil(extract(epoch FROM least(s.b, h.hour + INTERVAL '1 hour')) / s.every_s)
           - ceil(extract(epoch FROM greatest(s.a, h.hour)) / s.every_s))::bigint AS unchanged
FROM covered s JOIN hours h ON s.a < h.hour + INTERVAL '1 hour' AND s.b > h.hour
GROUP BY 1, 2
"""
UNCHANGED_QUERY = _UNCHANGED.replace("{table}", STREAM_TABLES["orderbooks"])

QUERIES = {
    table: (_EXPECTED.replace("{table}", table), _ACTUAL.replace("{table}", table))
    for table in STREAM_TABLES.values()
}


def cadences(settings: Settings, stream: Stream) -> list[float]:
    """Seconds between snapshots, by tier: [closed, T0, T1, T2, T3, T4]."""
    if stream == "prices":
        return [settings.intervals.prices_s] * 6
    tiers = settings.tiers
    slow = settings.intervals.orderbooks_s
    by_tier = [
        every if tier in tiers.orderbook_tiers else slow
        for tier, every in enumerate(tiers.intervals())
    ]
    return [slow, *by_tier]


def _pct(actual: int, expected: int) -> float | None:
    return None if expected <= 0 else round(100.0 * actual / expected, 2)


async def unchanged_slots(
    conn: asyncpg.Connection, settings: Settings, stream: Stream, start: datetime, now: datetime
) -> dict[tuple[datetime, int | None], int]:
    """Slots without a row that are unchanged, by hour and tier (none where nothing is
    skipped: price snapshots, or order books with the skipping turned off)."""
    if stream != "orderbooks" or not settings.unchanged.skip:
        return {}
    every = cadences(settings, stream)
    rows = await conn.fetch(
        UNCHANGED_QUERY, start, now, every, settings.unchanged.keyframe_s, min(every)
    )
    return {(r["hour"], r["tier"]): r["unchanged"] for r in rows}


async def coverage(
    conn: asyncpg.Connection, settings: Settings, stream: Stream, hours: int, now: datetime
) -> Coverage:
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    expected_sql, actual_sql = QUERIES[STREAM_TABLES[stream]]
    params = (start, now, cadences(settings, stream), stream == "prices")
    expected = await conn.fetch(expected_sql, *params)
    actual = {(r["hour"], r["tier"]): r["actual"] for r in await conn.fetch(actual_sql, *params)}
    unchanged = await unchanged_slots(conn, settings, stream, start, now)
    cells = [
        _cell(r["hour"], r["tier"], r["markets"], r["expected"], actual, unchanged)
        for r in expected
        if r["hour"] is not None
    ]
    # Stored rows in an hour and tier where nothing was expected still count.
    seen = {(c.hour, c.tier) for c in cells}
    cells += [
        _cell(hour, tier, 0, 0, actual, unchanged)
        for (hour, tier) in actual
        if (hour, tier) not in seen
    ]
    cells.sort(key=lambda c: (c.hour, -1 if c.tier is None else c.tier))
    tiers = _tier_totals(cells, {r["tier"]: r["markets"] for r in expected if r["hour"] is None})
    return Coverage(stream=stream, start=start, end=now, tiers=tiers, hours=cells)


def _cell(
    hour: datetime,
    tier: int | None,
    markets: int,
    expected: int,
    actual: dict[tuple[datetime, int | None], int],
    unchanged: dict[tuple[datetime, int | None], int],
) -> CoverageCell:
    stored = actual.get((hour, tier), 0)
    # Never more unchanged than unstored: a tier change within the hour can move slots.
    same = min(unchanged.get((hour, tier), 0), max(0, expected - stored))
    return CoverageCell(
        hour=hour,
        tier=tier,
        markets=markets,
        expected=expected,
        actual=stored,
        unchanged=same,
        missing=max(0, expected - stored - same),
    )


def _tier_totals(cells: list[CoverageCell], markets: dict[int | None, int]) -> list[TierCoverage]:
    totals: dict[int | None, list[int]] = {}
    for c in cells:
        total = totals.setdefault(c.tier, [0, 0, 0, 0])
        for i, n in enumerate((c.expected, c.actual, c.unchanged, c.missing)):
            total[i] += n
    order = sorted(totals, key=lambda t: 99 if t is None else t)
    return [
        TierCoverage(
            tier=tier,
            markets=markets.get(tier, 0),
            expected=totals[tier][0],
            actual=totals[tier][1],
            unchanged=totals[tier][2],
            missing=totals[tier][3],
            # Covered: stored or known unchanged.
            coverage_pct=_pct(totals[tier][1] + totals[tier][2], totals[tier][0]),
        )
        for tier in order
    ]


async def feed_gaps(conn: asyncpg.Connection, since: datetime, limit: int) -> list[FeedGap]:
    rows = await conn.fetch(
        """
        SELECT g.id, g.stream, g.market_id, m.question, g.token_id, g.gap_start, g.gap_end,
               extract(epoch FROM g.gap_end - g.gap_start)::float8 AS duration_s, g.reason,
               g.repaired, g.detected_at
        FROM feed_gaps g LEFT JOIN markets m USING (market_id)
        WHERE g.gap_start >= $1 ORDER BY g.gap_start DESC, g.id DESC LIMIT $2
        """,
        since,
        limit,
    )
    return [FeedGap(**dict(r)) for r in rows]


async def gap_summary(conn: asyncpg.Connection, since: datetime) -> list[GapSummary]:
    rows = await conn.fetch(
        """
        SELECT stream, reason, count(*) AS gaps, count(*) FILTER (WHERE NOT repaired) AS open,
               coalesce(sum(extract(epoch FROM gap_end - gap_start)), 0)::float8 AS seconds
        FROM feed_gaps WHERE gap_start >= $1
        GROUP BY 1, 2 ORDER BY open DESC, gaps DESC, stream, reason
        """,
        since,
    )
    return [GapSummary(**dict(r)) for r in rows]


async def stale_markets(
    conn: asyncpg.Connection, stale_before: datetime, now: datetime, limit: int
) -> tuple[list[StaleMarket], int]:
    """Open CLOB markets whose newest price snapshot is older than ``stale_before`` (or
    missing), the longest-silent first."""
    rows = await conn.fetch(
        """
        SELECT m.market_id, m.question, m.tier, p.ts AS last_snapshot_at,
               count(*) OVER () AS total
        FROM markets m
        JOIN tokens t ON t.market_id = m.market_id AND t.outcome_index = 0
        LEFT JOIN token_keys k USING (token_id)
        LEFT JOIN LATERAL (SELECT ts FROM price_snapshots s WHERE s.token_sid = k.token_sid
                           ORDER BY ts DESC LIMIT 1) p ON true
        WHERE NOT m.closed AND m.enable_order_book IS NOT false
          AND (p.ts IS NULL OR p.ts < $1)
        ORDER BY p.ts NULLS FIRST, m.market_id LIMIT $2
        """,
        stale_before,
        limit,
    )
    return [_stale(r, now) for r in rows], rows[0]["total"] if rows else 0


def _stale(row: asyncpg.Record, now: datetime) -> StaleMarket:
    last: datetime | None = row["last_snapshot_at"]
    return StaleMarket(
        market_id=row["market_id"],
        question=row["question"],
        tier=row["tier"],
        last_snapshot_at=last,
        age_s=None if last is None else (now - last).total_seconds(),
    )


async def gaps(
    conn: asyncpg.Connection, settings: Settings, hours: int, limit: int, now: datetime
) -> Gaps:
    stale_after = 3 * settings.intervals.prices_s + 60  # as ``polyfarm status`` judges
    since = now - timedelta(hours=hours)
    summary = await gap_summary(conn, since)
    stale, stale_total = await stale_markets(conn, now - timedelta(seconds=stale_after), now, limit)
    return Gaps(
        checked_at=now,
        stale_after_s=stale_after,
        gaps_total=sum(s.gaps for s in summary),
        gaps_open=sum(s.open for s in summary),
        summary=summary,
        gaps=await feed_gaps(conn, since, limit),
        stale_markets=stale,
        stale_total=stale_total,
    )
