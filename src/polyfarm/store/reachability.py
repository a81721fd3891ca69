"""The collector's probe of its database: ``polyfarm_database_up``, every 15 seconds.

While the database is away the writer journals and the collectors' cycles fail, but nothing
says "the database cannot be reached" as one series an alert can watch (``DatabaseUnreachable``
in ``deploy/prometheus/alerts.yml``). A ``SELECT 1`` through the pool, with a deadline shorter
than the interval, does: 1 when it answered, 0 when it did not.
"""

from __future__ import annotations

import asyncio

import asyncpg

from polyfarm.aio import sleep_unless
from polyfarm.metrics import Metrics

PROBE_INTERVAL_S = 15.0
PROBE_TIMEOUT_S = 10.0
# What a database that is away raises: no socket, refused, reset, timed out, shutting down.
UNREACHABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def database_answers(pool: asyncpg.Pool, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    try:
        async with asyncio.timeout(timeout_s), pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
    except UNREACHABLE:
        return False
    return True


class DatabaseProbe:
    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        interval_s: float = PROBE_INTERVAL_S,
        timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._interval_s = interval_s
        self._timeout_s = timeout_s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            up = await database_answers(self._pool, self._timeout_s)
            self._metrics.database_up.set(1.0 if up else 0.0)
            await sleep_unless(stop, self._interval_s)
