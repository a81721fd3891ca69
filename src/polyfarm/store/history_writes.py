"""Writes of a backfill: the venue's price history, the progress of each window, and the
minute-grid repair's bookkeeping (migration 0019).

``history_points`` rows arrive as columns (``HistoryBatch``, one per answer) and are copied
straight into the table as one binary ``COPY`` (``history_columns``); when some of a batch are
stored already (a resumed run, an overlap with the repair job), the batch goes through a
per-connection staging table and is merged with ``ON CONFLICT DO NOTHING`` on (token, ts), so
nothing is stored twice. A row older than every partition kept on plain PostgreSQL gets its
day's partition made, then the batch is merged again.

``backfill_progress`` holds one row per finished window; a window is done when its row exists
and reaches as far as the window wanted (a window cut short by "now" is done again later).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from polyfarm.store.history_columns import (
    HISTORY_COLUMNS,
    HistoryBatch,
    HistoryRouteCode,
    encode_history_copy,
    point_count,
    span_starts,
)
from polyfarm.store.keys import TokenKeys
from polyfarm.store.partitions import TABLES_BY_NAME, is_missing_partition, make_partitions_at

__all__ = [
    "HistoryBatch",
    "HistoryRouteCode",
    "Series",
    "WindowDone",
    "done_windows",
    "is_new_database",
    "record_windows",
    "store_history_points",
]

HISTORY_TABLE = "history_points"
_STAGE = "_stage_history_points"
_COLUMNS = ", ".join(HISTORY_COLUMNS)


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
    pool: asyncpg.Pool, keys: TokenKeys, batches: Sequence[HistoryBatch]
) -> int:
    """Store the batches' points once each; returns how many were new."""
    batches = [batch for batch in batches if len(batch)]
    if not batches:
        return 0
    # ``resolve`` reads records that start ``ts, token_id, market_id``.
    sids = await keys.resolve(pool, [(None, b.token_id, b.market_id) for b in batches])
    payload = encode_history_copy(batches, sids)
    rows = point_count(batches)
    async with pool.acquire() as conn:
        try:
            return await _merge(conn, payload, rows)
        except asyncpg.PostgresError as exc:
            if not is_missing_partition(exc):
                raise
        starts = span_starts(batches, TABLES_BY_NAME[HISTORY_TABLE].span)
        await make_partitions_at(conn, HISTORY_TABLE, starts)
        return await _merge(conn, payload, rows)


async def _merge(conn: asyncpg.Connection, payload: memoryview, rows: int) -> int:
    """Straight into the table when none of the rows is stored yet (most batches: half the
    server's work of going through the stage); through the stage when some are."""
    try:
        async with conn.transaction():
            await _copy(conn, HISTORY_TABLE, payload)
    except asyncpg.UniqueViolationError:
        return await _merge_through_stage(conn, payload)
    return rows


async def _merge_through_stage(conn: asyncpg.Connection, payload: memoryview) -> int:
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            f"(LIKE {HISTORY_TABLE} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await _copy(conn, _STAGE, payload)
        status = await conn.execute(
            f"INSERT INTO {HISTORY_TABLE} ({_COLUMNS}) "  # noqa: S608 - constant names
            f"SELECT {_COLUMNS} FROM {_STAGE} ON CONFLICT DO NOTHING"
        )
    return int(status.rsplit(" ", 1)[-1])


async def _copy(conn: asyncpg.Connection, table: str, payload: memoryview) -> None:
    await conn.copy_to_table(
        table, source=_one_message(payload), columns=list(HISTORY_COLUMNS), format="binary"
    )


async def _one_message(payload: memoryview) -> AsyncIterator[memoryview]:
    """The payload as one CopyData message (asyncpg would read ``bytes`` as a file name)."""
    yield payload


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
