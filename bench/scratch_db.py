"""Fresh, fully migrated databases for a benchmark run, made and dropped on a given server."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from polyfarm.settings import RetentionSettings
from polyfarm.store.embedded import EmbeddedPostgres
from polyfarm.store.migrations import migrate

try:
    from polyfarm.store.partitions import ensure_partitions
except ImportError:  # a checkout older than migration 0015 (a "before" run): no partitions
    ensure_partitions = None  # type: ignore[assignment]


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def fresh_database(admin_dsn: str, prefix: str, now: datetime | None = None) -> str:
    """A new database named ``<prefix>_<random>``, migrated to the shipped schema; on plain
    PostgreSQL with the partitions the daemon would have made at ``now`` (the benchmark's
    clock), so that its rows land in day partitions rather than the DEFAULT one."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    dsn = with_database(admin_dsn, name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        if now is not None and ensure_partitions is not None:
            await ensure_partitions(conn, now, RetentionSettings())
    finally:
        await conn.close()
    return dsn


async def drop_database(admin_dsn: str, dsn: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {urlsplit(dsn).path[1:]} WITH (FORCE)")
    finally:
        await admin.close()


@contextlib.contextmanager
def admin_server(dsn: str | None, prefix: str) -> Iterator[tuple[str, int | None]]:
    """The admin DSN to make databases on, and the postmaster's pid when it is ours: the
    server ``dsn`` names, or an embedded PostgreSQL in a temporary directory, removed after."""
    if dsn:
        yield dsn, None
        return
    data_dir = Path(tempfile.mkdtemp(prefix=f"polyfarm-{prefix}-"))
    server = EmbeddedPostgres(data_dir)
    server.start()
    try:
        yield server.dsn("postgres"), server.state().pid
    finally:
        EmbeddedPostgres(data_dir).stop()
        shutil.rmtree(data_dir, ignore_errors=True)
