"""Continuous aggregates that a migration created over rows already stored.

A migration runs in one transaction, and TimescaleDB refreshes a continuous aggregate only
outside of one. A migration that builds aggregates over existing rows lists them in
``aggregate_backfills`` (migration 0011); right after the migrations, each is materialised over
its whole range, in the listed order (an aggregate built on another comes after it), and struck
off. Without this, the first run of a refresh policy would set the aggregate's watermark to the
start of its window and hide every older bucket.
"""

from __future__ import annotations

import asyncio
import re

import asyncpg

from polyfarm.errors import MigrationError
from polyfarm.logs import get_logger

log = get_logger(__name__)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_ATTEMPTS = 240
_RETRY_S = 0.5


async def has_pending_backfills(conn: asyncpg.Connection) -> bool:
    if not await conn.fetchval("SELECT to_regclass('aggregate_backfills') IS NOT NULL"):
        return False
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM aggregate_backfills)"))


async def run_pending_backfills(conn: asyncpg.Connection) -> list[str]:
    """Refresh every listed aggregate over its whole range; returns their names."""
    if not await has_pending_backfills(conn):
        return []
    views = [
        r[0]
        for r in await conn.fetch("SELECT view_name FROM aggregate_backfills ORDER BY position")
    ]
    for view in views:
        if not _IDENTIFIER.fullmatch(view):
            raise MigrationError(f"aggregate_backfills lists {view!r}, not an aggregate name")
        await _refresh(conn, view)
        await conn.execute("DELETE FROM aggregate_backfills WHERE view_name = $1", view)
        log.info("aggregate materialised over the stored rows", view=view)
    return views


async def _refresh(conn: asyncpg.Connection, view: str) -> None:
    """The policy jobs start as soon as the migration commits, and a refresh refuses to run
    beside another one of the same aggregate: try again until theirs is done."""
    for attempt in range(_ATTEMPTS):
        try:
            # The simple query protocol: a refresh refuses to run inside a transaction block.
            await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
            return
        except asyncpg.LockNotAvailableError:
            if attempt == _ATTEMPTS - 1:
                raise
            await asyncio.sleep(_RETRY_S)
