"""The collector's watch over its disk budget: sizes sampled, days left, what is given up.

``polyfarm collect`` runs ``DiskWatch.run`` as a supervised service. Every
``storage.sample_interval_s`` it reads the database's size (``pg_database_size``, one cheap
call) and the free space of the data directory's disk (embedded PostgreSQL only: an external
server's disk cannot be seen from here), works out the days left (``store/disk.py``), sets the
gauges and publishes the ``DiskPressure`` the stream reads before storing ``book_deltas`` and
far-tier snapshots. It logs a warning at every change of level and, below
``storage.warn_days``, again every hour.

On plain PostgreSQL it also weighs the budget against the retention window: each time series'
last whole day (its day partitions' size) times the days it is kept. When the budget cannot
hold that, it says so once (the first sample that knows, normally at start) and in the gauges
``/health/detailed`` reads (days that fit against days configured).

While ``book_deltas`` are not stored, one ``feed_gaps`` row (stream ``ws_book_deltas``, every
market) says so: written when they stop, its end moved on at every sample and at shutdown.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import asyncpg

from polyfarm.aio import sleep_unless
from polyfarm.clock import Clock
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.settings import RetentionSettings, Settings, StorageSettings
from polyfarm.store.disk import (
    DiskOutlook,
    DiskPressure,
    GrowthWindow,
    PressureThresholds,
    RetentionFit,
    TableGrowth,
    disk_outlook,
    next_pressure,
    retention_fit,
)
from polyfarm.store.outage import OutageLog
from polyfarm.store.partitions import SeriesBytes, series_bytes
from polyfarm.store.policies import retention_rules
from polyfarm.store.stream_writes import GapRecord, extend_gap, insert_gaps

log = get_logger(__name__)

DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)
WARN_REPEAT_S = 3600.0
DELTAS = "ws_book_deltas"
FreeSpace = Callable[[], int | None]


def free_bytes_under(path: Path) -> int | None:
    """Free space of the filesystem holding ``path`` (its nearest existing ancestor)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return None


def no_free_space_known() -> int | None:
    return None


def thresholds_of(storage: StorageSettings) -> PressureThresholds:
    return PressureThresholds(
        storage.warn_days, storage.stop_deltas_days, storage.slow_snapshots_days
    )


def export_outlook(metrics: Metrics, outlook: DiskOutlook, pressure: DiskPressure) -> None:
    def known(value: float | None) -> float:
        return math.nan if value is None else value

    metrics.database_size.set(outlook.used_bytes)
    metrics.disk_budget.set(known(outlook.budget_bytes))
    metrics.disk_headroom.set(known(outlook.headroom_bytes))
    metrics.disk_growth.set(known(outlook.growth_bytes_per_day))
    metrics.disk_days_left.set(known(outlook.days_left))
    for state in DiskPressure:
        metrics.disk_pressure.labels(state.value).set(1 if state is pressure else 0)


def fit_of(
    outlook: DiskOutlook, series: SeriesBytes | None, retention: RetentionSettings
) -> RetentionFit | None:
    """The retention window against the budget; None while a table's day rate or the budget
    is unknown."""
    if series is None or outlook.budget_bytes is None:
        return None
    growth = [
        TableGrowth(series.last_day[rule.table], rule.keep.days)
        for rule in retention_rules(retention)
        if rule.table in series.last_day
    ]
    return retention_fit(outlook.budget_bytes, outlook.used_bytes - series.total, growth)


