from __future__ import annotations

import asyncpg
import pytest

from ..conftest import Server
from ..support import as_reader


async def test_the_reader_role_reads_everything_and_writes_nothing(
    server: Server, db_dsn: str
) -> None:
    conn = await asyncpg.connect(as_reader(db_dsn))
    try:
        assert await conn.fetchval("SELECT current_user") == "polyfarm_reader"
        for relation in ("markets", "price_snapshots", "trades", "task_runs", "quarantine"):
            await conn.fetchval(f"SELECT count(*) FROM {relation}")
        for view in ("candles_1m", "candles_1d", "trade_volume_1h"):
            assert await conn.fetchval("SELECT has_table_privilege($1, 'SELECT')", view)
        with pytest.raises(asyncpg.PostgresError) as refused:
            await conn.execute(
                "INSERT INTO feed_gaps (stream, gap_start, gap_end, reason) "
                "VALUES ('x', now(), now(), 'y')"
            )
        assert refused.value.sqlstate in {"25006", "42501"}  # read-only / no privilege
        # Even with read-only switched off, the role holds no write privilege.
        await conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM markets")
    finally:
        await conn.close()
