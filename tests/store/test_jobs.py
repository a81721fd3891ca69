"""TimescaleDB job health: the pure verdict, then the real scheduler's records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from polyfarm.settings import RetentionSettings
from polyfarm.store.jobs import (
    OVERDUE_AFTER,
    JobHealth,
    JobHealthReport,
    JobState,
    job_health,
    job_state,
)
from polyfarm.store.policies import COMPRESSED_TABLES, apply_timescale_policies

from ..conftest import Server
from ..support import as_reader
from ..timescale_jobs import BOOM, add_failing_job, add_idle_job, clear_jobs, make_overdue

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# The continuous aggregates that hold rows (migration 0011: 1-minute candles are a view over the
# raw points, and the public candles_* names are views over these).
AGGREGATES = {
    "price_candles_5m",
    "price_candles_15m",
    "price_candles_1h",
    "price_candles_4h",
    "price_candles_1d",
    "trade_flow_1h",
}


@pytest.mark.parametrize(
    ("succeeded", "scheduled", "late", "expected"),
    [
        (True, True, timedelta(0), JobState.OK),
        (None, True, None, JobState.OK),  # running now: TimescaleDB keeps no next start
        (None, True, -timedelta(hours=1), JobState.OK),  # not due yet, never ran
        (True, True, OVERDUE_AFTER, JobState.OK),  # late, but within the grace
        (True, True, OVERDUE_AFTER + timedelta(seconds=1), JobState.OVERDUE),
        (None, True, timedelta(days=1), JobState.OVERDUE),  # never ran although due long ago
        (False, True, timedelta(0), JobState.FAILING),
        (False, True, timedelta(days=1), JobState.FAILING),  # failing outranks overdue
        (True, False, None, JobState.PAUSED),
        (False, False, None, JobState.FAILING),  # pausing a failing job hides nothing
    ],
)
def test_job_state(
    succeeded: bool | None, scheduled: bool, late: timedelta | None, expected: JobState
) -> None:
    next_start = None if late is None else NOW - late
    state = job_state(
        last_run_succeeded=succeeded, scheduled=scheduled, next_start=next_start, now=NOW
    )
    assert state is expected
    assert state.healthy is (expected in (JobState.OK, JobState.PAUSED))


async def test_every_policy_is_reported_healthy(server: Server, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        if server.flavor == "timescaledb":  # as `polyfarm db migrate` sets them
            await apply_timescale_policies(conn, RetentionSettings())
        report = await job_health(conn)
    if server.flavor == "plain":
        assert report.applicable is False
        assert report.jobs == ()
        assert report.healthy
        assert report.as_dict()["applicable"] is False
        return
    assert report.applicable
    targets = {(job.proc.split(".")[-1], job.hypertable) for job in report.jobs}
    for table in COMPRESSED_TABLES:
        assert ("policy_compression", table) in targets
        assert ("policy_retention", table) in targets
    assert {t for proc, t in targets if proc == "policy_refresh_continuous_aggregate"} == (
        AGGREGATES
    )
    assert not any(job.proc.endswith("policy_telemetry") for job in report.jobs)
    # The policies just set have never run: healthy. (The aggregates' refreshes may have run,
    # and even failed, in the template these databases are cloned from; see timescale_jobs.)
    policies = {
        "_timescaledb_functions.policy_compression",
        "_timescaledb_functions.policy_retention",
    }
    fresh = [job for job in report.jobs if job.proc in policies]
    assert len(fresh) == 2 * len(COMPRESSED_TABLES)
    for job in fresh:
        assert job.state is JobState.OK, job
        assert (job.total_runs, job.last_run_succeeded, job.latest_error) == (0, None, None)
        assert (job.last_run_started_at, job.last_success_at) == (None, None)


@pytest.fixture
async def ts_conn(timescale_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(timescale_dsn)
    yield conn
    await conn.close()


def _job(report: JobHealthReport, job_id: int) -> JobHealth:
    return next(job for job in report.jobs if job.job_id == job_id)


async def test_a_failing_job_is_reported_with_its_error(ts_conn: asyncpg.Connection) -> None:
    await clear_jobs(ts_conn)
    job_id = await add_failing_job(ts_conn)
    report = await job_health(ts_conn)
    job = _job(report, job_id)
    assert job.state is JobState.FAILING
    assert job.last_run_succeeded is False
    assert job.proc == "public.polyfarm_test_boom"
    assert job.application_name == f"User-Defined Action [{job_id}]"
    assert job.hypertable is None
    assert job.total_runs >= 1
    assert job.total_failures >= 1
    assert job.last_success_at is None  # TimescaleDB's '-infinity' reads as never
    assert job.last_run_started_at is not None
    assert job.latest_error == BOOM
    assert job.latest_error_at is not None
    assert not report.healthy
    assert report.unhealthy == (job,)
    assert report.counts() == {
        JobState.FAILING: 1,
        JobState.OVERDUE: 0,
        JobState.PAUSED: 0,
        JobState.OK: 0,
    }
    assert report.as_dict()["counts"] == {"failing": 1, "overdue": 0, "paused": 0, "ok": 0}


async def test_the_reader_role_sees_the_error_too(
    timescale_dsn: str, ts_conn: asyncpg.Connection
) -> None:
    """TimescaleDB's job_errors hides errors from polyfarm_reader; migration 0014 shows them."""
    job_id = await add_failing_job(ts_conn)
    reader = await asyncpg.connect(as_reader(timescale_dsn))
    try:
        assert await reader.fetchval("SELECT current_user") == "polyfarm_reader"
        hidden = await reader.fetchval(
            "SELECT count(*) FROM timescaledb_information.job_errors WHERE job_id = $1", job_id
        )
        assert hidden == 0
        async with reader.transaction(readonly=True):
            report = await job_health(reader)
    finally:
        await reader.close()
    job = _job(report, job_id)
    assert job.state is JobState.FAILING
    assert job.latest_error == BOOM


async def test_an_overdue_job_and_a_paused_one(ts_conn: asyncpg.Connection) -> None:
    idle, overdue, paused = [await add_idle_job(ts_conn) for _ in range(3)]
    await make_overdue(ts_conn, overdue)
    await ts_conn.execute("SELECT alter_job($1, scheduled => false)", paused)
    report = await job_health(ts_conn)
    assert _job(report, idle).state is JobState.OK
    late = _job(report, overdue)
    assert late.state is JobState.OVERDUE
    assert late.next_start is not None
    assert report.checked_at - late.next_start > OVERDUE_AFTER
    assert late.last_run_started_at is None
    assert _job(report, paused).state is JobState.PAUSED
    assert _job(report, paused).next_start is None
    assert late in report.unhealthy
    assert _job(report, paused) not in report.unhealthy
    assert report.counts()[JobState.OVERDUE] >= 1
