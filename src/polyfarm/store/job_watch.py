"""The collector's watch over TimescaleDB's background jobs: Prometheus gauges, once a minute.

``polyfarm collect`` runs ``JobWatch.run`` as a supervised service. Each minute it reads
``store.jobs.job_health`` (one cheap query over TimescaleDB's catalogue views), sets the gauges
and logs a warning when the set of failing or overdue jobs changes, an info line when it
empties. On plain PostgreSQL there is nothing to watch: after the first read it only waits for
shutdown, and the gauges stay empty.
"""

from __future__ import annotations

import asyncio

import asyncpg

from polyfarm.aio import sleep_unless
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.store.jobs import JobHealthReport, JobState, job_health
from polyfarm.store.outage import OutageLog

log = get_logger(__name__)

WATCH_INTERVAL_S = 60.0
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


def export_job_health(metrics: Metrics, report: JobHealthReport) -> None:
    """Set the gauges from one report. Per-job series are rebuilt, so a deleted job's vanish
    (re-applying a policy gives it a new job id). Plain PostgreSQL exports nothing: a zero
    would claim jobs were looked at and found well."""
    if not report.applicable:
        return
    for state, count in report.counts().items():
        metrics.timescaledb_jobs.labels(state.value).set(count)
    metrics.timescaledb_job_failures.clear()
    metrics.timescaledb_job_last_success.clear()
    for job in report.jobs:
        labels = (str(job.job_id), job.proc, job.hypertable or "")
        metrics.timescaledb_job_failures.labels(*labels).set(job.total_failures)
        if job.last_success_at is not None:
            metrics.timescaledb_job_last_success.labels(*labels).set(
                job.last_success_at.timestamp()
            )


class JobWatch:
    def __init__(
        self, pool: asyncpg.Pool, metrics: Metrics, interval_s: float = WATCH_INTERVAL_S
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._interval_s = interval_s
        self._outage = OutageLog("the TimescaleDB job watch", log)
        self._unhealthy: frozenset[tuple[int, JobState]] = frozenset()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            report = await self.refresh()
            if report is not None and not report.applicable:
                await stop.wait()  # plain PostgreSQL: no jobs now, none later
                return
            await sleep_unless(stop, self._interval_s)

    async def refresh(self) -> JobHealthReport | None:
        """One read, exported; None when the database could not be read."""
        try:
            async with self._pool.acquire() as conn:
                report = await job_health(conn)
        except DB_ERRORS as exc:
            if not self._outage.failed(exc):
                log.warning("cannot read TimescaleDB job health", error=repr(exc))
            return None
        self._outage.succeeded()
        export_job_health(self._metrics, report)
        self._log_changes(report)
        return report

    def _log_changes(self, report: JobHealthReport) -> None:
        unhealthy = frozenset((job.job_id, job.state) for job in report.unhealthy)
        if unhealthy == self._unhealthy:
            return
        self._unhealthy = unhealthy
        if not unhealthy:
            log.info("TimescaleDB background jobs healthy again")
            return
        log.warning(
            "TimescaleDB background jobs not healthy",
            jobs=[
                {
                    "job_id": job.job_id,
                    "name": job.application_name,
                    "state": job.state.value,
                    "latest_error": job.latest_error,
                }
                for job in report.unhealthy
            ],
        )
