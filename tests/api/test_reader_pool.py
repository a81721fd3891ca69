"""The API reads through its own pool: as ``polyfarm_reader``, every session READ ONLY, and a
loud, still read-only fallback to the owner when that role cannot log in."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from structlog.testing import capture_logs

from polyfarm.errors import DatabaseError
from polyfarm.settings import Settings
from polyfarm.store import database
from polyfarm.store.database import dsn_with_user, open_reader_pool

from .conftest import ClientFactory, api_settings

WRITES = (
    "INSERT INTO feed_gaps (stream, gap_start, gap_end, reason) VALUES ('x', now(), now(), 'y')",
    "UPDATE markets SET closed = true",
    "DELETE FROM task_runs",
    "CREATE TABLE intruder (id int)",
)


def settings_for(dsn: str, tmp_path: Path, **api: object) -> Settings:
    return api_settings(tmp_path, database_url=dsn, api=api)


async def refuses_writes(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
        for statement in WRITES:
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await conn.execute(statement)


@pytest.fixture
async def no_connect_dsn(db_dsn: str) -> str:
    """A database polyfarm_reader may not connect to (as when its role cannot log in)."""
    conn = await asyncpg.connect(db_dsn)
    try:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC, polyfarm_reader')
    finally:
        await conn.close()
    return db_dsn


async def test_the_api_pool_reads_as_polyfarm_reader_and_cannot_write(
    db_dsn: str, tmp_path: Path
) -> None:
    async with open_reader_pool(settings_for(db_dsn, tmp_path), start_embedded=False) as pool:
        assert await pool.fetchval("SELECT current_user") == "polyfarm_reader"
        assert await pool.fetchval("SELECT count(*) FROM markets") == 0
        await refuses_writes(pool)
        async with pool.acquire() as conn:
            # Even with the session switched to read-write, the role has no write privilege.
            await conn.execute("SET default_transaction_read_only = off")
            for statement in WRITES:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
            await conn.execute("RESET default_transaction_read_only")


async def test_health_reports_the_reader_role(db_dsn: str, make_client: ClientFactory) -> None:
    async with make_client(db_dsn) as client:
        health = (await client.get("/health/detailed")).json()
    assert health["database"]["role"] == "polyfarm_reader"
    assert health["database"]["role_can_write"] is False


@pytest.mark.parametrize("refusal", ["no CONNECT", "no such role"])
async def test_a_refused_reader_falls_back_to_a_read_only_owner_with_one_warning(
    refusal: str,
    no_connect_dsn: str,
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if refusal == "no such role":  # the role is checked before CONNECT on the database
        monkeypatch.setattr(database, "READER_ROLE", "polyfarm_no_such_role")
    with capture_logs() as logs:
        async with make_client(no_connect_dsn) as client:
            health = (await client.get("/health/detailed")).json()
            stats = await client.get("/api/stats")
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1, warnings
    assert "reads as the database owner" in warnings[0]["event"]
    assert "api.database_url" in warnings[0]["event"]
    assert health["database"]["role"] == "postgres"
    assert health["database"]["role_can_write"] is True
    assert stats.status_code == 200


async def test_the_owner_fallback_still_refuses_writes(no_connect_dsn: str, tmp_path: Path) -> None:
    settings = settings_for(no_connect_dsn, tmp_path)
    async with open_reader_pool(settings, start_embedded=False) as pool:
        assert await pool.fetchval("SELECT current_user") == "postgres"
        await refuses_writes(pool)


async def test_a_refused_explicit_dsn_fails_without_showing_its_password(
    db_dsn: str, tmp_path: Path
) -> None:
    explicit = dsn_with_user(db_dsn, "polyfarm_nobody").replace("@", ":hunter2@", 1)
    settings = settings_for(db_dsn, tmp_path, database_url=explicit)
    with capture_logs() as logs, pytest.raises(DatabaseError) as refused:
        async with open_reader_pool(settings, start_embedded=False):
            pass
    message = str(refused.value)
    assert "api.database_url" in message
    assert "polyfarm_nobody" in message
    assert "hunter2" not in message
    assert ":***@" in message
    assert "hunter2" not in repr(logs)


async def test_an_explicit_dsn_is_used_and_read_only(db_dsn: str, tmp_path: Path) -> None:
    settings = settings_for(db_dsn, tmp_path, database_url=db_dsn)  # the owner, on purpose
    with capture_logs() as logs:
        async with open_reader_pool(settings, start_embedded=False) as pool:
            assert await pool.fetchval("SELECT current_user") == "postgres"
            await refuses_writes(pool)
    assert not [entry for entry in logs if entry["log_level"] == "warning"]
