"""Which database polyfarm talks to, and the connection pool to it.

``POLYFARM_DATABASE_URL`` set: that server. Unset: the embedded PostgreSQL in
``POLYFARM_DATA_DIR``, started on demand and reused by every later command.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import orjson

from polyfarm.logs import get_logger
from polyfarm.settings import Settings
from polyfarm.store.embedded import EmbeddedPostgres
from polyfarm.store.migrations import Flavor, MigrationReport, migrate
from polyfarm.store.policies import apply_timescale_policies

log = get_logger(__name__)


@dataclass(frozen=True)
class DatabaseTarget:
    dsn: str
    embedded: EmbeddedPostgres | None

    @property
    def description(self) -> str:
        if self.embedded is None:
            return "external database (POLYFARM_DATABASE_URL)"
        return f"embedded PostgreSQL in {self.embedded.pgdata}"


def resolve_target(settings: Settings) -> DatabaseTarget:
    if settings.database_url is not None:
        return DatabaseTarget(settings.database_url.get_secret_value(), None)
    server = EmbeddedPostgres(settings.data_dir)
    return DatabaseTarget(server.dsn(), server)


def ensure_started(target: DatabaseTarget) -> bool:
    """Start the embedded server when it is the target and not running; True if started here."""
    if target.embedded is None:
        return False
    return target.embedded.start()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSONB columns arrive as Python objects, and every session works in UTC.
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=_json_dumps, decoder=_json_loads, schema="pg_catalog"
        )
    await conn.execute("SET TIME ZONE 'UTC'")


def _json_dumps(value: object) -> str:
    if isinstance(value, str):
        return value  # already JSON text (writers pre-serialise with orjson)
    return orjson.dumps(value).decode()


def _json_loads(text: str) -> object:
    return orjson.loads(text)


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 8, command_timeout: float = 60.0
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        init=_init_connection,
    )
    assert pool is not None
    return pool


@contextlib.asynccontextmanager
async def open_pool(
    settings: Settings, *, start_embedded: bool = True
) -> AsyncIterator[asyncpg.Pool]:
    """A pool to the configured database, started first if it is the embedded one."""
    target = resolve_target(settings)
    if start_embedded:
        ensure_started(target)
    pool = await create_pool(
        target.dsn,
        min_size=settings.database.pool_min,
        max_size=settings.database.pool_max,
        command_timeout=settings.database.command_timeout_s,
    )
    try:
        yield pool
    finally:
        await close_pool(pool)


async def close_pool(pool: asyncpg.Pool, timeout_s: float = 10.0) -> None:
    """Close gracefully; terminate whatever is still busy after the deadline."""
    try:
        await asyncio.wait_for(pool.close(), timeout_s)
    except TimeoutError:
        log.warning("database pool did not close in time; terminating connections")
        pool.terminate()


async def migrate_database(pool: asyncpg.Pool, settings: Settings) -> MigrationReport:
    """Apply pending migrations, then bring TimescaleDB policies in line with the settings."""
    async with pool.acquire() as conn:
        report = await migrate(conn)
        if report.flavor is Flavor.TIMESCALEDB:
            await apply_timescale_policies(conn, settings.retention)
    return report
