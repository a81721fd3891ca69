"""Forward-only SQL migrations with one body for TimescaleDB and plain PostgreSQL.

Files are ``migrations/NNNN_slug.sql``. A file may hold flavour blocks::

    --#if timescaledb          (or: --#if plain)
    SELECT create_hypertable(...);
    --#else
    CREATE INDEX ... USING brin (ts);
    --#endif

The runner takes a session advisory lock (so concurrent migrators queue up and the later ones
find nothing to do), applies each pending file in its own transaction, records
``(version, name, checksum, flavor)`` in ``schema_migrations`` and refuses to go on when an
applied file has been edited since. The flavour is chosen once, when the first migration is
applied, and kept: a database built on plain PostgreSQL stays plain even if TimescaleDB shows
up later (converting tables is an operator's decision, not a side effect of an upgrade).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path

import asyncpg

from polyfarm.errors import ChecksumMismatchError, MigrationError
from polyfarm.logs import get_logger
from polyfarm.store.backfill import has_pending_backfills, run_pending_backfills
from polyfarm.store.timescale_scheduler import scheduler_stopped

log = get_logger(__name__)

# An arbitrary constant: the advisory lock id that serialises every polyfarm migrator.
MIGRATION_LOCK_ID = 0x706F6C79  # "poly"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_DIRECTIVE = re.compile(r"^--#(if|else|endif)\b\s*(\w+)?\s*$")


class Flavor(StrEnum):
    TIMESCALEDB = "timescaledb"
    PLAIN = "plain"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    flavor: str


@dataclass(frozen=True)
class MigrationReport:
    flavor: Flavor
    applied: list[str]
    already_applied: int


def default_migrations_dir() -> Path:
    """The repo's ``migrations/`` in a checkout, the packaged copy in an installed wheel."""
    checkout = Path(__file__).resolve().parents[3] / "migrations"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("polyfarm") / "migrations"))


