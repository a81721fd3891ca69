"""TimescaleDB job health: the pure verdict, then the real scheduler's records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from polyfarm.settings import ChunkSettings, RetentionSettings
from polyfarm.store.database import create_pool
from polyfarm.store.jobs import (
    OVERDUE_AFTER,
    JobHealth,
    JobHealthReport,
    JobState,
    job_health,
    job_state,
)
from polyfarm.store.maintenance import AGGREGATE_VIEWS
from polyfarm.store.policies import (
    AGGREGATES,
    COMPRESSED_TABLES,
    HISTORY_TABLES,
    apply_timescale_policies,
)
from polyfarm.store.writer import BulkWriter

from ..conftest import Server
from ..support import as_reader
from ..timescale_jobs import BOOM, add_failing_job, add_idle_job, clear_jobs, make_overdue
from .factories import token, token_day_rows

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# The continuous aggregates that hold rows (migration 0011: 1-minute candles are a view over the
# raw points, and the public candles_* names are views over these).
AGGREGATE_NAMES = {
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
            await apply_timescale_policies(conn, RetentionSettings(), ChunkSettings())
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
    for aggregate in AGGREGATES:
        assert ("policy_compression", aggregate.view) in targets
    assert {t for proc, t in targets if proc == "policy_refresh_continuous_aggregate"} == (
        AGGREGATE_NAMES
    )
    assert not any(job.proc.endswith("policy_telemetry") for job in report.jobs)
    # The policies just set have never run: healthy. (The aggregates' refreshes may have run,
    # and even failed, in the template these databases are cloned from; see timescale_jobs.)
    policies = {
        "_timescaledb_functions.policy_compression",
        "_timescaledb_functions.policy_retention",
    }
    fresh = [job for job in report.jobs if job.proc in policies]
    assert len(fresh) == 2 * len(COMPRESSED_TABLES) + len(HISTORY_TABLES) + len(AGGREGATES)
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


async def refresh_policies_anew(conn: asyncpg.Connection) -> None:
    """The aggregates' refresh policies, removed and added again as they were: a database cloned
    from the template inherits whatever the template's scheduler recorded of them (see
    timescale_jobs), and this test judges runs of its own."""
    rows = await conn.fetch(
        "SELECT hypertable_name, config, schedule_interval FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_refresh_continuous_aggregate'"
    )
    assert {r[0] for r in rows} == AGGREGATE_NAMES
    for view, config, every in rows:
        await conn.execute("SELECT remove_continuous_aggregate_policy($1::regclass)", view)
        await conn.execute(
            "SELECT add_continuous_aggregate_policy($1::regclass, "
            "start_offset => $2::text::interval, end_offset => $3::text::interval, "
            "schedule_interval => $4::interval)",
            view,
            config["start_offset"],
            config["end_offset"],
            every,
        )


async def wait_until_no_job_runs(conn: asyncpg.Connection, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while await conn.fetchval(
        "SELECT count(*) FROM timescaledb_information.job_stats WHERE job_status = 'Running'"
    ):
        assert time.monotonic() < deadline, "a TimescaleDB job ran for over a minute"
        await asyncio.sleep(0.2)


async def test_every_job_runs_cleanly_once_the_data_is_compressed(timescale_dsn: str) -> None:
    """Compression, retention and refresh jobs, each run (``CALL run_job``) over data that the
    compression jobs have compressed: none fails, and job health stays green."""
    pool = await create_pool(timescale_dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_timescale_policies(conn, RetentionSettings(), ChunkSettings())
            await refresh_policies_anew(conn)
            # Not due for an hour: the server's scheduler leaves them to this test.
            await conn.execute(
                "SELECT alter_job(job_id, next_start => now() + INTERVAL '1 hour') "
                "FROM timescaledb_information.jobs"
            )
            # One the scheduler started before that (a policy is due when it is added) would
            # run beside this test's runs of the same job: let it finish first.
            await wait_until_no_job_runs(conn)
            now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            writer = BulkWriter(pool)
            # A day past retention (its chunks get dropped) and one within it (compressed).
            for day in (now - timedelta(days=200), now - timedelta(days=2)):
                for spec, rows in token_day_rows(day, token(1)):
                    assert (await writer.write(spec, rows)).inserted == len(rows)
            for view in AGGREGATE_VIEWS:
                await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
            jobs = await conn.fetch(
                "SELECT job_id, proc_name FROM timescaledb_information.jobs "
                "WHERE proc_name <> 'policy_telemetry' ORDER BY proc_name <> 'policy_compression'"
            )
            for job_id, _ in jobs:  # compression first, then every job over compressed data
                await conn.execute("CALL run_job($1)", job_id)
            for job_id, _ in jobs:
                await conn.execute("CALL run_job($1)", job_id)
            compressed = await conn.fetch(
                "SELECT hypertable_name, bool_and(is_compressed) "
                "FROM timescaledb_information.chunks GROUP BY 1"
            )
            report = await job_health(conn)
    finally:
        await pool.close()
    assert {name for name, done in compressed if done} >= set(COMPRESSED_TABLES)
    procs = {job.proc.split(".")[-1] for job in report.jobs}
    assert procs >= {
        "policy_compression",
        "policy_retention",
        "policy_refresh_continuous_aggregate",
        "polyfarm_rebuild_merged_chunks",
    }
    assert report.healthy, report.unhealthy
    assert all(job.state is JobState.OK and job.latest_error is None for job in report.jobs), [
        job for job in report.jobs if job.state is not JobState.OK or job.latest_error is not None
    ]
