"""The first and the last UTC day a stored time-series table holds rows for, from the catalogue.

``min(ts)`` and ``max(ts)`` are what one would write, but no index of the stored tables answers
them (the time index is BRIN, and the unique key leads with the token): each scans every row,
0.6 s for 10 million rows, minutes for the venue's hot window. The tables are partitioned by
time instead, in spans of a day or less (plain PostgreSQL) or in chunks (TimescaleDB), so the
days are read off the spans that hold a row, oldest and newest first, each asked with an
``EXISTS`` that stops at its first row. Only a span that crosses midnight (the legacy partition
of an upgraded database, the DEFAULT one, a chunk longer than a day) is asked its own
``min(ts)`` and ``max(ts)``, bounded to that span.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from polyfarm.store.migrations import TIMESCALEDB_PRESENT
from polyfarm.store.partitions import partitions_of

_TICK = timedelta(microseconds=1)

_CHUNKS = """
SELECT range_start AS lower, range_end AS upper
FROM timescaledb_information.chunks
WHERE hypertable_schema = current_schema() AND hypertable_name = $1
ORDER BY range_start
"""


@dataclass(frozen=True)
class Span:
    """A stretch of a table's time axis that the catalogue knows (None bounds are open), and
    the partition that holds it, if it is one: a partition is asked by its own name, a chunk
    through the hypertable with the chunk's bounds (a compressed chunk keeps no rows itself)."""

    lower: datetime | None
    upper: datetime | None
    partition: str | None = None

    @property
    def is_open(self) -> bool:
        return self.lower is None and self.upper is None

    def one_day(self) -> date | None:
        """The UTC day this span lies in, if it lies in one."""
        if self.lower is None or self.upper is None:
            return None
        first = self.lower.astimezone(UTC).date()
        return first if (self.upper - _TICK).astimezone(UTC).date() == first else None


async def stored_days(conn: asyncpg.Connection, table: str) -> tuple[date, date] | None:
    """The first and last UTC day ``table`` (a stored table, not a view) holds a row for, or
    None when it holds none."""
    spans = await _spans(conn, table)
    if spans is None:
        return await _scanned(conn, table, Span(None, None))  # neither partitioned nor chunked
    first = await _edge(conn, table, spans, oldest=True)
    if first is None:
        return None
    last = await _edge(conn, table, reversed(spans), oldest=False)
    assert last is not None  # a row was found going forwards
    return first, last


async def _spans(conn: asyncpg.Connection, table: str) -> list[Span] | None:
    """The table's partitions or chunks in time order; None when it has neither."""
    partitioned = await conn.fetchval(
        "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass($1)", table
    )
    if partitioned:
        parts = await partitions_of(conn, table)
        # The DEFAULT partition holds rows of any time: an open span, asked last either way.
        return [
            Span(None, None, p.name) if p.is_default else Span(p.lower, p.upper, p.name)
            for p in parts
        ]
    if await conn.fetchval(TIMESCALEDB_PRESENT):
        chunks = await conn.fetch(_CHUNKS, table)
        if chunks:
            return [Span(r["lower"], r["upper"]) for r in chunks]
    return None


async def _edge(
    conn: asyncpg.Connection, table: str, spans: Iterable[Span], *, oldest: bool
) -> date | None:
    """The oldest (or newest) day with a row, from the spans in that order. A span that
    crosses midnight is scanned, and so is every open span (the DEFAULT partition can hold
    an older or newer row than any bounded one)."""
    found: list[date] = []
    ordered = list(spans)
    for span in [s for s in ordered if not s.is_open]:
        day = span.one_day()
        if day is not None:
            if await _holds_rows(conn, table, span):
                found.append(day)
                break
            continue
        edges = await _scanned(conn, table, span)
        if edges is not None:
            found.append(edges[0] if oldest else edges[1])
            break
    for span in [s for s in ordered if s.is_open]:
        edges = await _scanned(conn, table, span)
        if edges is not None:
            found.append(edges[0] if oldest else edges[1])
    if not found:
        return None
    return min(found) if oldest else max(found)


async def _holds_rows(conn: asyncpg.Connection, table: str, span: Span) -> bool:
    source, args = _source(table, span)
    sql = f"SELECT EXISTS (SELECT 1 FROM {source})"  # noqa: S608
    return bool(await conn.fetchval(sql, *args))


async def _scanned(conn: asyncpg.Connection, table: str, span: Span) -> tuple[date, date] | None:
    source, args = _source(table, span)
    sql = f"SELECT min(ts) AS first, max(ts) AS last FROM {source}"  # noqa: S608
    row = await conn.fetchrow(sql, *args)
    if row["first"] is None:
        return None
    return row["first"].astimezone(UTC).date(), row["last"].astimezone(UTC).date()


def _source(table: str, span: Span) -> tuple[str, Sequence[datetime]]:
    """What to select from for ``span``, and its parameters: the partition alone, or the
    table within the span's bounds."""
    if span.partition is not None:
        return span.partition, ()
    conditions: list[str] = []
    args: list[datetime] = []
    for op, bound in ((">=", span.lower), ("<", span.upper)):
        if bound is not None:
            args.append(bound)
            conditions.append(f"ts {op} ${len(args)}")
    return (f"{table} WHERE {' AND '.join(conditions)}" if conditions else table), args
