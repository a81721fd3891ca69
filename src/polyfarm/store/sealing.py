"""Finished days of price snapshots rewritten in token order, once (plain PostgreSQL).

The collector writes every token's snapshot of a minute together, so one token's day lies on
about 1,440 heap pages, one row on each: a token-day read (candles, ``polyfarm.data``) visits
them all, and with a day larger than the server's cache it reads most of them from the OS
(BENCHMARKS.md, "Data out"). Rewritten a token at a time (the order: below) the same day takes
a handful of pages a token: the server's time for a token-day went from 5.3 to 0.5 ms.

A day partition whose end is ``SEAL_AFTER`` old is rewritten once, by copy and swap:

1. in one transaction, the partition is locked in SHARE mode: a late row for that day waits
   (and is then written into the new copy's place, see 3), readers go on;
2. a new table like it (defaults and a CHECK of the day's bounds, so that attaching it needs
   no scan) is filled with its rows sorted, and then given the partition's indexes: built
   from the rows in place, a B-tree is packed and in key order (filled a row at a time it was
   39 % larger, and a token-day from a cold cache 40 % slower);
3. the parent's ACCESS EXCLUSIVE lock, needed to detach the old partition and attach the new
   one, is waited for at most half the server's ``deadlock_timeout`` a try and tried
   ``SWAP_TRIES`` times (a savepoint each): readers and writers of the table queue behind it
   that long at most. A writer waiting with a late row of the day gives the day up instead
   (``_swap`` says why);
4. the old table is dropped, the new one takes its name and a comment marks it sealed.

If the swap never gets its lock, everything is rolled back and the day is tried again at the
next maintenance round. A row written into a sealed day later (a long outage's journal) is
appended: the day stays correct, only a little less ordered.

What it costs: one more write of each finished day of price snapshots, and the partition's
BRIN index on ``ts`` no longer narrows a time range inside that day (its pages each hold the
whole day); reads by token, the ones that matter, go through the ``(token_sid, ts)`` index.

The order is the lake's (``polyfarm.lake.ordering``): token id in byte order, then time, not
the integer ``token_sid`` (which follows the order tokens were first seen). A token's rows lie
together either way; in this order the lake's export reads the day as it lies instead of
sorting it (``polyfarm.lake.ordering.in_stored_order``). The heap is in that order but for a
few rows a page: PostgreSQL puts a row into the free space an earlier page was left with when
it fits there (10 million rows: about 4,000 rows), which the export allows for.

TimescaleDB: compressed chunks are segmented by token already; nothing here runs there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from polyfarm.logs import get_logger
from polyfarm.store.partitions import (
    DAY,
    LOCK_TIMEOUT,
    Partition,
    PartitionedTable,
    identifier,
    partitioned_tables,
    partitions_of,
    timestamp_literal,
)

log = get_logger(__name__)

# The tables whose finished days are rewritten by token, with the order: the ones read a token
# at a time (candles, the research API) and large enough for it to matter. The lake's order:
# token id in byte order (a sid the registry lacks last, as the lake ranks it), then time.
SEALED_ORDER = {"price_points": ('k.token_id COLLATE "C"', "p.ts")}
# How long after a day's end its partition is rewritten: late rows (a writer's retries, the
# journal after a short outage) are in by then.
SEAL_AFTER = timedelta(hours=1)
SEALED_COMMENT = "polyfarm: sealed, rows in token id order"
# Days sealed before the order was the lake's, by ``token_sid``: sealed all the same.
SEALED_BY_SID_COMMENT = "polyfarm: sealed, rows in token order"
SWAP_TRIES = 5
SWAP_RETRY_S = 1.0
# Days rewritten per maintenance round, newest first: a database upgraded with months of
# finished days works through them a round at a time (minutes each at venue scale) instead of
# holding maintenance, and the aggregates' refresh behind it, for hours.
DAYS_PER_ROUND = 1


@dataclass
class SealReport:
    sealed: list[str] = field(default_factory=list)
    rows: int = 0
    postponed: list[str] = field(default_factory=list)  # the swap's lock was not had


def due_for_sealing(existing: list[Partition], sealed: set[str], now: datetime) -> list[Partition]:
    """Whole-day partitions over at least ``SEAL_AFTER`` ago and not sealed yet, oldest first."""
    return [
        part
        for part in existing
        if part.is_span(DAY)
        and part.upper is not None
        and part.upper + SEAL_AFTER <= now
        and part.name not in sealed
    ]


async def seal_finished_days(conn: asyncpg.Connection, now: datetime) -> SealReport:
    """Rewrite the newest ``DAYS_PER_ROUND`` finished, unsealed day partitions of each
    ``SEALED_ORDER`` table in token order; a no-op on TimescaleDB."""
    report = SealReport()
    for table in await partitioned_tables(conn):
        order = SEALED_ORDER.get(table.name)
        if order is None:
            continue
        existing = await partitions_of(conn, table.name)
        sealed = await _sealed_names(conn, [part.name for part in existing])
        for part in due_for_sealing(existing, sealed, now)[::-1][:DAYS_PER_ROUND]:
            rows = await seal_partition(conn, table, part, order)
            if rows is None:
                report.postponed.append(part.name)
                continue
            report.sealed.append(part.name)
            report.rows += rows
    if report.sealed or report.postponed:
        log.info(
            "finished days rewritten in token order",
            sealed=report.sealed,
            rows=report.rows,
            postponed=report.postponed,
        )
    return report


async def _sealed_names(conn: asyncpg.Connection, names: list[str]) -> set[str]:
    found = await conn.fetch(
        "SELECT n.name FROM unnest($1::text[]) AS n(name) "
        "WHERE obj_description(to_regclass(n.name), 'pg_class') = ANY($2::text[])",
        names,
        [SEALED_COMMENT, SEALED_BY_SID_COMMENT],
    )
    return {row["name"] for row in found}


async def seal_partition(
    conn: asyncpg.Connection,
    table: PartitionedTable,
    part: Partition,
    order: tuple[str, ...],
) -> int | None:
    """Rewrite ``part`` sorted by ``order`` (see the module doc); returns its rows, or None
    when the swap did not get its lock (nothing changed)."""
    assert part.lower is not None  # a whole span
    assert part.upper is not None
    parent = identifier(table.name)
    old = identifier(part.name)
    new = identifier(f"{part.name}_sealing")
    bounds = f"FROM ({timestamp_literal(part.lower)}) TO ({timestamp_literal(part.upper)})"
    check = identifier(f"{part.name}_bounds")
    try:
        async with conn.transaction():
            # Bounded waits for every lock taken here: writers queue behind a waiting lock.
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            await conn.execute(f"LOCK TABLE {old} IN SHARE MODE")
            await conn.execute(f"CREATE TABLE {new} (LIKE {old} INCLUDING ALL EXCLUDING INDEXES)")
            await conn.execute(
                f"ALTER TABLE {new} ADD CONSTRAINT {check} CHECK (ts >= "
                f"{timestamp_literal(part.lower)} AND ts < {timestamp_literal(part.upper)})"
            )
            status = await conn.execute(
                f"INSERT INTO {new} SELECT p.* FROM {old} p "  # noqa: S608 - our identifiers
                f"LEFT JOIN token_keys k ON k.token_sid = p.token_sid ORDER BY {', '.join(order)}"
            )
            rows = int(status.rsplit(" ", 1)[-1])
            for definition in await _index_definitions(conn, part.name, new):
                await conn.execute(definition)
            # Statistics now, not at autovacuum's leisure: the planner needs the new order's
            # correlation to read a token's day through the index.
            await conn.execute(f"ANALYZE {new}")
            await _swap(conn, parent, old, new, bounds)
            await conn.execute(f"ALTER TABLE {new} DROP CONSTRAINT {check}")
            await conn.execute(f"ALTER TABLE {new} RENAME TO {old}")
            await conn.execute(f"COMMENT ON TABLE {old} IS '{SEALED_COMMENT}'")
    except (_SwapPostponed, asyncpg.LockNotAvailableError):
        log.warning("sealing postponed: the table stayed busy", partition=part.name)
        return None
    return rows


# The partition's indexes, each as a statement that makes it on ``$2`` (named by the server,
# as LIKE would): attaching the copy then finds them in place of the parent's, instead of
# building them while it holds the table.
_INDEX_DEFINITIONS = r"""
SELECT regexp_replace(
    pg_get_indexdef(x.indexrelid),
    '^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ USING ', 'CREATE \1INDEX ON ' || $2 || ' USING '
) AS definition
FROM pg_index x
WHERE x.indrelid = to_regclass($1)
ORDER BY x.indexrelid
"""


async def _index_definitions(conn: asyncpg.Connection, partition: str, new: str) -> list[str]:
    found = [row["definition"] for row in await conn.fetch(_INDEX_DEFINITIONS, partition, new)]
    for definition in found:
        if f" ON {new} USING " not in definition:  # a form the rewrite does not know
            raise RuntimeError(f"cannot copy the index {definition!r} of {partition}")
    return found


class _SwapPostponed(Exception):
    pass


async def _swap(conn: asyncpg.Connection, parent: str, old: str, new: str, bounds: str) -> None:
    """Detach ``old``, attach ``new`` in its place, drop ``old``: under the parent's ACCESS
    EXCLUSIVE lock, each try waiting for it less than half the server's ``deadlock_timeout``.

    A writer that came with a late row of the day holds the table and waits for the day (our
    SHARE lock). Were the swap to wait for the table then, the two would wait for each other,
    and PostgreSQL may cancel either, the writer's batch included. So before each try the day's
    waiters are looked for, and the day is given up (the whole transaction) when there is one.
    A writer that starts waiting during a try checks for a deadlock only ``deadlock_timeout``
    later (once), when the try is over: it sees none, and the next look finds it."""
    wait_ms = max(1, await conn.fetchval(_DEADLOCK_TIMEOUT_MS) // 2)
    for attempt in range(SWAP_TRIES):
        if await conn.fetchval(_ANYONE_WAITING, old):
            raise _SwapPostponed
        try:
            async with conn.transaction():  # a savepoint: a timed-out try keeps the copy
                await conn.execute(f"SET LOCAL lock_timeout = {wait_ms}")
                await conn.execute(f"LOCK TABLE {parent} IN ACCESS EXCLUSIVE MODE")
                await conn.execute(f"ALTER TABLE {parent} DETACH PARTITION {old}")
                await conn.execute(
                    f"ALTER TABLE {parent} ATTACH PARTITION {new} FOR VALUES {bounds}"
                )
                await conn.execute(f"DROP TABLE {old}")
            return
        except asyncpg.LockNotAvailableError:
            if attempt + 1 < SWAP_TRIES:
                await asyncio.sleep(SWAP_RETRY_S)
    raise _SwapPostponed


_DEADLOCK_TIMEOUT_MS = "SELECT setting::int FROM pg_settings WHERE name = 'deadlock_timeout'"
_ANYONE_WAITING = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = to_regclass($1) AND NOT granted)"
)