class DiskWatch:
    """Publishes the ``DiskPressure`` (``pressure()``); everything else it learns goes to
    the gauges, the log and ``feed_gaps``."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        clock: Clock,
        *,
        storage: StorageSettings,
        free_bytes: FreeSpace,
        deltas_captured: bool,
        retention: RetentionSettings | None = None,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._clock = clock
        self._storage = storage
        self._free_bytes = free_bytes
        self._deltas_captured = deltas_captured  # no tier's deltas stored: nothing to record
        self._thresholds = thresholds_of(storage)
        self._growth = GrowthWindow(storage.rate_window_s, storage.min_rate_span_s)
        self._outage = OutageLog("the disk watch", log)
        self._pressure = DiskPressure.OK
        self._deltas_gap: int | None = None  # the feed_gaps row of the current stop
        self._warned_at: float | None = None
        self._retention = retention or RetentionSettings()
        self._fit_told = False
        self.outlook: DiskOutlook | None = None
        self.retention_fit: RetentionFit | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, pool: asyncpg.Pool, metrics: Metrics, clock: Clock
    ) -> DiskWatch:
        """The data directory's disk holds the embedded server; an external one's is unseen."""
        embedded = settings.database_url is None
        data_dir = settings.data_dir
        return cls(
            pool, metrics, clock, storage=settings.storage,
            free_bytes=(lambda: free_bytes_under(data_dir)) if embedded else no_free_space_known,
            deltas_captured=bool(settings.websocket.capture_delta_tiers),
            retention=settings.retention,
        )  # fmt: skip

    def pressure(self) -> DiskPressure:
        return self._pressure

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self.refresh()
                await sleep_unless(stop, self._storage.sample_interval_s)
        finally:
            await self._record_deltas_gap(self._clock())

    async def refresh(self) -> DiskOutlook | None:
        """One sample: the outlook, the level, the gauges, the log and the ``feed_gaps`` row;
        None when the database could not be read (the level stays as it was)."""
        now = self._clock()
        try:
            async with self._pool.acquire() as conn:
                used: int = await conn.fetchval("SELECT pg_database_size(current_database())")
                series = await series_bytes(conn, now)
        except DB_ERRORS as exc:
            if not self._outage.failed(exc):
                log.warning("cannot read the database size", error=repr(exc))
            return None
        self._outage.succeeded()
        self._growth.add(now.timestamp(), used)
        outlook = disk_outlook(
            used, self._storage.budget_bytes(), self._free_bytes(), self._growth.bytes_per_day()
        )
        self.outlook = outlook
        before, self._pressure = (
            self._pressure,
            next_pressure(self._pressure, outlook.days_left, self._thresholds),
        )
        export_outlook(self._metrics, outlook, self._pressure)
        self._log(before, outlook)
        self._weigh_retention(fit_of(outlook, series, self._retention), series)
        await self._record_deltas_gap(now)
        return outlook

    def _log(self, before: DiskPressure, outlook: DiskOutlook) -> None:
        pressure = self._pressure
        if pressure is DiskPressure.OK:
            self._warned_at = None
            if before is not DiskPressure.OK:
                log.info("disk budget: enough room again", **outlook.as_dict())
            return
        now = time.monotonic()
        warned_at = self._warned_at
        if pressure is before and warned_at is not None and now - warned_at < WARN_REPEAT_S:
            return
        self._warned_at = now
        log.warning(
            "DISK BUDGET LOW: the database will fill its budget soon",
            pressure=pressure.value,
            stores_book_deltas=pressure.stores_book_deltas,
            slows_far_snapshots=pressure.slows_far_snapshots,
            **outlook.as_dict(),
        )

    def _weigh_retention(self, fit: RetentionFit | None, series: SeriesBytes | None) -> None:
        self.retention_fit = fit
        longest = max(rule.keep.days for rule in retention_rules(self._retention))
        self._metrics.disk_retention_days.set(longest)
        self._metrics.disk_retention_days_fit.set(math.nan if fit is None else fit.days_fit)
        if fit is None or fit.fits or self._fit_told:
            return
        self._fit_told = True
        log.warning(
            "DISK BUDGET TOO SMALL FOR RETENTION: the oldest rows will not live as long as "
            "configured; raise storage.disk_budget_gb or lower retention.*_days",
            days_fit=round(fit.days_fit, 1),
            days_configured=fit.days_configured,
            bytes_per_day=None if series is None else series.last_day,
        )

    async def _record_deltas_gap(self, now: datetime) -> None:
        """Open the stop's ``feed_gaps`` row, move its end on, or close it; a failed write is
        tried again at the next sample."""
        stopped = not self._pressure.stores_book_deltas and self._deltas_captured
        if not stopped and self._deltas_gap is None:
            return
        try:
            async with self._pool.acquire() as conn:
                if self._deltas_gap is None:
                    (self._deltas_gap,) = await insert_gaps(conn, [self._gap_record(now)])
                else:
                    await extend_gap(conn, self._deltas_gap, now)
        except DB_ERRORS as exc:
            if not self._outage.failed(exc):
                log.warning("cannot record the book_deltas stop", error=repr(exc))
            return
        if not stopped:
            self._deltas_gap = None

    def _gap_record(self, now: datetime) -> GapRecord:
        days = None if self.outlook is None else self.outlook.days_left
        left = "unknown" if days is None else f"{days:.2f}"
        reason = (
            f"disk budget: book_deltas not stored while days of disk left ({left}) are below "
            f"storage.stop_deltas_days ({self._storage.stop_deltas_days:g})"
        )
        return GapRecord(DELTAS, None, None, now, now, reason)
