"""Are TimescaleDB's background jobs doing their work?

Compression, retention and the continuous aggregates' refreshes are jobs that TimescaleDB's
scheduler runs inside the server. When they fail, the farm still serves correct data (real-time
aggregates fill in, uncompressed chunks still answer), so nobody notices until the disk is full
or a candle query crawls. ``job_health`` reads what the scheduler recorded
(``timescaledb_information.jobs``, ``job_stats`` and the latest entry of ``job_errors`` per job)
in one query and says, per job, whether it is healthy; ``polyfarm db status``,
``/health/detailed`` and the collector's Prometheus gauges all report from it.

Times are compared with the server's clock, the one the scheduler runs by. Plain PostgreSQL has
no jobs: the report says it does not apply (the maintenance task does that work there).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg

# A job whose start is this late has not been picked up: the scheduler is stopped, out of
# background workers (timescaledb.max_background_workers) or switched off
# (timescaledb.restoring left on after a restore). Generous, because a busy scheduler starts
# due jobs a little late and the launcher looks for new databases only once a minute.
OVERDUE_AFTER = timedelta(minutes=15)

# The latest error of each job. TimescaleDB shows a job's errors only to members of the
# database owner's role or of the job owner's; migration 0014's function, run with its owner's
# rights, shows them to the API's reader role too. Where it is missing (a schema older than
# 0014) or not granted (a role of the operator's own), the view is read instead: it shows the
# owner its errors and others none.
_ERRORS_BY_FUNCTION = "SELECT job_id, finish_time, err_message FROM polyfarm_latest_job_errors()"
_ERRORS_BY_VIEW = """
    SELECT DISTINCT ON (job_id) job_id, finish_time, err_message
    FROM timescaledb_information.job_errors
    ORDER BY job_id, start_time DESC
"""

# While a job runs, and before its first run, TimescaleDB keeps '-infinity' in its times; the
# query turns every such placeholder into NULL. The telemetry reporter is left out: it phones
# TimescaleDB Inc., fails on a server without internet access and is no part of the farm.
_JOBS = """
WITH latest_error AS ({errors})
SELECT j.job_id,
       j.application_name,
       format('%s.%s', j.proc_schema, j.proc_name) AS proc,
       j.hypertable_name,
       j.scheduled,
       CASE s.last_run_status WHEN 'Success' THEN true WHEN 'Failed' THEN false END
           AS last_run_succeeded,
       CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END
           AS last_run_started_at,
       CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END
           AS last_success_at,
       CASE WHEN isfinite(s.next_start) THEN s.next_start END AS next_start,
       coalesce(s.total_runs, 0) AS total_runs,
       coalesce(s.total_failures, 0) AS total_failures,
       e.err_message AS latest_error,
       e.finish_time AS latest_error_at
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN latest_error e ON e.job_id = j.job_id
WHERE (j.proc_schema, j.proc_name) <> ('_timescaledb_functions', 'policy_telemetry')
ORDER BY j.job_id
"""
_JOBS_BY_FUNCTION = _JOBS.format(errors=_ERRORS_BY_FUNCTION)
_JOBS_BY_VIEW = _JOBS.format(errors=_ERRORS_BY_VIEW)

_CAPABILITIES = """
SELECT now() AS checked_at,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb,
       coalesce(has_function_privilege(to_regprocedure('polyfarm_latest_job_errors()'),
                                       'EXECUTE'), false) AS errors_function