def load_migrations(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name must look like 0001_slug.sql: {path.name}")
        migrations.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number in {directory}")
    return migrations


def render(sql: str, flavor: Flavor, *, filename: str = "<sql>") -> str:
    """Keep the lines of ``sql`` that belong to ``flavor``; drop the other flavour's blocks."""
    kept: list[str] = []
    stack: list[bool] = []  # per open block: does this branch apply?
    for number, line in enumerate(sql.splitlines(), start=1):
        match = _DIRECTIVE.match(line.strip())
        if match is None:
            if all(stack):
                kept.append(line)
            continue
        keyword, argument = match.groups()
        if keyword == "if":
            if argument not in (Flavor.TIMESCALEDB, Flavor.PLAIN):
                raise MigrationError(f"{filename}:{number}: unknown flavour {argument!r}")
            stack.append(argument == flavor)
        elif not stack:
            raise MigrationError(f"{filename}:{number}: --#{keyword} without --#if")
        elif keyword == "else":
            stack[-1] = not stack[-1]
        else:
            stack.pop()
    if stack:
        raise MigrationError(f"{filename}: --#if without --#endif")
    return "\n".join(kept) + "\n"


# Whether TimescaleDB's chunk catalogue can be read here (the extension is installed), for any
# client: one row, one boolean column ``present``.
TIMESCALEDB_PRESENT = "SELECT to_regclass('timescaledb_information.chunks') IS NOT NULL AS present"


async def timescaledb_version(conn: asyncpg.Connection) -> str | None:
    version: str | None = await conn.fetchval(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    )
    return version


async def schema_flavor(conn: asyncpg.Connection) -> Flavor | None:
    """The flavour the schema was built in (None before the first migration). Not the same as
    whether the extension is installed: a database built on plain PostgreSQL keeps plain
    tables, materialized views and polyfarm's own housekeeping when TimescaleDB is added later."""
    applied = await applied_migrations(conn)
    return Flavor(applied[0].flavor) if applied else None


async def _try_enable_timescaledb(conn: asyncpg.Connection) -> bool:
    if await timescaledb_version(conn):
        return True
    available = await conn.fetchval(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    if not available:
        log.info("TimescaleDB is not installed on this server: using plain PostgreSQL tables")
        return False
    try:
        async with conn.transaction():
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except asyncpg.PostgresError as exc:
        log.warning(
            "TimescaleDB is installed but cannot be enabled: using plain PostgreSQL tables",
            error=str(exc),
            hint="add timescaledb to shared_preload_libraries and restart the server",
        )
        return False
    return True


async def _ensure_bookkeeping(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version     integer PRIMARY KEY,
            name        text NOT NULL,
            checksum    text NOT NULL,
            flavor      text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )


async def applied_migrations(conn: asyncpg.Connection) -> list[AppliedMigration]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    rows = await conn.fetch(
        "SELECT version, name, checksum, flavor FROM schema_migrations ORDER BY version"
    )
    return [AppliedMigration(r["version"], r["name"], r["checksum"], r["flavor"]) for r in rows]


def verify_checksums(migrations: Iterable[Migration], applied: Iterable[AppliedMigration]) -> None:
    by_version = {m.version: m for m in migrations}
    for record in applied:
        current = by_version.get(record.version)
        if current is None:
            raise MigrationError(
                f"the database has migration {record.version:04d}_{record.name} "
                "but no such file exists here (is this an older checkout?)"
            )
        if current.checksum != record.checksum:
            raise ChecksumMismatchError(
                f"migration {current.filename} was changed after it was applied "
                f"(recorded checksum {record.checksum[:12]}…, file now {current.checksum[:12]}…); "
                "migrations are forward-only: restore the file and add a new one"
            )


async def _choose_flavor(conn: asyncpg.Connection, applied: list[AppliedMigration]) -> Flavor:
    if applied:
        flavor = Flavor(applied[0].flavor)
        if flavor is Flavor.PLAIN and await timescaledb_version(conn):
            log.warning("database was built on plain PostgreSQL; TimescaleDB features stay off")
        return flavor
    return Flavor.TIMESCALEDB if await _try_enable_timescaledb(conn) else Flavor.PLAIN


async def migrate(conn: asyncpg.Connection, directory: Path | None = None) -> MigrationReport:
    """Apply every pending migration. Safe to call from several processes at once."""
    migrations = load_migrations(directory or default_migrations_dir())
    async with schema_lock(conn):
        await _ensure_bookkeeping(conn)
        applied = await applied_migrations(conn)
        verify_checksums(migrations, applied)
        flavor = await _choose_flavor(conn, applied)
        done = {record.version for record in applied}
        pending = [m for m in migrations if m.version not in done]
        if flavor is Flavor.TIMESCALEDB and (pending or await has_pending_backfills(conn)):
            async with scheduler_stopped(conn):
                await _apply_all(conn, pending, flavor)
                await run_pending_backfills(conn)
        else:
            await _apply_all(conn, pending, flavor)
        return MigrationReport(flavor, [m.filename for m in pending], len(done))


@contextlib.asynccontextmanager
async def schema_lock(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """The session advisory lock under which polyfarm changes its schema: migrations, and the
    partitions made ahead (two collectors starting together would otherwise both create the
    same partition). PostgreSQL counts a session's holds of one lock, so it nests."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def _apply_all(conn: asyncpg.Connection, pending: list[Migration], flavor: Flavor) -> None:
    for migration in pending:
        await _apply(conn, migration, flavor)


def _has_statements(sql: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


async def _apply(conn: asyncpg.Connection, migration: Migration, flavor: Flavor) -> None:
    sql = render(migration.sql, flavor, filename=migration.filename)
    try:
        async with conn.transaction():
            if _has_statements(sql):  # asyncpg chokes on a query that is only comments
                await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, flavor) "
                "VALUES ($1, $2, $3, $4)",
                migration.version,
                migration.name,
                migration.checksum,
                flavor.value,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"migration {migration.filename} failed: {exc}") from exc
    log.info("applied migration", migration=migration.filename, flavor=flavor.value)
