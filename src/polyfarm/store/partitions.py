"""Range partitions of the time series on plain PostgreSQL (migration 0015): made ahead, made on
demand for a row outside them, dropped whole by retention.

Each table's partitions are spans of ``PartitionedTable.span`` counted from the Unix epoch, so a
day's is the UTC day, named ``<table>_pYYYYMMDD`` (``_pYYYYMMDD_HH`` for a span shorter than a
day). Beside them: ``<table>_legacy``, the table as it was before 0015 (everything up to the
migration's day). The naming and the arithmetic are pure; the rest is a handful of catalogue
statements.

Upkeep (``ensure_partitions``), at start-up before any writer and from the maintenance task:
every span from now to ``retention.partition_days_ahead`` days ahead gets its partition. A
partition is made as a plain table and attached (``ATTACH`` takes only a SHARE UPDATE EXCLUSIVE
lock on the parent, so writers go on).

No DEFAULT partition. Migration 0015 made one (``<table>_default``) for a row no span takes;
the upkeep retires it, moving its rows into partitions of their spans and dropping it once
empty, because a DEFAULT partition, whose bounds are anything, keeps the planner from reading
the spans in time order: a token's newest or oldest row then probes every partition's index and
merges them instead of stopping at the first partition that has one (BENCHMARKS.md,
"Partitions"). A row outside every partition (a backfill older than the oldest one kept, a
clock far ahead) makes the writer's COPY fail with "no partition of relation"; the writer then
makes the partitions of that batch's spans (``make_partitions_for``) and writes it again.

Retention (``expire_rows``): a partition whose whole range is older than the table's retention
is dropped, with a warning that its rows are gone for good (nothing is archived yet); the
legacy partition, which holds rows of any age up to its end, has its old rows deleted. A span's
rows are therefore kept for between the retention and the retention plus a span. ``DROP TABLE``
of a partition locks the parent against writers and readers while it waits, so every statement
that needs such a lock waits at most ``LOCK_TIMEOUT`` (writers queue behind it that long), and
one that times out is tried again at the next round.

TimescaleDB: the tables are hypertables (not partitioned tables) and every function here
leaves them alone; chunks and retention policies do this work there.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from polyfarm.logs import get_logger
from polyfarm.settings import RetentionSettings
from polyfarm.store.policies import RetentionRule
from polyfarm.store.rows import REPRESENTED_ROWS

log = get_logger(__name__)

DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How long a statement waits for a lock the writers or readers hold before giving up (and
# being tried again at the next round): writers wait behind it at most this long.
LOCK_TIMEOUT = "2s"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class PartitionedTable:
    name: str
    span: timedelta = DAY

    @property
    def default_partition(self) -> str:
        return f"{self.name}_default"


# The tables that hold the time series (the public names are views over them). Book deltas
# come about 2.7 times as fast as price snapshots and their index entries are wider: a day of
# them at venue rates has about 9.6 GiB of index (BENCHMARKS.md, "Partitions"), a quarter day
# about what a day of price snapshots has.
PARTITIONED_TABLES = (
    PartitionedTable("price_points"),
    PartitionedTable("trade_fills"),
    PartitionedTable("book_changes", timedelta(hours=6)),
    PartitionedTable("book_samples"),
    PartitionedTable("feature_samples"),
)
# Partitioned from their first migration on (0019), with no DEFAULT or legacy partition: the
# venue's own price history that a backfill stores (a day of a week-long backfill at 1-minute
# buckets is about what a day of live price snapshots is).
BACKFILL_TABLES = (PartitionedTable("history_points"),)
ALL_PARTITIONED_TABLES = (*PARTITIONED_TABLES, *BACKFILL_TABLES)
TABLES_BY_NAME = {table.name: table for table in ALL_PARTITIONED_TABLES}


@dataclass(frozen=True)
class Partition:
    """One partition of a table; ``lower`` None is MINVALUE, ``upper`` None MAXVALUE."""

    name: str
    lower: datetime | None
    upper: datetime | None
    is_default: bool = False

    def overlaps(self, start: datetime, end: datetime) -> bool:
        if self.is_default:
            return False
        return (self.lower is None or self.lower < end) and (
            self.upper is None or start < self.upper
        )

    def is_span(self, span: timedelta) -> bool:
        """One whole span, as the upkeep makes them (not the legacy or the DEFAULT one)."""
        return (
            self.lower is not None
            and self.upper is not None
            and self.upper - self.lower == span
            and span_start(self.lower, span) == self.lower
        )


# -- naming and bounds (pure) -----------------------------------------------------------------


def span_start(at: datetime, span: timedelta) -> datetime:
    """The start of the span holding ``at``, spans counted from the Unix epoch in UTC."""
    return EPOCH + ((at - EPOCH) // span) * span


def partition_name(table: PartitionedTable, start: datetime) -> str:
    start = start.astimezone(UTC)
    suffix = f"{start:%Y%m%d}" if table.span >= DAY else f"{start:%Y%m%d_%H}"
    return f"{table.name}_p{suffix}"


def spans_from(first: datetime, last: datetime, span: timedelta) -> list[datetime]:
    """The starts of every span from the one holding ``first`` to the one holding ``last``."""
    start, end = span_start(first, span), span_start(last, span)
    count = (end - start) // span + 1
    return [start + i * span for i in range(max(0, count))]


def spans_holding(timestamps: Iterable[datetime], span: timedelta) -> list[datetime]:
    """The starts of the spans that hold ``timestamps``, in order. A batch holds many rows of
    few spans: the distinct instants are sorted once (in C) and each span's are passed over
    with one bisection, instead of one ``span_start`` per row."""
    ordered = sorted(set(timestamps))
    starts: list[datetime] = []
    index = 0
    while index < len(ordered):
        starts.append(span_start(ordered[index], span))
        index = bisect.bisect_left(ordered, starts[-1] + span, index)
    return starts


def missing_spans(
    starts: Iterable[datetime], span: timedelta, existing: Sequence[Partition]
) -> list[datetime]:
    """The span starts no partition covers any part of (a partly covered span cannot be made:
    PostgreSQL refuses overlapping partitions)."""
    return sorted(
        {
            start
            for start in starts
            if not any(part.overlaps(start, start + span) for part in existing)
        }
    )


def fully_expired(existing: Sequence[Partition], cutoff: datetime) -> list[Partition]:
    """Partitions whose every row is older than ``cutoff``: dropped whole."""
    return [
        part
        for part in existing
        if not part.is_default and part.upper is not None and part.upper <= cutoff
    ]


def partly_expired(existing: Sequence[Partition], cutoff: datetime) -> list[Partition]:
    """The partitions that hold rows of any age, a DEFAULT one not yet retired and the legacy
    one (from MINVALUE), unless wholly expired: their old rows are deleted. Every other partition is
    left whole until its last moment is past ``cutoff`` (a day's, or a day's of an older
    span: a table's span may change between versions)."""
    expired = {part.name for part in fully_expired(existing, cutoff)}
    return [
        part
        for part in existing
        if part.name not in expired and (part.is_default or part.lower is None)
    ]


def identifier(name: str) -> str:
    """``name`` as it may be spliced into SQL: DDL takes no parameters, and every name here is
    one of ours (a table above, a partition named from a date), never input."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def timestamp_literal(at: datetime) -> str:
    return f"'{at.astimezone(UTC).isoformat()}'"


# -- the catalogue ----------------------------------------------------------------------------

_PARTITIONS = r"""
SELECT c.relname AS name,
       pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default,
       CASE WHEN b[1] <> 'MINVALUE' THEN trim(BOTH '''' FROM b[1])::timestamptz END AS lower,
       CASE WHEN b[2] <> 'MAXVALUE' THEN trim(BOTH '''' FROM b[2])::timestamptz END AS upper
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
LEFT JOIN LATERAL regexp_match(
    pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \((.+)\) TO \((.+)\)$'
) AS b ON true
WHERE i.inhparent = to_regclass($1)
ORDER BY lower NULLS FIRST, c.relname
"""


async def partitioned_tables(conn: asyncpg.Connection) -> list[PartitionedTable]:
    """The time-series tables that are partitioned here, in ``ALL_PARTITIONED_TABLES`` order:
    all of them on plain PostgreSQL after 0015 (and 0019 for the backfill's), none on
    TimescaleDB."""
    names = await conn.fetch(
        "SELECT t.name FROM unnest($1::text[]) WITH ORDINALITY AS t(name, i) "
        "JOIN pg_class c ON c.oid = to_regclass(t.name) WHERE c.relkind = 'p' ORDER BY t.i",
        [table.name for table in ALL_PARTITIONED_TABLES],
    )
    return [TABLES_BY_NAME[r["name"]] for r in names]


async def partitions_of(conn: asyncpg.Connection, table: str) -> list[Partition]:
    """The partitions of ``table`` with their bounds. A bound is printed and read back in the
    same session (UTC, so that no zone abbreviation is in between)."""
    async with conn.transaction():
        await conn.execute("SET LOCAL TimeZone = 'UTC'")
        rows = await conn.fetch(_PARTITIONS, table)
    return [Partition(r["name"], r["lower"], r["upper"], r["is_default"]) for r in rows]


async def _set_lock_timeout(conn: asyncpg.Connection) -> None:
    await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


# -- upkeep -----------------------------------------------------------------------------------


@dataclass
class UpkeepReport:
    created: list[str] = field(default_factory=list)
    moved_rows: int = 0  # from the DEFAULT partitions into new ones
    postponed: list[str] = field(default_factory=list)  # a lock was not had in time
    retired: list[str] = field(default_factory=list)  # DEFAULT partitions dropped


async def ensure_partitions(
    conn: asyncpg.Connection, now: datetime, retention: RetentionSettings
) -> UpkeepReport:
    """Every table's partitions from now to ``retention.partition_days_ahead`` days ahead; a
    DEFAULT partition left by migration 0015 retired (its rows moved into partitions of their
    spans, then dropped); a no-op on TimescaleDB."""
    report = UpkeepReport()
    ahead = now + timedelta(days=retention.partition_days_ahead)
    for table in await partitioned_tables(conn):
        existing = await partitions_of(conn, table.name)
        wanted = spans_from(now, ahead, table.span)
        has_default = any(part.is_default for part in existing)
        if has_default:
            wanted += await _default_spans(conn, table)
        for start in missing_spans(wanted, table.span, existing):
            await _create_one(conn, table, start, report)
        if has_default:
            await _retire_default(conn, table, report)
    if report.created:  # the first and the last: a long gap or a backfill makes many
        log.info(
            "partitions made",
            count=len(report.created),
            first=report.created[0],
            last=report.created[-1],
            moved_from_default=report.moved_rows,
        )
    return report


async def _default_spans(conn: asyncpg.Connection, table: PartitionedTable) -> list[datetime]:
    """The spans the DEFAULT partition holds rows of (those past retention too: they move into
    a partition that retention then drops whole, so that the DEFAULT partition can go)."""
    default = identifier(table.default_partition)
    starts = await conn.fetch(
        f"SELECT DISTINCT date_bin($1::interval, ts, $2::timestamptz) AS start "  # noqa: S608 - our identifier
        f"FROM {default}",
        table.span,
        EPOCH,
    )
    return [r["start"] for r in starts]


async def _retire_default(
    conn: asyncpg.Connection, table: PartitionedTable, report: UpkeepReport
) -> None:
    """Drop the DEFAULT partition once it is empty (a partition whose lock was not had in
    time may have left rows in it: then at the next round)."""
    default = identifier(table.default_partition)
    try:
        async with conn.transaction():
            await _set_lock_timeout(conn)
            await conn.execute(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {default})"):  # noqa: S608 - our identifier
                report.postponed.append(default)
                return
            await conn.execute(f"DROP TABLE {default}")
    except asyncpg.LockNotAvailableError:
        log.warning("DEFAULT partition retirement postponed: its table is busy", table=table.name)
        report.postponed.append(default)
        return
    report.retired.append(default)
    log.info("DEFAULT partition retired", table=table.name, partition=default)


def is_missing_partition(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL refusing a row that no partition of its table takes."""
    return isinstance(exc, asyncpg.CheckViolationError) and str(exc).startswith(
        "no partition of relation"
    )


async def make_partitions_for(
    conn: asyncpg.Connection, table_name: str, timestamps: Iterable[datetime]
) -> list[str]:
    """Partitions of ``table_name`` for every span of ``timestamps`` that none covers; returns
    those made. For rows outside the spans made ahead: a backfill older than the oldest
    partition kept (retention drops it again at its next round), a clock far ahead."""
    table = TABLES_BY_NAME[table_name]
    return await make_partitions_at(conn, table_name, spans_holding(timestamps, table.span))


_MADE_BY_ANOTHER = (
    asyncpg.DuplicateTableError,
    asyncpg.DuplicateObjectError,
    asyncpg.UniqueViolationError,
)


async def make_partitions_at(
    conn: asyncpg.Connection, table_name: str, starts: Iterable[datetime]
) -> list[str]:
    """``make_partitions_for`` given the starts of the spans the rows are in."""
    table = TABLES_BY_NAME[table_name]
    report = UpkeepReport()
    for start in missing_spans(starts, table.span, await partitions_of(conn, table.name)):
        await _create_one(conn, table, start, report)
    if report.created:
        log.warning(
            "partitions made for rows outside the spans made ahead",
            table=table.name,
            partitions=report.created,
        )
    return report.created


async def _create_one(
    conn: asyncpg.Connection, table: PartitionedTable, start: datetime, report: UpkeepReport
) -> None:
    name = partition_name(table, start)
    try:
        moved = await create_partition(conn, table, start)
    except _MADE_BY_ANOTHER:
        # Another writer (a backfill's worker, the other collector) made it a moment ago or
        # is making it: rows go on into that one. Two CREATE TABLEs of one name collide on
        # the table's name, its row type's or a catalogue key, each a different error.
        log.debug("partition made by another meanwhile", partition=name)
        return
    except asyncpg.LockNotAvailableError:
        log.warning("partition postponed: its table is busy", partition=name)
        report.postponed.append(name)
        return
    report.created.append(name)
    report.moved_rows += moved
    if moved:
        log.warning(
            "rows moved from the DEFAULT partition into their own",
            partition=name,
            rows=moved,
        )


async def create_partition(
    conn: asyncpg.Connection, table: PartitionedTable, start: datetime
) -> int:
    """Make and attach the partition of the span starting at ``start``; the DEFAULT partition's
    rows of that span move into it in the same transaction. Returns how many moved.

    The DEFAULT partition is locked first: no row of the span can enter it between the move
    and the attach (which checks that it holds none), and ATTACH needs that lock anyway."""
    parent = identifier(table.name)
    name = identifier(partition_name(table, start))
    end = start + table.span
    default = identifier(table.default_partition)
    has_default = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", default)
    async with conn.transaction():
        await _set_lock_timeout(conn)
        if has_default:
            await conn.execute(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
        await conn.execute(f"CREATE TABLE {name} (LIKE {parent} INCLUDING ALL EXCLUDING INDEXES)")
        moved = 0
        if has_default:
            status = await conn.execute(
                f"WITH moved AS (DELETE FROM {default} WHERE ts >= $1 AND ts < $2 RETURNING *) "  # noqa: S608 - our identifiers
                f"INSERT INTO {name} SELECT * FROM moved",
                start,
                end,
            )
            moved = int(status.rsplit(" ", 1)[-1])
        await conn.execute(
            f"ALTER TABLE {parent} ATTACH PARTITION {name} "
            f"FOR VALUES FROM ({timestamp_literal(start)}) TO ({timestamp_literal(end)})"
        )
    return moved


# -- retention --------------------------------------------------------------------------------


@dataclass
class Expiry:
    dropped: list[str] = field(default_factory=list)
    dropped_rows: int = 0
    deleted_rows: int = 0
    postponed: list[str] = field(default_factory=list)
    unarchived: list[str] = field(default_factory=list)  # expired, kept for the lake

    @property
    def rows(self) -> int:
        return self.dropped_rows + self.deleted_rows


async def expire_rows(
    conn: asyncpg.Connection, rule: RetentionRule, now: datetime, archived_only: bool = False
) -> Expiry:
    """Remove ``rule.table``'s rows older than its retention: whole partitions dropped, the
    rest deleted. A table that is not partitioned has its old rows deleted, as before 0015.
    With ``archived_only``, a partition goes only when ``lake_archive`` says the lake holds as
    many rows of its span as it has (a late row since the export keeps it until the next one),
    and the legacy partition's old rows wait (their days are not in partitions of their own)."""
    cutoff = now - rule.keep
    table = TABLES_BY_NAME.get(rule.table)
    expiry = Expiry()
    if table is None or table not in await partitioned_tables(conn):
        expiry.deleted_rows = await _delete_older(conn, rule.table, cutoff)
        return expiry
    existing = await partitions_of(conn, table.name)
    for part in fully_expired(existing, cutoff):
        if archived_only and not await _archived_whole(conn, table, part):
            expiry.unarchived.append(part.name)
            continue
        await _drop_one(conn, table, part, expiry, archived=archived_only)
    for part in partly_expired(existing, cutoff):
        if archived_only and not part.is_default:
            expiry.unarchived.append(part.name)
            continue
        expiry.deleted_rows += await _delete_older(conn, part.name, cutoff)
    if expiry.unarchived:
        log.warning(
            "RETENTION: expired partitions kept until the lake holds them",
            table=table.name,
            partitions=expiry.unarchived,
            hint="polyfarm lake export archives them; the disk budget counts them meanwhile",
        )
    return expiry


async def _archived_whole(
    conn: asyncpg.Connection, table: PartitionedTable, part: Partition
) -> bool:
    """Whether ``lake_archive`` covers ``part``'s whole range with as many rows as it holds."""
    if part.lower is None or part.upper is None:
        return False
    covered = await conn.fetchrow(
        "SELECT coalesce(sum(rows), 0) AS rows, "
        "coalesce(sum(extract(epoch FROM span_end - span_start)), 0) AS seconds "
        "FROM lake_archive WHERE storage_table = $1 AND span_start >= $2 AND span_end <= $3",
        table.name,
        part.lower,
        part.upper,
    )
    if covered["seconds"] != (part.upper - part.lower).total_seconds():
        return False
    held = await conn.fetchval(
        # What the lake counted of the span is compared with the rows these stand for.
        f"SELECT coalesce(sum({REPRESENTED_ROWS.get(table.name, '1')}), 0) "  # noqa: S608 - ours
        f"FROM {identifier(part.name)}"
    )
    return bool(held == covered["rows"])


async def _delete_older(conn: asyncpg.Connection, relation: str, cutoff: datetime) -> int:
    status = await conn.execute(
        f"DELETE FROM {identifier(relation)} WHERE ts < $1",  # noqa: S608 - our identifier
        cutoff,
    )
    return int(status.rsplit(" ", 1)[-1])


async def _drop_one(
    conn: asyncpg.Connection,
    table: PartitionedTable,
    part: Partition,
    expiry: Expiry,
    *,
    archived: bool = False,
) -> None:
    try:
        rows, counted, size = await drop_partition(conn, part)
    except asyncpg.LockNotAvailableError:
        log.warning("partition drop postponed: its table is busy", partition=part.name)
        expiry.postponed.append(part.name)
        return
    expiry.dropped.append(part.name)
    expiry.dropped_rows += rows
    day = part.lower.date().isoformat() if part.is_span(DAY) and part.lower else None
    message = (
        "RETENTION: partition dropped, its rows are in the lake"
        if archived
        else "RETENTION: partition dropped, its rows are gone for good (nothing is archived)"
    )
    (log.info if archived else log.warning)(
        message,
        table=table.name,
        partition=part.name,
        day=day,
        from_ts=None if part.lower is None else part.lower.isoformat(),
        to_ts=None if part.upper is None else part.upper.isoformat(),
        rows=rows,
        rows_counted=counted,
        bytes=size,
    )


async def drop_partition(conn: asyncpg.Connection, part: Partition) -> tuple[int, bool, int]:
    """Drop ``part``; returns its rows (the planner's estimate, or counted when it has none),
    whether they were counted, and its size with indexes."""
    name = identifier(part.name)
    async with conn.transaction():
        await _set_lock_timeout(conn)
        estimate, size = await conn.fetchrow(
            "SELECT reltuples::bigint, pg_total_relation_size(oid) FROM pg_class "
            "WHERE oid = to_regclass($1)",
            name,
        )
        counted = estimate < 0  # never vacuumed nor analysed
        rows = await conn.fetchval(f"SELECT count(*) FROM {name}") if counted else estimate  # noqa: S608 - our identifier
        await conn.execute(f"DROP TABLE {name}")
    return rows, counted, size


# -- sizes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesBytes:
    """What the time series take: per table its last whole UTC day, and all of them in all."""

    last_day: dict[str, int]
    total: int


async def series_bytes(conn: asyncpg.Connection, now: datetime) -> SeriesBytes | None:
    """Sizes (heap, indexes, TOAST) of the partitioned tables; None where a table's last
    whole day is not in partitions of its own (TimescaleDB; the days the legacy partition
    holds, just after migration 0015)."""
    tables = await partitioned_tables(conn)
    if not tables:
        return None
    sizes: dict[str, int] = dict(
        await conn.fetch(
            "SELECT t.relid::regclass::text, pg_total_relation_size(t.relid) "
            "FROM unnest($1::text[]) AS p(name), pg_partition_tree(p.name::regclass) t "
            "WHERE t.isleaf",
            [table.name for table in tables],
        )
    )
    yesterday = span_start(now, DAY) - DAY
    last_day: dict[str, int] = {}
    for table in tables:
        inside = [
            (part.name, part.upper - part.lower)
            for part in await partitions_of(conn, table.name)
            if part.lower is not None and part.upper is not None
            and yesterday <= part.lower and part.upper <= yesterday + DAY
        ]  # fmt: skip
        if sum((length for _, length in inside), timedelta(0)) != DAY:
            return None
        last_day[table.name] = sum(sizes.get(name, 0) for name, _ in inside)
    return SeriesBytes(last_day, sum(sizes.values()))
