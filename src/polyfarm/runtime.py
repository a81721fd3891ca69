"""The supervisor: one process, one TaskGroup owning every task.

Two kinds of work run under it:

* **jobs**, run in cycles on a cadence (metadata scan, price snapshots, books, resolutions,
  maintenance). Every cycle writes a ``task_runs`` row and updates ``instance_health``. A cycle
  that raises is logged with its context and retried after a backoff; it never takes the other
  jobs down. An *elected* job runs in only one of the collectors that share a database: each
  cycle is claimed under a lease (store/lease.py) and an instance without it stands by.
* **services**, long-running coroutines (the WebSocket stream). One that returns or raises is
  restarted with exponential backoff.

Shutdown order (as arq does it): the signal handler only sets the stop event; loops stop taking
new cycles; running cycles get until the deadline to finish (they flush what they hold);
whatever is still running then is cancelled; the caller closes the pool last.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import signal
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from polyfarm.aio import first_of, sleep_unless
from polyfarm.backoff import Backoff
from polyfarm.clock import Clock, utc_now
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.store.lease import claim_elected_run
from polyfarm.store.ops import finish_task_run, record_health, start_task_run
from polyfarm.store.outage import OutageLog

log = get_logger(__name__)


class _Claim(enum.Enum):
    HELD = enum.auto()  # this instance runs the cycle
    STANDBY = enum.auto()  # another instance holds the lease
    UNKNOWN = enum.auto()  # the database did not answer


@dataclass(frozen=True)
class CycleResult:
    markets: int = 0
    rows: int = 0


@dataclass
class Job:
    """A unit of periodic work. ``run`` performs one cycle."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[CycleResult]]
    tier: int | None = None
    # Set by another job when this one may start (e.g. the first metadata scan is stored).
    wait_for: asyncio.Event | None = None
    # Run by one instance at a time when several collectors share the database.
    elected: bool = False


@dataclass
class Service:
    """Long-running work; ``run`` returns only when ``stop`` is set (or it fails)."""

    name: str
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class JobState:
    cycles: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    standby: int = 0  # cycles left to the instance that holds an elected job's lease
    rows: int = 0
    last_success: datetime | None = None
    last_error: str | None = None
    last_duration_s: float | None = None


