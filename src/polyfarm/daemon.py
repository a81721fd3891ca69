"""The collection daemon: everything it builds, how it starts and how it stops, in one place.

Start-up, in order (``run_daemon``):
  1. the database pool (the embedded server starts here when no ``DATABASE_URL`` is set);
  2. migrations and, on plain PostgreSQL, the time series' partitions of today and the days
     ahead; task runs a crashed predecessor left "running" are closed;
  3. the HTTP clients: one session, one rate limiter shared by Gamma, the CLOB and the Data API;
  4. the writer (database first, journal when the database is away), the catalogue, the REST
     collectors and the WebSocket stream (``open_daemon``);
  5. what an earlier process left in the journal is replayed;
  6. the supervisor runs the jobs and services until ``stop``; on the first start against a
     new database, with the first-start backfill in the background (``backfill.first_start``).

Shutdown, in order (``Daemon.run`` after ``stop``, then the ``async with`` blocks unwinding):
  1. intake stops: the stream closes its sockets, each REST job ends its current cycle;
  2. the stream drains its write queues (the flusher writes what is queued);
  3. the stream's final chores: whale events, lost-delta windows, quarantine, the heartbeat;
  4. the journal is replayed once more (rows journalled during an outage that has ended);
  5. the HTTP clients close;
  6. the pool closes (and the embedded server stops).
Steps 1-3 happen inside the supervisor's deadline (``SHUTDOWN_DEADLINE_S``); step 2 and 3 are
``StreamRun.run``'s last lines.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import aiohttp
import asyncpg

from polyfarm.backfill.background import FirstStartBackfill
from polyfarm.backfill.fetch import HistoryFetcher
from polyfarm.backfill.grid import GridRepair
from polyfarm.clock import Clock, utc_now
from polyfarm.collect.books import BookCollector
from polyfarm.collect.metadata import MetadataCollector
from polyfarm.collect.prices import PriceCollector
from polyfarm.collect.rejects import RejectSink
from polyfarm.collect.resolutions import ResolutionTracker
from polyfarm.logs import get_logger
from polyfarm.loopwatch import LoopWatch
from polyfarm.markets.catalog import MarketCatalog
from polyfarm.metrics import Metrics
from polyfarm.metrics_http import metrics_service
from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.data_api import DataApiClient
from polyfarm.polymarket.gamma import GammaClient
from polyfarm.polymarket.ratelimit import RateLimiter
from polyfarm.runtime import CycleResult, Job, Service, Supervisor, run_until_stopped
from polyfarm.sdnotify import run_notifier
from polyfarm.settings import Settings
from polyfarm.store.database import migrate_database, open_pool
from polyfarm.store.disk_watch import DiskWatch
from polyfarm.store.durable import DurableWriter, run_replayer
from polyfarm.store.history_writes import is_new_database
from polyfarm.store.job_watch import JobWatch
from polyfarm.store.journal import Journal
from polyfarm.store.maintenance import run_maintenance
from polyfarm.store.mirrors import MirrorStart
from polyfarm.store.ops import mark_interrupted_runs
from polyfarm.store.outage import database_unavailable
from polyfarm.store.reachability import DatabaseProbe
from polyfarm.stream.service import StreamDeps, StreamService

log = get_logger(__name__)

SHUTDOWN_DEADLINE_S = 30.0
HTTP_CONNECTIONS = 64


async def run_daemon(
    settings: Settings, stop: asyncio.Event, metrics: Metrics | None = None
) -> None:
    """``polyfarm collect``: start-up, collection until ``stop``, shutdown — in that order."""
    async with open_pool(settings) as pool:
        await prepare(pool, settings, utc_now)
        async with pool.acquire() as conn:  # before anything of this run is written
            first_start = await is_new_database(conn)
        async with open_daemon(settings, pool, metrics=metrics) as daemon:
            await daemon.run(stop, first_start=first_start and settings.backfill.first_start)
    log.info("collector stopped")


async def run_daemon_once(
    settings: Settings, ws_seconds: float, on_scan_progress: Callable[[int], None] | None = None
) -> tuple[Supervisor, bool]:
    """``polyfarm collect --once``: the same start-up and shutdown around ``Daemon.run_once``."""
    async with open_pool(settings) as pool:
        await prepare(pool, settings, utc_now)
        async with open_daemon(settings, pool, on_scan_progress=on_scan_progress) as daemon:
            return await daemon.run_once(ws_seconds)


async def prepare(pool: asyncpg.Pool, settings: Settings, clock: Clock) -> None:
    """Migrate (and make today's and the next days' partitions), and close the task runs a
    crashed predecessor left 'running'."""
    await migrate_database(pool, settings, clock)
    async with pool.acquire() as conn:
        interrupted = await mark_interrupted_runs(conn, clock(), settings.instance)
    if interrupted:
        log.warning("closed task runs left open by an earlier process", count=interrupted)


@dataclass(frozen=True)
class Clients:
    gamma: GammaClient
    clob: ClobClient
    data_api: DataApiClient
    # The backfill's and grid repair's: a rate limiter of their own (module polyfarm.backfill
    # .background), so they never take a request from the live collectors' budget.
    background_clob: ClobClient
    background_data: DataApiClient


@contextlib.asynccontextmanager
async def open_clients(settings: Settings) -> AsyncIterator[Clients]:
    """One session and one rate limiter for the three REST APIs (and one more for background
    work); closed in reverse order."""
    limiter = RateLimiter.from_settings(settings.rate_limits)
    background = RateLimiter(settings.backfill.background_rate_fraction)
    connector = aiohttp.TCPConnector(limit=HTTP_CONNECTIONS, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = Clients(
            GammaClient.from_settings(settings, limiter, session),
            ClobClient.from_settings(settings, limiter, session),
            DataApiClient.from_settings(settings, limiter, session),
            ClobClient.from_settings(settings, background, session),
            DataApiClient.from_settings(settings, background, session),
        )
        async with (
            clients.gamma,
            clients.clob,
            clients.data_api,
            clients.background_clob,
            clients.background_data,
        ):
            yield clients


@contextlib.asynccontextmanager
async def open_daemon(
    settings: Settings,
    pool: asyncpg.Pool,
    clock: Clock = utc_now,
    metrics: Metrics | None = None,
    on_scan_progress: Callable[[int], None] | None = None,
) -> AsyncIterator[Daemon]:
    """Every collector, service and client of the daemon, wired; the pool is the caller's."""
    metrics = metrics or Metrics()
    async with open_clients(settings) as clients:
        writer = durable_writer(settings, pool, clock, metrics)
        catalog = MarketCatalog(settings.tiers)
        rejects = RejectSink(pool, metrics, clock)
        disk = DiskWatch.from_settings(settings, pool, metrics, clock)
        stream = StreamService(
            StreamDeps(
                settings, catalog, clients.clob, clients.data_api, writer, pool, clock, metrics,
                disk,
            )
        )  # fmt: skip
        yield Daemon(
            settings=settings, pool=pool, clock=clock, metrics=metrics, clients=clients,
            writer=writer, catalog=catalog, disk=disk, stream=stream,
            metadata=MetadataCollector(
                clients.gamma, pool, catalog, clock, rejects,
                metrics=metrics, on_progress=on_scan_progress,
            ),
            prices=PriceCollector(
                clients.clob, writer, catalog, clock, settings.intervals.prices_s, rejects
            ),
            books=BookCollector(
                clients.clob, writer, catalog, clock, settings, rejects,
                covered=stream.covers, disk=disk,
            ),
            resolutions=ResolutionTracker(clients.gamma, clients.clob, pool, catalog, clock),
        )  # fmt: skip


