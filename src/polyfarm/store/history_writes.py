"""Writes of a backfill: the venue's price history, the progress of each window, and the
minute-grid repair's bookkeeping (migration 0019).

``history_points`` rows are copied straight into the table; when some of a batch are stored
already (a resumed run, an overlap with the repair job), the batch goes through a
per-connection staging table and is merged with ``ON CONFLICT DO NOTHING`` on (token, ts), so
nothing is stored twice. A row older than every partition kept on plain
PostgreSQL gets its day's partition made, then the batch is merged again.

``backfill_progress`` holds one row per finished window; a window is done when its row exists
and reaches as far as the window wanted (a window cut short by "now" is done again later).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import asyncpg

from polyfarm.store.compact import to_micros
from polyfarm.store.keys import TokenKeys
from polyfarm.store.partitions import is_missing_partition, make_partitions_for

HISTORY_TABLE = "history_points"
_STAGE = "_stage_history_points"
_COLUMNS = "ts, token_sid, price, fidelity_s, route"
_COLUMN_LIST = [column.strip() for column in _COLUMNS.split(",")]


class HistoryRouteCode(enum.IntEnum):
    """``history_points.route``: which venue route served a point."""

    DATA_API = 1
    CLOB = 2


class HistoryPointRow(NamedTuple):
    """One bucket of the venue's price history; ``ts, token_id, market_id`` first, as
    ``TokenKeys.resolve`` reads records."""

    ts: datetime
    token_id: str
    market_id: str
    price: float
    fidelity_s: int
    route: HistoryRouteCode


class Series(enum.Enum):
    """``backfill_progress.series``: what a window's subject is."""

    PRICES = "prices"  # subject: a token id
    TRADES = "trades"  # subject: a market's condition id


@dataclass(frozen=True)
class WindowDone:
    """A finished window, as ``backfill_progress`` records it."""

    series: Series
    subject: str
    start: datetime
    end: datetime
    fidelity_s: int | None = None
    route: str | None = None
    rows: int = 0
    missing_slots: int = 0


async def store_history_points(
    pool: asyncpg.Pool, keys: TokenKeys, rows: Sequence[HistoryPointRow]
) -> int:
    """Store ``rows`` once each; returns how many were new."""
    if not rows:
        return 0
    sids = await keys.resolve(pool, rows)
    records = [
        (row.ts, sids[row.token_id], to_micros(row.price), row.fidelity_s, int(row.route))
        for row in rows
    ]
    async with pool.acquire() as conn:
        try:
            return await _merge(conn, records)
        except asyncpg.PostgresError as exc:
            if not is_missing_partition(exc):
                raise
        await make_partitions_for(conn, HISTORY_TABLE, (record[0] for record in records))
        return await _merge(conn, records)


async def _merge(conn: asyncpg.Connection, records: Sequence[tuple[object, ...]]) -> int:
    """Straight into the table when none of the rows is stored yet (most batches: half the
    server's work of going through the stage); through the stage when some are."""
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(HISTORY_TABLE, records=records, columns=_COLUMN_LIST)
    except asyncpg.UniqueViolationError:
        return await _merge_through_stage(conn, records)
    return len(records)


async def _merge_through_stage(
    conn: asyncpg.Connection, records: Sequence[tuple[object, ...]]
) -> int:
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            f"(LIKE {HISTORY_TABLE} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table(_STAGE, records=records, columns=_COLUMN_LIST)
        status = await conn.execute(
            f"INSERT INTO {HISTORY_TABLE} ({_COLUMNS}) "  # noqa: S608 - constant names
            f"SELECT {_COLUMNS} FROM {_STAGE} ON CONFLICT DO NOTHING"
        )
    return int(status.rsplit(" ", 1)[-1])


async def done_windows(
    conn: asyncpg.Connection, series: Series, subjects: Sequence[str]
) -> dict[tuple[str, datetime], datetime]:
    """(subject, window start) → how far that window was done, for ``subjects``."""
    rows = await conn.fetch(
        "SELECT subject, window_start, window_end FROM backfill_progress "
        "WHERE series = $1 AND subject = ANY($2::text[])",
        series.value,
        list(subjects),
    )
    return {(r["subject"], r["window_start"]): r["window_end"] for r in rows}


async def record_windows(conn: asyncpg.Connection, windows: Iterable[WindowDone]) -> None:
    """Mark windows done (a window done again, further, replaces its row)."""
    await conn.executemany(
        """
        INSERT INTO backfill_progress (series, subject, window_start, window_end, fidelity_s,
                                       route, rows_stored, missing_slots)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (series, subject, window_start) DO UPDATE
        SET window_end = excluded.window_end, fidelity_s = excluded.fidelity_s,
            route = excluded.route, rows_stored = backfill_progress.rows_stored
                                                   + excluded.rows_stored,
            missing_slots = excluded.missing_slots, done_at = now()
        """,
        [
            (w.series.value, w.subject, w.start, w.end, w.fidelity_s, w.route, w.rows,
             w.missing_slots)
            for w in windows
        ],
    )  # fmt: skip


async def is_new_database(conn: asyncpg.Connection) -> bool:
    """No live price snapshot, no history point and no backfill yet: a first start."""
    return not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM price_points) OR EXISTS (SELECT 1 FROM history_points) "
        "OR EXISTS (SELECT 1 FROM backfill_progress)"
    )
