"""The daemon's backfill work, beside live collection and below it in priority.

Both use their own clients, paced by a rate limiter of their own at
``backfill.background_rate_fraction`` of each documented limit, so they never take a request
from the live collectors' budget (``rate_limits.fraction``); and they write through their own
statements, never through the live collectors' queues.

* ``FirstStartBackfill`` (a service): on the first start against a new database, once the
  metadata scan has stored the catalogue, the open markets' last ``first_start_days`` of
  1-minute prices (and trades) are backfilled; then it idles until the daemon stops. An
  interrupted run is resumed by ``polyfarm backfill`` (its progress is in the database). Of
  several collectors starting on the same new database, one does it.
* ``GridRepair`` (a job, in ``polyfarm.backfill.grid``): the minute grid's own repair.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import asyncpg

from polyfarm.backfill.fetch import HistoryFetcher
from polyfarm.backfill.markets import Subject, stored_open_markets
from polyfarm.backfill.run import Backfiller, BackfillPlan
from polyfarm.clock import Clock
from polyfarm.logs import get_logger
from polyfarm.polymarket.data_api import DataApiClient
from polyfarm.settings import BackfillSettings
from polyfarm.store.lease import claim_elected_run
from polyfarm.store.ops import finish_task_run
from polyfarm.store.writing import Writer

log = get_logger(__name__)

# Of collectors starting together on a new database, the first to claim the backfill does it;
# the claim is a ``task_runs`` row (store/lease.py) that holds for a day.
CLAIM_S = 86_400.0


class FirstStartBackfill:
    name = "first-start-backfill"

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        fetcher: HistoryFetcher,
        data_api: DataApiClient,
        writer: Writer,
        clock: Clock,
        settings: BackfillSettings,
        catalogue_ready: asyncio.Event,
        instance: str = "",
    ) -> None:
        self._pool = pool
        self._fetcher = fetcher
        self._data_api = data_api
        self._writer = writer
        self._clock = clock
        self._settings = settings
        self._ready = catalogue_ready
        self._instance = instance

    async def run(self, stop: asyncio.Event) -> None:
        """The backfill until done or ``stop``; then idle until ``stop``."""
        work = asyncio.create_task(self._guarded(), name=self.name)
        try:
            await stop.wait()
        finally:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work

    async def _guarded(self) -> None:
        """A failure is logged and ends this work only: live collection goes on."""
        try:
            await self._backfill()
        except Exception:
            log.exception("first-start backfill failed; `polyfarm backfill` resumes it")

    async def _backfill(self) -> None:
        await self._ready.wait()
        async with self._pool.acquire() as conn:
            run_id = await claim_elected_run(
                conn, self.name, instance=self._instance, started_at=self._clock(),
                interval_s=CLAIM_S,
            )  # fmt: skip
            if run_id is None:
                log.info("first-start backfill left to the collector that claimed it")
                return
            subjects = await stored_open_markets(conn)
        summary = await self._backfiller().run(self._plan(subjects))
        log.info("first-start backfill done", summary=summary.lines())
        async with self._pool.acquire() as conn:
            await finish_task_run(
                conn, run_id, completed_at=self._clock(), status="success",
                markets=len(subjects), rows=summary.history_rows + summary.trade_rows,
            )  # fmt: skip

    def _plan(self, subjects: list[Subject]) -> BackfillPlan:
        end = self._clock()
        start = end - timedelta(days=self._settings.first_start_days)
        log.info("first-start backfill begins", markets=len(subjects), since=start.isoformat())
        return BackfillPlan(subjects, start, end, trades=self._settings.first_start_trades)

    def _backfiller(self) -> Backfiller:
        return Backfiller(
            pool=self._pool, fetcher=self._fetcher, data_api=self._data_api,
            writer=self._writer, clock=self._clock, concurrency=self._settings.concurrency,
            markets_per_request=self._settings.markets_per_request,
        )  # fmt: skip
