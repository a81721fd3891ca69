from __future__ import annotations

import asyncpg

from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.status import TABLES, schema_status
from polyfarm.store.writer import BulkWriter

from ..conftest import Server
from .factories import T0, price_row


async def test_status_tells_the_truth_about_the_schema(server: Server, pool: asyncpg.Pool) -> None:
    await BulkWriter(pool, clock=lambda: T0).write(
        PRICE_SNAPSHOTS, [price_row(-i) for i in range(50)]
    )
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE price_points")
        status = await schema_status(conn)
    assert status.flavor == server.flavor
    assert status.pending == []
    assert status.schema_version == len(status.applied)
    assert [t.name for t in status.tables] == list(TABLES)
    assert all(t.kind != "missing" for t in status.tables)
    prices = next(t for t in status.tables if t.name == "price_points")
    assert prices.total_bytes > 0
    assert prices.row_estimate == 50
    if server.flavor == "plain":
        # Today and the three days ahead (made with the template, as the daemon makes them)
        # and the rows' day, which the writer made.
        assert (prices.kind, prices.chunk_interval, prices.partitions) == (
            "partitioned",
            "1 day",
            5,
        )
        assert status.timescaledb is None
        assert {kind for _, kind in status.aggregates} == {"materialized view"}
        assert status.jobs == []
    as_dict = status.as_dict()
    assert as_dict["flavor"] == server.flavor
