"""A database keeps the flavour it was built in: TimescaleDB installed later changes nothing.

Built on plain PostgreSQL (here: by a role that may not enable the extension, as on a server
where TimescaleDB is installed but not yet allowed), the schema has plain tables and
materialized views; when the extension is added afterwards, the plain housekeeping (retention,
refreshes) must still run, or the disk fills and the candles stop. Needs a TimescaleDB server
(skipped, saying why, without POLYFARM_TEST_DATABASE_URL).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from polyfarm.settings import RetentionSettings
from polyfarm.store.database import create_pool
from polyfarm.store.maintenance import AGGREGATE_VIEWS, run_maintenance
from polyfarm.store.migrations import Flavor, migrate, schema_flavor
from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.writer import BulkWriter

from ..conftest import Server
from .factories import T0, price_row


@dataclass(frozen=True)
class OwnedDatabase:
    owner_dsn: str  # the owner of its tables, who may not enable TimescaleDB
    admin_dsn: str  # the server's administrator, in the same database


@pytest.fixture
async def owned(timescale_server: Server) -> AsyncIterator[OwnedDatabase]:
    suffix = uuid.uuid4().hex[:10]
    role, database = f"owner_{suffix}", f"t_{suffix}"
    admin = await asyncpg.connect(timescale_server.admin_dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN CREATEROLE")
        await admin.execute(f"CREATE DATABASE {database} TEMPLATE template0")
        # Tables in public, but no CREATE on the database: a trusted extension (TimescaleDB
        # is one) needs that. CONNECT with grant option for the reader role's grant (0008).
        await admin.execute(f"GRANT CONNECT ON DATABASE {database} TO {role} WITH GRANT OPTION")
        dsn = urlsplit(timescale_server.dsn_for(database))
        inside = await asyncpg.connect(urlunsplit(dsn))
        try:
            await inside.execute(f"ALTER SCHEMA public OWNER TO {role}")
        finally:
            await inside.close()
        owner = dsn._replace(netloc=f"{role}@{dsn.hostname}:{dsn.port}")
        yield OwnedDatabase(urlunsplit(owner), urlunsplit(dsn))
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def test_a_plain_schema_keeps_its_housekeeping_when_timescaledb_comes_later(
    owned: OwnedDatabase,
) -> None:
    conn = await asyncpg.connect(owned.owner_dsn)
    try:
        assert (await migrate(conn)).flavor is Flavor.PLAIN
    finally:
        await conn.close()
    superuser = await asyncpg.connect(owned.admin_dsn)
    try:
        # In a schema of its own: its time_bucket() would clash with plain polyfarm's (0001).
        await superuser.execute("CREATE SCHEMA tsdb")
        await superuser.execute("CREATE EXTENSION timescaledb WITH SCHEMA tsdb")
    finally:
        await superuser.close()
    pool = await create_pool(owned.owner_dsn, min_size=1, max_size=2)
    try:
        old = price_row()._replace(ts=T0 - timedelta(days=400))
        await BulkWriter(pool, clock=lambda: T0).write(PRICE_SNAPSHOTS, [old, price_row()])
        async with pool.acquire() as conn:
            assert await schema_flavor(conn) is Flavor.PLAIN
            report = await run_maintenance(conn, RetentionSettings(), T0)
            left = await conn.fetchval("SELECT count(*) FROM price_snapshots")
            candles = await conn.fetchval("SELECT count(*) FROM price_candles_5m")
    finally:
        await pool.close()
    assert report.refreshed == list(AGGREGATE_VIEWS)
    assert report.deleted["price_snapshots"] == 1
    assert (left, candles) == (1, 1)
