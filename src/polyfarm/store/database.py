"""Which database polyfarm talks to, and the connection pools to it.

``POLYFARM_DATABASE_URL`` set: that server. Unset: the embedded PostgreSQL in
``POLYFARM_DATA_DIR``, started on demand and reused by every later command.

The monitoring API gets its own pool (``open_reader_pool``): it logs in as the read-only role
``polyfarm_reader`` (migration 0008) or as ``api.database_url``, and every one of its sessions
is ``READ ONLY``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit

import asyncpg
import orjson

from polyfarm.clock import Clock, utc_now
from polyfarm.errors import DatabaseError
from polyfarm.logs import get_logger
from polyfarm.settings import Settings
from polyfarm.store import embedded_access
from polyfarm.store.embedded import EmbeddedPostgres
from polyfarm.store.migrations import Flavor, MigrationReport, migrate, schema_lock
from polyfarm.store.partitions import ensure_partitions
from polyfarm.store.policies import apply_timescale_policies

log = get_logger(__name__)
READER_ROLE = embedded_access.READER_ROLE
# Set on every connection of the API's pool, so that even the owner fallback cannot write.
READ_ONLY_SESSION = {"default_transaction_read_only": "on"}
# SQLSTATE class 28 (no such role, NOLOGIN, bad or missing password, no pg_hba entry) and 42501
# (no CONNECT on the database): this login is refused, as opposed to the server being down.
LOGIN_REFUSED = (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InsufficientPrivilegeError)
MALFORMED_DSN = "(a malformed database URL)"
# What opening a pool raises when the server is not there (socket missing, port closed), the DSN
# is unusable, or the server refuses (no such role or database, bad password).
CONNECT_ERRORS = (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError)
_FALLBACK = (
    f"the API reads as the database owner because role {READER_ROLE} cannot log in "
    "(every API session is still READ ONLY): run `polyfarm db migrate` as a user with "
    "CREATEROLE or create the role by hand, give it a password via PGPASSWORD or ~/.pgpass, "
    "or set api.database_url; then restart the API"
)


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
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 8,
    command_timeout: float = 60.0,
    server_settings: dict[str, str] | None = None,
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        init=_init_connection,
        server_settings=server_settings,
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
    with explained_connect_errors(target.dsn):
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


@contextlib.contextmanager
def explained_connect_errors(dsn: str, passing: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """A failed connection becomes a ``DatabaseError`` saying where (password masked) and why;
    ``passing`` errors are left for the caller to handle."""
    try:
        yield
    except passing:
        raise
    except CONNECT_ERRORS as exc:
        raise DatabaseError(
            f"cannot connect to the database at {redact_dsn(dsn)}: {_reason(exc)}"
        ) from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def dsn_with_user(dsn: str, user: str) -> str:
    """``dsn`` logging in as ``user``, without the original password: the new user's password,
    if the server wants one, comes from ``PGPASSWORD`` or ``~/.pgpass``."""
    parts = urlsplit(dsn)
    hosts = parts.netloc.rpartition("@")[2]
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in ("user", "password")
    ]
    return _join(parts._replace(netloc=f"{quote(user, safe='')}@{hosts}"), query)


def redact_dsn(dsn: str) -> str:
    """``dsn`` with its password, if any, shown as ``***``: safe for logs and messages."""
    try:
        parts = urlsplit(dsn)
    except ValueError:  # not a URL at all: show nothing that might be a secret
        return MALFORMED_DSN
    if "@" in dsn.partition("?")[0] and "@" not in parts.netloc:
        return MALFORMED_DSN  # credentials where a URL has none: unsure what is secret
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not colon and all(key != "password" for key, _ in query):
        return dsn
    netloc = f"{user}{':***' if colon else ''}{at}{hosts}"
    shown = [(key, "***" if key == "password" else value) for key, value in query]
    return _join(parts._replace(netloc=netloc), shown)


def _join(parts: SplitResult, query: list[tuple[str, str]]) -> str:
    # Not urlunsplit: it drops the empty host of "postgresql:///db?host=/socket/dir".
    text = urlencode(query, safe="/*", quote_via=quote)
    tail = f"?{text}" if text else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}{tail}"


def reader_dsn(settings: Settings, target: DatabaseTarget) -> str:
    """``api.database_url``, or the configured database as ``polyfarm_reader``."""
    if settings.api.database_url is not None:
        return settings.api.database_url.get_secret_value()
    return dsn_with_user(target.dsn, READER_ROLE)


@contextlib.asynccontextmanager
async def open_reader_pool(
    settings: Settings, *, start_embedded: bool = True
) -> AsyncIterator[asyncpg.Pool]:
    """The API's pool: read-only role, every session ``READ ONLY``.

    When the derived ``polyfarm_reader`` login is refused (a managed server where migration
    0008 could not create the role, or no password for it), the pool logs in as the owner
    with one warning saying what to do; its sessions are still ``READ ONLY``. A refused
    ``api.database_url`` is the operator's explicit choice and fails instead.
    """
    target = resolve_target(settings)
    if start_embedded:
        ensure_started(target)
    pool = await _connect_reader(settings, target)
    try:
        yield pool
    finally:
        await close_pool(pool)


async def _connect_reader(settings: Settings, target: DatabaseTarget) -> asyncpg.Pool:
    dsn = reader_dsn(settings, target)
    try:
        with explained_connect_errors(dsn, passing=LOGIN_REFUSED):
            pool = await _read_only_pool(dsn, settings)
    except LOGIN_REFUSED as exc:
        if settings.api.database_url is not None:
            raise DatabaseError(
                f"api.database_url ({redact_dsn(dsn)}) cannot log in: {exc}; fix the DSN or "
                "the role, or unset it to read as polyfarm_reader"
            ) from exc
        log.warning(_FALLBACK, error=str(exc), reader_dsn=redact_dsn(dsn))
        with explained_connect_errors(target.dsn):
            return await _read_only_pool(target.dsn, settings)
    log.info("the API reads through a read-only pool", dsn=redact_dsn(dsn))
    return pool


async def _read_only_pool(dsn: str, settings: Settings) -> asyncpg.Pool:
    return await create_pool(
        dsn,
        min_size=settings.database.pool_min,
        max_size=settings.database.pool_max,
        command_timeout=settings.database.command_timeout_s,
        server_settings=READ_ONLY_SESSION,
    )


async def close_pool(pool: asyncpg.Pool, timeout_s: float = 10.0) -> None:
    """Close gracefully; terminate whatever is still busy after the deadline."""
    try:
        await asyncio.wait_for(pool.close(), timeout_s)
    except TimeoutError:
        log.warning("database pool did not close in time; terminating connections")
        pool.terminate()


async def migrate_database(
    pool: asyncpg.Pool, settings: Settings, clock: Clock = utc_now
) -> MigrationReport:
    """Apply pending migrations, then bring TimescaleDB policies in line with the settings or,
    on plain PostgreSQL, make the partitions of today and the days ahead and retire a DEFAULT
    partition left by migration 0015 (before any writer starts, so that live rows never wait
    for a partition made on demand)."""
    async with pool.acquire() as conn, schema_lock(conn):
        report = await migrate(conn)
        if report.flavor is Flavor.TIMESCALEDB:
            await apply_timescale_policies(conn, settings.retention, settings.chunks)
        else:
            await ensure_partitions(conn, clock(), settings.retention)
    return report
