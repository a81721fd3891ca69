"""The disk watch against the embedded PostgreSQL: gauges, level, log and the feed_gaps row."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from polyfarm.metrics import Metrics
from polyfarm.settings import RetentionSettings, Settings, StorageSettings
from polyfarm.store.disk import DiskPressure
from polyfarm.store.disk_watch import DiskWatch
from polyfarm.store.partitions import ensure_partitions
from polyfarm.store.rows import PRICE_SNAPSHOTS
from polyfarm.store.writer import BulkWriter

from .factories import price_row

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LOW = "DISK BUDGET LOW: the database will fill its budget soon"
TOO_SMALL = "DISK BUDGET TOO SMALL FOR RETENTION"


class StepClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def gauges(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("state", "")): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
        if s.name.startswith(("polyfarm_disk", "polyfarm_database_size"))
    }


async def deltas_gaps(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT market_id, token_id, gap_start, gap_end, reason, repaired FROM feed_gaps "
        "WHERE stream = 'ws_book_deltas' ORDER BY id"
    )


async def test_a_tiny_budget_degrades_at_once(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, storage={"disk_budget_gb": 0.001})  # type: ignore[arg-type]
    metrics, clock = Metrics(), StepClock()
    watch = DiskWatch.from_settings(settings, pool, metrics, clock)
    with capture_logs() as logs:
        outlook = await watch.refresh()
        clock.now += timedelta(minutes=1)
        await watch.refresh()
    assert outlook is not None
    assert outlook.used_bytes > 1_000_000  # an empty migrated database is a few MB
    assert outlook.days_left == 0.0  # over budget: no rate needed
    assert watch.pressure() is DiskPressure.SNAPSHOTS_SLOWED
    found = gauges(metrics)
    assert found[("polyfarm_disk_days_left", "")] == 0.0
    assert found[("polyfarm_disk_budget_bytes", "")] == 1_000_000
    assert found[("polyfarm_database_size_bytes", "")] >= outlook.used_bytes
    assert math.isnan(found[("polyfarm_disk_growth_bytes_per_day", "")])  # not known yet
    assert found[("polyfarm_disk_pressure", "snapshots_slowed")] == 1
    assert found[("polyfarm_disk_pressure", "ok")] == 0
    (gap,) = await deltas_gaps(pool)
    assert (gap["market_id"], gap["token_id"], gap["repaired"]) == (None, None, False)
    assert (gap["gap_start"], gap["gap_end"]) == (T0, clock.now)  # moved on by the 2nd sample
    assert gap["reason"].startswith("disk budget: book_deltas not stored")
    warnings = [entry for entry in logs if entry["event"] == LOW]
    assert len(warnings) == 1, "warned at the change, not at every sample"
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["pressure"] == "snapshots_slowed"


async def test_it_recovers_when_space_comes_back(pool: asyncpg.Pool) -> None:
    free = [0]
    metrics, clock = Metrics(), StepClock()
    storage = StorageSettings()  # no budget: the disk's free space is the limit
    watch = DiskWatch(
        pool, metrics, clock, storage=storage, free_bytes=lambda: free[0], deltas_captured=True
    )
    with capture_logs() as logs:
        await watch.refresh()
        assert watch.pressure() is DiskPressure.SNAPSHOTS_SLOWED
        free[0] = 10**15  # space freed: the level waits for a rate (ten minutes of samples)
        for _ in range(9):  # samples spanning up to nine minutes: no rate yet
            clock.now += timedelta(minutes=1)
            await watch.refresh()
            assert watch.pressure() is DiskPressure.SNAPSHOTS_SLOWED
        clock.now += timedelta(minutes=1)
        outlook = await watch.refresh()  # ten minutes: a rate, and room for ever
        recovered_at = clock.now
        clock.now += timedelta(minutes=1)
        await watch.refresh()
    assert outlook is not None
    assert outlook.growth_bytes_per_day is not None
    assert watch.pressure() is DiskPressure.OK
    assert gauges(metrics)[("polyfarm_disk_pressure", "ok")] == 1
    (gap,) = await deltas_gaps(pool)
    assert (gap["gap_start"], gap["gap_end"]) == (T0, recovered_at)
    assert "disk budget: enough room again" in [entry["event"] for entry in logs]


async def test_nothing_is_recorded_when_no_deltas_are_captured(pool: asyncpg.Pool) -> None:
    watch = DiskWatch(
        pool,
        Metrics(),
        StepClock(),
        storage=StorageSettings(),
        free_bytes=lambda: 0,
        deltas_captured=False,
    )
    await watch.refresh()
    assert watch.pressure() is DiskPressure.SNAPSHOTS_SLOWED
    assert await deltas_gaps(pool) == []


async def test_a_budget_too_small_for_the_retention_window_is_told_once(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    retention = RetentionSettings(raw_days=30, orderbook_days=20, book_deltas_days=2)
    async with pool.acquire() as conn:  # all of yesterday in partitions: a whole day's rate
        await ensure_partitions(conn, T0 - timedelta(days=2), retention)
    yesterday = [price_row(i)._replace(ts=T0 - timedelta(hours=20, minutes=i)) for i in range(500)]
    await BulkWriter(pool, clock=lambda: T0).write(PRICE_SNAPSHOTS, yesterday)
    fits, tight = Metrics(), Metrics()

    def watch(budget_gb: float, metrics: Metrics) -> DiskWatch:
        storage = StorageSettings(disk_budget_gb=budget_gb)
        settings = Settings(data_dir=tmp_path, retention=retention, storage=storage)
        return DiskWatch.from_settings(settings, pool, metrics, StepClock())

    roomy_watch, small_watch = watch(1000.0, fits), watch(0.001, tight)
    with capture_logs() as logs:
        await roomy_watch.refresh()
        await small_watch.refresh()
        await small_watch.refresh()
    assert roomy_watch.retention_fit is not None
    assert roomy_watch.retention_fit.fits
    assert gauges(fits)[("polyfarm_disk_retention_days_fit", "")] > 30
    assert small_watch.retention_fit is not None
    assert small_watch.retention_fit.days_fit == 0.0  # the rest alone fills 1 MB
    assert gauges(tight)[("polyfarm_disk_retention_days", "")] == 30
    (told,) = [entry for entry in logs if entry["event"].startswith(TOO_SMALL)]
    assert told["log_level"] == "warning"
    assert (told["days_fit"], told["days_configured"]) == (0.0, 30)
    assert told["bytes_per_day"]["price_points"] > 0


async def test_the_retention_window_is_unknown_without_a_whole_day(pool: asyncpg.Pool) -> None:
    metrics = Metrics()
    watch = DiskWatch(
        pool, metrics, StepClock(), storage=StorageSettings(disk_budget_gb=1.0),
        free_bytes=lambda: None, deltas_captured=True,
    )  # fmt: skip
    await watch.refresh()  # the template has no day partitions: no day's rate
    assert watch.retention_fit is None
    assert math.isnan(gauges(metrics)[("polyfarm_disk_retention_days_fit", "")])


@pytest.fixture
def server(plain_server: object) -> object:
    # The watch reads pg_database_size alike on both flavours.
    return plain_server
