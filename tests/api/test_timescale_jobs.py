"""``/health/detailed``'s ``timescaledb_jobs``: the real scheduler's records, read as
``polyfarm_reader``; every collector is on time, so any ``degraded`` is the jobs' doing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from polyfarm.settings import Settings
from polyfarm.store.ops import record_health
from polyfarm.store.stats import collector_intervals

from ..timescale_jobs import BOOM, add_failing_job, add_idle_job, clear_jobs, make_overdue
from .conftest import ClientFactory

COUNTS = ("failing", "overdue", "paused", "ok")


async def collectors_on_time(conn: asyncpg.Connection) -> None:
    for collector in collector_intervals(Settings()):
        await record_health(conn, collector, at=datetime.now(UTC), ok=True, rows=1)


async def detailed_health(make_client: ClientFactory, dsn: str) -> dict[str, Any]:
    async with make_client(dsn) as client:
        response = await client.get("/health/detailed")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["database"]["role"] == "polyfarm_reader"
    return body


def counts(body: dict[str, Any]) -> dict[str, int]:
    return {name: body["timescaledb_jobs"][name] for name in COUNTS}


@pytest.fixture
async def ts_conn(timescale_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """The TimescaleDB database with no job but the test's own, every collector on time."""
    conn = await asyncpg.connect(timescale_dsn)
    await clear_jobs(conn)
    await collectors_on_time(conn)
    yield conn
    await conn.close()


async def test_plain_postgresql_has_no_jobs_to_report(
    db_dsn: str, make_client: ClientFactory
) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        await collectors_on_time(conn)
    finally:
        await conn.close()
    body = await detailed_health(make_client, db_dsn)
    jobs = body["timescaledb_jobs"]
    assert jobs["applicable"] is False
    assert jobs["jobs"] == []
    assert counts(body) == dict.fromkeys(COUNTS, 0)
    assert body["status"] == "ok"


async def test_a_failing_job_degrades_health_and_says_why(
    timescale_dsn: str, ts_conn: asyncpg.Connection, make_client: ClientFactory
) -> None:
    before = await detailed_health(make_client, timescale_dsn)
    assert before["status"] == "ok"
    assert before["timescaledb_jobs"]["applicable"] is True
    assert before["timescaledb_jobs"]["jobs"] == []
    job_id = await add_failing_job(ts_conn)
    body = await detailed_health(make_client, timescale_dsn)
    assert body["status"] == "degraded"
    assert counts(body) == {"failing": 1, "overdue": 0, "paused": 0, "ok": 0}
    (job,) = body["timescaledb_jobs"]["jobs"]
    assert job["job_id"] == job_id
    assert job["state"] == "failing"
    assert job["proc"] == "public.polyfarm_test_boom"
    assert job["hypertable"] is None
    assert job["last_run_succeeded"] is False
    assert job["last_success_at"] is None
    assert job["total_failures"] >= 1
    assert job["latest_error"] == BOOM  # through migration 0014's function: the reader's view
    assert job["latest_error_at"] is not None


async def test_an_overdue_job_degrades_health_a_paused_one_does_not(
    timescale_dsn: str, ts_conn: asyncpg.Connection, make_client: ClientFactory
) -> None:
    paused = await add_idle_job(ts_conn)
    await ts_conn.execute("SELECT alter_job($1, scheduled => false)", paused)
    body = await detailed_health(make_client, timescale_dsn)
    assert body["status"] == "ok"
    assert counts(body) == {"failing": 0, "overdue": 0, "paused": 1, "ok": 0}
    await make_overdue(ts_conn, await add_idle_job(ts_conn))
    body = await detailed_health(make_client, timescale_dsn)
    assert body["status"] == "degraded"
    assert counts(body) == {"failing": 0, "overdue": 1, "paused": 1, "ok": 0}