class Supervisor:
    def __init__(
        self,
        pool: asyncpg.Pool,
        jobs: list[Job],
        services: list[Service] | None = None,
        *,
        clock: Clock = utc_now,
        backoff: Backoff | None = None,
        jitter: Callable[[], float] = random.random,
        health_interval_s: float = 60.0,
        metrics: Metrics | None = None,
        extra_health: Callable[[], dict[str, object]] | None = None,
        instance: str = "",
    ) -> None:
        self._instance = instance
        self._extra_health = extra_health
        self._pool = pool
        self._metrics = metrics
        self.jobs = jobs
        self.services = services or []
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._jitter = jitter
        self._health_interval_s = health_interval_s
        self._outage = OutageLog("task-run records", log)
        self.state: dict[str, JobState] = {job.name: JobState() for job in jobs}
        self.restarts: dict[str, int] = {svc.name: 0 for svc in self.services}

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for job in self.jobs:
                group.create_task(self._job_loop(job, stop), name=f"job:{job.name}")
            for service in self.services:
                group.create_task(self._service_loop(service, stop), name=f"svc:{service.name}")
            group.create_task(self._health_loop(stop), name="health")

    async def run_once(self, job: Job) -> bool:
        """One recorded cycle; True when it succeeded."""
        return await self._cycle(job)

    # -- loops --------------------------------------------------------------------------------

    async def _job_loop(self, job: Job, stop: asyncio.Event) -> None:
        if job.wait_for is not None and not await first_of(job.wait_for, stop):
            return
        while not stop.is_set():
            ok = await self._cycle(job)
            state = self.state[job.name]
            delay = (
                _until_next_slot(self._clock(), job.interval_s)
                if ok
                else min(job.interval_s, self._retry_delay(state.consecutive_failures))
            )
            await sleep_unless(stop, delay)

    async def _service_loop(self, service: Service, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await service.run(stop)
                attempt = 0
            except Exception as exc:
                attempt += 1
                self.restarts[service.name] += 1
                if self._metrics is not None:
                    self._metrics.service_restarts.labels(service.name).inc()
                log.error(
                    "service crashed; restarting",
                    service=service.name,
                    attempt=attempt,
                    error=repr(exc),
                    exc_info=True,
                )
            if not stop.is_set():
                await sleep_unless(stop, self._retry_delay(max(attempt, 1)))

    def _retry_delay(self, attempt: int) -> float:
        return self._backoff.delay(attempt, self._jitter())

    async def _health_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await sleep_unless(stop, self._health_interval_s)
            log.info("health", **self.health_summary())

    def health_summary(self) -> dict[str, object]:
        now = self._clock()
        summary: dict[str, object] = {
            name: {
                "cycles": s.cycles,
                "failures": s.failures,
                "rows": s.rows,
                "standby": s.standby,
                "lag_s": None
                if s.last_success is None
                else round((now - s.last_success).total_seconds(), 1),
            }
            for name, s in self.state.items()
        }
        summary["service_restarts"] = dict(self.restarts)
        if self._extra_health is not None:
            summary.update(self._extra_health())
        return summary

    # -- one cycle ------------------------------------------------------------------------------

    async def _cycle(self, job: Job) -> bool:
        state = self.state[job.name]
        started = self._clock()
        if job.elected:
            claim, run_id = await self._claim(job, started)
            if claim is not _Claim.HELD:
                return claim is _Claim.STANDBY
        else:
            run_id = await self._record_start(job, started)
        try:
            result = await job.run()
        except asyncio.CancelledError:
            await self._record_end(job, run_id, "cancelled", None, "cancelled during shutdown")
            raise
        except Exception as exc:
            state.failures += 1
            state.consecutive_failures += 1
            state.last_error = repr(exc)
            log.error("cycle failed", job=job.name, error=repr(exc), exc_info=True)
            await self._record_end(job, run_id, "failed", None, repr(exc), traceback.format_exc())
            return False
        state.cycles += 1
        state.consecutive_failures = 0
        state.rows += result.rows
        state.last_success = self._clock()
        state.last_duration_s = (state.last_success - started).total_seconds()
        await self._record_end(job, run_id, "success", result)
        return True

    async def _claim(self, job: Job, started: datetime) -> tuple[_Claim, int | None]:
        """Claim an elected job's cycle. Without the database it is not run: nothing could
        tell whether another instance runs it, and such jobs work on the database anyway."""
        try:
            async with self._pool.acquire() as conn:
                run_id = await claim_elected_run(
                    conn,
                    job.name,
                    instance=self._instance,
                    started_at=started,
                    interval_s=job.interval_s,
                    tier=job.tier,
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if not self._outage.failed(exc, job=job.name):
                log.warning("cannot claim an elected job", job=job.name, error=repr(exc))
            return _Claim.UNKNOWN, None
        if run_id is None:
            self.state[job.name].standby += 1
            log.debug("another instance holds the job's lease", job=job.name)
            return _Claim.STANDBY, None
        return _Claim.HELD, run_id

    async def _record_start(self, job: Job, started: datetime) -> int | None:
        try:
            async with self._pool.acquire() as conn:
                return await start_task_run(
                    conn, job.name, started, job.tier, instance=self._instance
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if not self._outage.failed(exc, job=job.name):
                log.warning("cannot record task start", job=job.name, error=repr(exc))
            return None

    async def _record_end(
        self,
        job: Job,
        run_id: int | None,
        status: str,
        result: CycleResult | None,
        error: str | None = None,
        trace: str | None = None,
    ) -> None:
        now = self._clock()
        self._observe(job, status, now)
        try:
            async with self._pool.acquire() as conn:
                if run_id is not None:
                    await finish_task_run(
                        conn,
                        run_id,
                        completed_at=now,
                        status=status,
                        markets=result.markets if result else None,
                        rows=result.rows if result else None,
                        error=error,
                        traceback=trace,
                    )
                await record_health(
                    conn,
                    job.name,
                    at=now,
                    ok=status == "success",
                    rows=result.rows if result else None,
                    error=error,
                    instance=self._instance,
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if not self._outage.failed(exc, job=job.name):
                log.warning("cannot record task end", job=job.name, error=repr(exc))
            return
        self._outage.succeeded()

    def _observe(self, job: Job, status: str, now: datetime) -> None:
        if self._metrics is None:
            return
        self._metrics.cycles.labels(job.name, status).inc()
        duration = self.state[job.name].last_duration_s
        if status == "success" and duration is not None:
            self._metrics.cycle_seconds.labels(job.name).observe(duration)
            self._metrics.last_success.labels(job.name).set(now.timestamp())


def _until_next_slot(now: datetime, interval_s: float) -> float:
    """Seconds to the next multiple of the interval, so cycles stay on an aligned grid."""
    epoch = now.timestamp()
    return interval_s - (epoch % interval_s)


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM only set the stop event; everything else happens in the loops."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def run_until_stopped(supervisor: Supervisor, stop: asyncio.Event, deadline_s: float) -> None:
    """Run the supervisor; once ``stop`` is set, allow ``deadline_s`` before cancelling."""
    task = asyncio.create_task(supervisor.run(stop), name="supervisor")
    stopped = asyncio.create_task(stop.wait(), name="stop-wait")
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait_for(asyncio.shield(task), timeout=deadline_s)
    except TimeoutError:
        log.warning("shutdown deadline passed; cancelling running work", deadline_s=deadline_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        stopped.cancel()
    if task.done() and not task.cancelled():
        task.result()  # re-raise what escaped the TaskGroup
