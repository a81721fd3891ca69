"""Assembly of the collection daemon: clients, catalogue, writer, collectors, jobs.

``open_collection`` is an async context manager owning every resource (HTTP clients sharing one
rate limiter and one session, the writer); the CLI runs its jobs under the supervisor, either
forever (``polyfarm collect``) or once each (``--once``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

import aiohttp
import asyncpg

from polyfarm.clock import Clock, utc_now
from polyfarm.collect.books import BookCollector
from polyfarm.collect.catalog import MarketCatalog
from polyfarm.collect.metadata import MetadataCollector
from polyfarm.collect.prices import PriceCollector
from polyfarm.collect.rejects import RejectSink
from polyfarm.collect.resolutions import ResolutionTracker
from polyfarm.metrics import Metrics
from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.data_api import DataApiClient
from polyfarm.polymarket.gamma import GammaClient
from polyfarm.polymarket.ratelimit import RateLimiter
from polyfarm.runtime import CycleResult, Job, Service
from polyfarm.settings import Settings
from polyfarm.store.durable import DurableWriter, run_replayer
from polyfarm.store.journal import Journal
from polyfarm.store.maintenance import run_maintenance
from polyfarm.stream.service import StreamDeps, StreamService


@dataclass
class Collection:
    settings: Settings
    pool: asyncpg.Pool
    clock: Clock
    gamma: GammaClient
    clob: ClobClient
    data_api: DataApiClient
    writer: DurableWriter
    catalog: MarketCatalog
    metadata: MetadataCollector
    prices: PriceCollector
    books: BookCollector
    resolutions: ResolutionTracker
    metrics: Metrics
    # The market WebSocket listener (sharded stream, live books, trades) plugs in here.
    services: list[Service] = field(default_factory=list)
    stream: StreamService | None = None

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
            Job("maintenance", intervals.maintenance_s, self.maintenance),
        ]

    def health_extras(self) -> dict[str, object]:
        """Rows written per table, source errors per API, the journal: for the health line."""
        return {
            "rows_written": dict(self.writer.stats.inserted),
            "source_errors": {
                client.rest.service: dict(client.rest.errors)
                for client in (self.gamma, self.clob, self.data_api)
            },
            "journal_bytes": self.writer.journal.size_bytes(),
        }

    async def maintenance(self) -> CycleResult:
        async with self.pool.acquire() as conn:
            report = await run_maintenance(conn, self.settings.retention, self.clock())
        return CycleResult(rows=sum(report.deleted.values()))


@contextlib.asynccontextmanager
async def open_collection(
    settings: Settings,
    pool: asyncpg.Pool,
    clock: Clock = utc_now,
    metrics: Metrics | None = None,
) -> AsyncIterator[Collection]:
    metrics = metrics or Metrics()
    limiter = RateLimiter.from_settings(settings.rate_limits)
    connector = aiohttp.TCPConnector(limit=64, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector) as session:
        gamma = GammaClient.from_settings(settings, limiter, session)
        clob = ClobClient.from_settings(settings, limiter, session)
        data_api = DataApiClient.from_settings(settings, limiter, session)
        async with gamma, clob, data_api:
            writer = DurableWriter(
                pool,
                Journal(settings.journal_dir(), int(settings.journal.max_mb * 2**20)),
                max_future_skew_s=settings.writer.max_future_skew_s,
                clock=clock,
                metrics=metrics,
            )
            catalog = MarketCatalog(settings.tiers)
            rejects = RejectSink(pool, metrics, clock)
            books = BookCollector(clob, writer, catalog, clock, settings, rejects)
            stream = StreamService(
                StreamDeps(
                    settings,
                    catalog,
                    clob,
                    data_api,
                    writer,
                    pool,
                    clock,
                    metrics,
                    books.cadence_for,
                )
            )
            books.covered = stream.covers
            yield Collection(
                settings=settings,
                pool=pool,
                clock=clock,
                gamma=gamma,
                clob=clob,
                data_api=data_api,
                writer=writer,
                catalog=catalog,
                metadata=MetadataCollector(gamma, pool, catalog, clock, rejects, metrics=metrics),
                prices=PriceCollector(
                    clob, writer, catalog, clock, settings.intervals.prices_s, rejects
                ),
                books=books,
                resolutions=ResolutionTracker(gamma, clob, pool, catalog, clock),
                metrics=metrics,
                services=[
                    Service("journal-replay", partial(run_replayer, writer)),
                    Service(stream.name, stream.run),
                ],
                stream=stream,
            )
