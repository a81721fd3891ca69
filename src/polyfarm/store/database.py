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
    # jsonb in binary format (COPY needs it): a version byte, then the JSON text. Values that
    # are already JSON text (writers pre-serialise with orjson) pass through unchanged.
    await conn.set_type_codec(
        "jsonb",
        encoder=_jsonb_encode,
        decoder=_jsonb_decode,
        schema="pg_catalog",
        format="binary",
    )
    await conn.set_type_codec(
        "json", encoder=_json_encode, decoder=orjson.loads, schema="pg_catalog"
    )
    await conn.execute("SET TIME ZONE 'UTC'")


def _json_encode(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _jsonb_encode(value: object) -> bytes:
    if isinstance(value, str):
        return b"\x01" + value.encode()
    if isinstance(value, bytes):
        return b"\x01" + value
    return b"\x01" + orjson.dumps(value)


def _jsonb_decode(data: bytes) -> object:
    return orjson.loads(data[1:])


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