def durable_writer(
    settings: Settings, pool: asyncpg.Pool, clock: Clock, metrics: Metrics
) -> DurableWriter:
    """The database first; the journal on disk while the database is away."""
    return DurableWriter(
        pool,
        Journal(settings.journal_dir(), int(settings.journal.max_mb * 2**20)),
        max_future_skew_s=settings.writer.max_future_skew_s,
        clock=clock,
        metrics=metrics,
    )


@dataclass
class Daemon:
    settings: Settings
    pool: asyncpg.Pool
    clock: Clock
    metrics: Metrics
    clients: Clients
    writer: DurableWriter
    catalog: MarketCatalog
    disk: DiskWatch
    metadata: MetadataCollector
    prices: PriceCollector
    books: BookCollector
    resolutions: ResolutionTracker
    stream: StreamService

    async def run(self, stop: asyncio.Event, *, first_start: bool = False) -> None:
        """Until ``stop``; the shutdown order is the module's docstring's."""
        await self.replay_journal("left by an earlier process")
        endpoint = metrics_service(self.settings, self.metrics)
        # Under systemd: ready once collecting, and the watchdog fed by the event loop.
        notifier = Service("systemd-notify", run_notifier)
        extra = [notifier, *([endpoint] if endpoint else [])]
        if first_start:
            extra.append(self.first_start_backfill())
        supervisor = self.supervisor(extra_services=extra)
        log.info("collector started", jobs=[job.name for job in supervisor.jobs])
        await run_until_stopped(supervisor, stop, SHUTDOWN_DEADLINE_S)
        await self.replay_journal("journalled during this run")

    async def run_once(self, ws_seconds: float) -> tuple[Supervisor, bool]:
        """``polyfarm collect --once``: one recorded cycle of every job in start-up order, the
        services for ``ws_seconds``; True when every cycle succeeded."""
        supervisor = self.supervisor()
        await self.replay_journal("left by an earlier process")
        ok = True
        for job in supervisor.jobs:
            ok = await supervisor.run_once(job) and ok
        await self._run_services_for(ws_seconds)
        await self.replay_journal("journalled during this run")
        return supervisor, ok

    def supervisor(self, extra_services: list[Service] | None = None) -> Supervisor:
        return Supervisor(
            self.pool,
            self.jobs(),
            [*self.services(), *(extra_services or [])],
            clock=self.clock,
            health_interval_s=self.settings.intervals.health_log_s,
            metrics=self.metrics,
            extra_health=self.health_extras,
            instance=self.settings.instance,
        )

    def jobs(self) -> list[Job]:
        """In start-up order: the metadata scan fills the catalogue the others read."""
        intervals = self.settings.intervals
        ready = self.catalog.ready
        return [
            Job(self.metadata.name, intervals.metadata_s, self.metadata.cycle),
            Job(self.prices.name, intervals.prices_s, self.prices.cycle, wait_for=ready),
            Job(self.books.name, self.books.tick_s, self.books.cycle, wait_for=ready),
            Job(
                self.resolutions.name,
                intervals.resolutions_s,
                self.resolutions.cycle,
                wait_for=ready,
            ),
            Job("maintenance", intervals.maintenance_s, self.maintenance, elected=True),
            *self.backfill_jobs(),
        ]

    def history_fetcher(self) -> HistoryFetcher:
        return HistoryFetcher(self.clients.background_clob, self.clients.background_data)

    def backfill_jobs(self) -> list[Job]:
        """The minute grid's repair, once the catalogue is stored (it reads the open markets)."""
        settings = self.settings.backfill
        if not settings.grid_repair:
            return []
        repair = GridRepair(
            pool=self.pool,
            fetcher=self.history_fetcher(),
            clock=self.clock,
            settle_s=settings.grid_repair_settle_s,
            lookback=timedelta(days=settings.grid_repair_lookback_days),
            job=self.prices.name,
            cadence_s=self.settings.intervals.prices_s,
            concurrency=settings.concurrency,
            metrics=self.metrics,
        )

        async def cycle() -> CycleResult:
            report = await repair.round()
            return CycleResult(rows=report.rows)

        # Elected: of collectors sharing a database, one repairs the grid.
        interval = settings.grid_repair_interval_s
        return [Job("grid-repair", interval, cycle, wait_for=self.catalog.ready, elected=True)]

    def first_start_backfill(self) -> Service:
        backfill = FirstStartBackfill(
            pool=self.pool,
            fetcher=self.history_fetcher(),
            data_api=self.clients.background_data,
            writer=self.writer,
            clock=self.clock,
            settings=self.settings.backfill,
            catalogue_ready=self.catalog.ready,
            instance=self.settings.instance,
        )
        return Service(backfill.name, backfill.run)

    def services(self) -> list[Service]:
        return [
            Service("journal-replay", partial(run_replayer, self.writer)),
            Service(self.stream.name, self.stream.run),
            Service("timescaledb-jobs", JobWatch(self.pool, self.metrics).run),
            Service("disk-budget", self.disk.run),
            Service("loop-watch", LoopWatch(metrics=self.metrics).run),
            Service("database-probe", DatabaseProbe(self.pool, self.metrics).run),
            Service("mirror-folding", MirrorStart(self.pool, self.settings.instance).run),
        ]

    def health_extras(self) -> dict[str, object]:
        """Rows written per table, source errors per API, the journal: for the health line."""
        clients = (self.clients.gamma, self.clients.clob, self.clients.data_api)
        return {
            "rows_written": dict(self.writer.stats.inserted),
            "source_errors": {client.rest.service: dict(client.rest.errors) for client in clients},
            "journal_bytes": self.writer.journal.size_bytes(),
        }

    async def maintenance(self) -> CycleResult:
        async with self.pool.acquire() as conn:
            report = await run_maintenance(conn, self.settings.retention, self.clock())
        return CycleResult(rows=sum(report.deleted.values()))

    async def replay_journal(self, what: str) -> None:
        """One replay of the journal; with the database away, it waits for the next start."""
        try:
            stored = await self.writer.replay()
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("journal kept for later: the database is unavailable", error=repr(exc))
            return
        if stored:
            log.info("journal replayed", rows=stored, what=what)

    async def _run_services_for(self, seconds: float) -> None:
        if seconds <= 0:
            return
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            for service in self.services():
                group.create_task(service.run(stop))
            await asyncio.sleep(seconds)
            stop.set()