"""


class JobState(StrEnum):
    """A TimescaleDB job's health: ``failing`` (its last run failed), ``overdue`` (due over 15
    minutes ago and not started), ``paused`` (switched off), ``ok``; failing and overdue jobs
    are unhealthy."""

    # Worst first: the order in which ``job_state`` decides.

    FAILING = "failing"  # its last run failed
    OVERDUE = "overdue"  # it should have started a while ago and has not
    PAUSED = "paused"  # switched off (alter_job scheduled => false): by an operator, on purpose
    OK = "ok"  # its last run succeeded, it is running, or it has not been due yet

    @property
    def healthy(self) -> bool:
        return self in (JobState.OK, JobState.PAUSED)


@dataclass(frozen=True)
class JobHealth:
    job_id: int
    application_name: str
    proc: str  # schema-qualified procedure, e.g. _timescaledb_functions.policy_compression
    hypertable: str | None  # the continuous aggregate's name for a refresh policy
    scheduled: bool
    last_run_succeeded: bool | None  # None: never finished, or running now
    last_run_started_at: datetime | None
    last_success_at: datetime | None
    next_start: datetime | None  # None: running now, or paused
    total_runs: int
    total_failures: int
    latest_error: str | None  # the newest error on record, however old
    latest_error_at: datetime | None
    state: JobState

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "state": self.state.value}


@dataclass(frozen=True)
class JobHealthReport:
    """Every job's health; ``applicable`` is False on plain PostgreSQL (there are no jobs)."""

    applicable: bool
    checked_at: datetime
    jobs: tuple[JobHealth, ...] = ()

    def counts(self) -> dict[JobState, int]:
        """Jobs per state, every state present."""
        found = Counter(job.state for job in self.jobs)
        return {state: found[state] for state in JobState}

    @property
    def unhealthy(self) -> tuple[JobHealth, ...]:
        return tuple(job for job in self.jobs if not job.state.healthy)

    @property
    def healthy(self) -> bool:
        return not self.unhealthy

    def as_dict(self) -> dict[str, object]:
        return {
            "applicable": self.applicable,
            "checked_at": self.checked_at,
            "counts": {state.value: count for state, count in self.counts().items()},
            "jobs": [job.as_dict() for job in self.jobs],
        }


def job_state(
    *,
    last_run_succeeded: bool | None,
    scheduled: bool,
    next_start: datetime | None,
    now: datetime,
    overdue_after: timedelta = OVERDUE_AFTER,
) -> JobState:
    # A paused job that last failed is still failing: pausing it hides nothing here.
    if last_run_succeeded is False:
        return JobState.FAILING
    if not scheduled:
        return JobState.PAUSED
    if next_start is not None and now - next_start > overdue_after:
        return JobState.OVERDUE
    return JobState.OK


def _job(row: asyncpg.Record, now: datetime, overdue_after: timedelta) -> JobHealth:
    return JobHealth(
        job_id=row["job_id"],
        application_name=row["application_name"],
        proc=row["proc"],
        hypertable=row["hypertable_name"],
        scheduled=row["scheduled"],
        last_run_succeeded=row["last_run_succeeded"],
        last_run_started_at=row["last_run_started_at"],
        last_success_at=row["last_success_at"],
        next_start=row["next_start"],
        total_runs=row["total_runs"],
        total_failures=row["total_failures"],
        latest_error=row["latest_error"],
        latest_error_at=row["latest_error_at"],
        state=job_state(
            last_run_succeeded=row["last_run_succeeded"],
            scheduled=row["scheduled"],
            next_start=row["next_start"],
            now=now,
            overdue_after=overdue_after,
        ),
    )


async def job_health(
    conn: asyncpg.Connection, *, overdue_after: timedelta = OVERDUE_AFTER
) -> JobHealthReport:
    """The health of every TimescaleDB job of this database (read-only)."""
    capabilities = await conn.fetchrow(_CAPABILITIES)
    now: datetime = capabilities["checked_at"]
    if not capabilities["timescaledb"]:
        return JobHealthReport(applicable=False, checked_at=now)
    query = _JOBS_BY_FUNCTION if capabilities["errors_function"] else _JOBS_BY_VIEW
    rows = await conn.fetch(query)
    jobs = tuple(_job(row, now, overdue_after) for row in rows)
    return JobHealthReport(applicable=True, checked_at=now, jobs=jobs)
