"""TimescaleDB's job scheduler, stopped while migrations change what its jobs touch.

The scheduler updates its job catalog (run statistics, refresh watermarks) without the locks
DDL takes, so a migration that drops aggregates or hypertables, deleting their jobs, can lose a
race with a job starting at that moment: "tuple concurrently updated" or "... deleted"
(SQLSTATE XX000), seen about once in ten test migrations. So the database's scheduler (and the
jobs it runs) is stopped for the migrations and the aggregate backfills after them, and started
again at the end. A role that may not stop it (a managed service) migrates without the pause,
with a warning.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from polyfarm.logs import get_logger

log = get_logger(__name__)
_REFUSED = (asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedFunctionError)


@contextlib.asynccontextmanager
async def scheduler_stopped(conn: asyncpg.Connection) -> AsyncIterator[None]:
    try:
        await conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
    except _REFUSED as exc:
        log.warning("cannot stop TimescaleDB's job scheduler: migrating beside it", error=str(exc))
        yield
        return
    try:
        yield
    finally:
        await conn.execute("SELECT _timescaledb_functions.start_background_workers()")
