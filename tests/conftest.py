"""Shared fixtures: one embedded PostgreSQL for the whole session, a fresh database per test.

Every test database is cloned from a migrated template (``CREATE DATABASE … TEMPLATE``), which
takes milliseconds, so tests never share rows. With ``POLYFARM_TEST_DATABASE_URL`` pointing at a
server that has TimescaleDB, ``flavor``-parametrised tests also run there; otherwise those
cases are skipped with a message saying why.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from polyfarm.clock import utc_now
from polyfarm.settings import RetentionSettings
from polyfarm.store.database import create_pool
from polyfarm.store.embedded import EmbeddedPostgres
from polyfarm.store.migrations import migrate
from polyfarm.store.partitions import ensure_partitions

TIMESCALE_ENV = "POLYFARM_TEST_DATABASE_URL"
# One template per test session: sessions of other checkouts may share a TimescaleDB server,
# each with its own migrations, and must not drop or reuse each other's template.
TEMPLATE = f"polyfarm_template_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server on which tests may create and drop databases."""

    flavor: str
    admin_dsn: str  # a database to run CREATE DATABASE from

    def dsn_for(self, database: str) -> str:
        parts = urlsplit(self.admin_dsn)
        return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[EmbeddedPostgres]:
    data_dir = Path(tempfile.mkdtemp(prefix="polyfarm-test-"))
    server = EmbeddedPostgres(data_dir)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


async def _create_template(server: Server) -> None:
    admin = await asyncpg.connect(server.admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(server.dsn_for(TEMPLATE))
    try:
        report = await migrate(conn)
        # As the daemon leaves it: partitions from today on, no DEFAULT partition (a test's rows
        # of another day get theirs from the writer, as a backfill's do).
        await ensure_partitions(conn, utc_now(), RetentionSettings())
        assert report.flavor.value == server.flavor, (
            f"expected a {server.flavor} schema, the server gave {report.flavor.value}"
        )
    finally:
        await conn.close()
    # TimescaleDB's job scheduler connects to every database with the extension, and a template
    # with a session attached cannot be copied: close the template to connections.
    admin = await asyncpg.connect(server.admin_dsn)
    try:
        await admin.execute(f"ALTER DATABASE {TEMPLATE} WITH ALLOW_CONNECTIONS false")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", TEMPLATE
        )
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def plain_server(embedded_server: EmbeddedPostgres) -> Server:
    server = Server("plain", embedded_server.dsn("postgres"))
    await _create_template(server)
    return server


async def _drop_template(server: Server) -> None:
    admin = await asyncpg.connect(server.admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def timescale_server() -> AsyncIterator[Server]:
    url = os.environ.get(TIMESCALE_ENV)
    if not url:
        pytest.skip(f"TimescaleDB tests skipped: set {TIMESCALE_ENV} to a server with timescaledb")
    server = Server("timescaledb", url)
    try:
        await _create_template(server)
        yield server
    finally:  # also when building the template failed half-way
        await _drop_template(server)


@pytest.fixture(params=["plain", "timescaledb"])
def server(request: pytest.FixtureRequest) -> Server:
    # Sync on purpose: resolving an async fixture from inside a running loop is not possible.
    name = "plain_server" if request.param == "plain" else "timescale_server"
    result: Server = request.getfixturevalue(name)
    return result


async def _fresh_database(server: Server, template: str) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server.admin_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    finally:
        await admin.close()
    yield server.dsn_for(name)
    admin = await asyncpg.connect(server.admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def db_dsn(server: Server) -> AsyncIterator[str]:
    """A migrated database of the parametrised flavour, empty of data."""
    async for dsn in _fresh_database(server, TEMPLATE):
        yield dsn


@pytest.fixture
async def timescale_dsn(timescale_server: Server) -> AsyncIterator[str]:
    """A migrated TimescaleDB database, whatever the flavour parameter (TimescaleDB-only tests)."""
    async for dsn in _fresh_database(timescale_server, TEMPLATE):
        yield dsn


@pytest.fixture
async def empty_dsn(server: Server) -> AsyncIterator[str]:
    """A database with no schema at all (for migration tests)."""
    async for dsn in _fresh_database(server, "template0"):
        yield dsn


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def plain_dsn(plain_server: Server) -> AsyncIterator[str]:
    """A fresh database on the embedded server only (for what only plain PostgreSQL does)."""
    async for dsn in _fresh_database(plain_server, TEMPLATE):
        yield dsn
