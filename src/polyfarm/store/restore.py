"""``polyfarm db restore``: an archive of ``polyfarm db backup`` into a new, empty database.

In one transaction, so a failed restore leaves the database as empty as it was. Objects are
owned by the restoring user (``--no-owner``: an archive restores on a server whose roles
differ), and the read-only role ``polyfarm_reader`` is made first, as migration 0008 makes it,
so that the archive's grants to it apply. An archive holding TimescaleDB is restored between
``timescaledb_pre_restore()`` and ``timescaledb_post_restore()``.

A client newer than the server (the embedded wheel's, for an older external server) writes
settings the server does not know (``SET transaction_timeout``, new in PostgreSQL 17): then the
archive goes through ``pg_restore --file=-`` and ``psql`` instead, without those lines.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg

from polyfarm.errors import BackupError
from polyfarm.settings import Settings
from polyfarm.store.backup import (
    STDERR_LINES,
    TABLE_DATA_ENTRY,
    Client,
    archive_has_timescaledb,
    choose_client,
    connect,
    libpq_target,
    run_client,
    server_facts,
)
from polyfarm.store.database import resolve_target
from polyfarm.store.migrations import default_migrations_dir, load_migrations

READER_ROLE_MIGRATION = 8  # 0008_reader_role.sql: the role and its grants, idempotent
# Lines a newer client writes that an older server refuses, by the version that knows them.
NEWER_SETTINGS = {17: b"SET transaction_timeout = 0;"}
HEADER_LINES = 200  # they are in the script's preamble
COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class RestoreReport:
    archive: Path
    seconds: float
    tables: int
    timescaledb: bool


async def restore_backup(settings: Settings, archive: Path) -> RestoreReport:
    """Restore ``archive`` into the configured database, which must hold no polyfarm schema."""
    target = resolve_target(settings)
    conn = await connect(target)
    try:
        facts = await server_facts(conn)
        if facts.has_schema:
            raise BackupError(
                "the target database already holds a polyfarm schema: restore into a new, "
                "empty database (a fresh data directory, or a database made with CREATE DATABASE)"
            )
        client = choose_client(facts.major, target.embedded is not None)
        contents = await asyncio.to_thread(
            run_client, [client.tool("pg_restore"), "--list", str(archive)], {}
        )
        timescaledb = archive_has_timescaledb(contents)
        if timescaledb and not facts.timescaledb_available:
            raise BackupError("the archive holds TimescaleDB; the target server lacks it")
        started = time.monotonic()
        await conn.execute(_reader_role_sql())
        restore = Restore(client, target.dsn, archive, facts.major)
        if timescaledb:
            await _between_timescaledb_steps(conn, restore)
        else:
            await asyncio.to_thread(restore.run)
    finally:
        await conn.close()
    return RestoreReport(
        archive=archive,
        seconds=time.monotonic() - started,
        tables=len(TABLE_DATA_ENTRY.findall(contents)),
        timescaledb=timescaledb,
    )


async def _between_timescaledb_steps(conn: asyncpg.Connection, restore: Restore) -> None:
    await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    await conn.execute("SELECT timescaledb_pre_restore()")
    try:
        await asyncio.to_thread(restore.run)
    finally:
        # Also after a failure: the extension's background workers must run again.
        await conn.execute("SELECT timescaledb_post_restore()")


def _reader_role_sql() -> str:
    migrations = load_migrations(default_migrations_dir())
    return next(m.sql for m in migrations if m.version == READER_ROLE_MIGRATION)


@dataclass(frozen=True)
class Restore:
    client: Client
    dsn: str
    archive: Path
    server_major: int

    def run(self) -> None:
        if self.client.major > self.server_major:
            self._through_psql()
            return
        dsn, env = libpq_target(self.dsn)
        run_client(
            [
                self.client.tool("pg_restore"),
                f"--dbname={dsn}",
                "--no-owner",
                "--exit-on-error",
                "--single-transaction",
                str(self.archive),
            ],
            env,
        )

    def _through_psql(self) -> None:
        """``pg_restore --file=-`` into ``psql``, the lines the server would refuse left out."""
        dsn, env = libpq_target(self.dsn)
        unknown = {line for version, line in NEWER_SETTINGS.items() if self.server_major < version}
        script = [self.client.tool("pg_restore"), "--no-owner", "--file=-", str(self.archive)]
        load = [self.client.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        load += ["--single-transaction", f"--dbname={dsn}"]
        pipe(script, load, env, unknown)


def pipe(script: list[str], load: list[str], env: dict[str, str], unknown: set[bytes]) -> None:
    """Run ``script | load`` with the ``unknown`` lines dropped; a ``BackupError`` saying
    which side failed and why. (Errors go to files: pipes left unread could block either.)"""
    with tempfile.TemporaryFile() as script_err, tempfile.TemporaryFile() as load_err:
        loader = subprocess.Popen(
            load, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=load_err,
            env=_environment(env),
        )  # fmt: skip
        writer = subprocess.Popen(
            script, stdout=subprocess.PIPE, stderr=script_err, env=_environment({})
        )
        source, sink = writer.stdout, loader.stdin
        assert source is not None
        assert sink is not None
        try:
            _copy_without(source, sink, unknown)
        except BrokenPipeError:
            pass  # the loader stopped at an error: its stderr says which
        finally:
            sink.close()
            source.close()
        failures = [
            _failure(Path(script[0]).name, writer.wait(), script_err),
            _failure(Path(load[0]).name, loader.wait(), load_err),
        ]
    problems = [text for text in failures if text]
    if problems:
        raise BackupError("; ".join(problems))


def _copy_without(source: IO[bytes], sink: IO[bytes], unknown: set[bytes]) -> None:
    for _ in range(HEADER_LINES):
        line = source.readline()
        if not line:
            return
        if line.rstrip(b"\n") not in unknown:
            sink.write(line)
    shutil.copyfileobj(source, sink, COPY_CHUNK)


def _failure(name: str, code: int, err: IO[bytes]) -> str | None:
    if code == 0:
        return None
    err.seek(0)
    lines = err.read().decode(errors="replace").strip().splitlines()
    return f"{name} failed (exit {code}): " + "\n".join(lines[-STDERR_LINES:])


def _environment(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra, "LC_ALL": "C"}
