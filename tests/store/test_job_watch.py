"""The collector's Prometheus gauges of TimescaleDB's background jobs, from the real scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from polyfarm.daemon import open_daemon
from polyfarm.metrics import Metrics
from polyfarm.metrics_http import serve_metrics
from polyfarm.settings import Settings
from polyfarm.store import job_watch
from polyfarm.store.database import create_pool
from polyfarm.store.job_watch import JobWatch

from ..support import free_port
from ..timescale_jobs import add_failing_job, add_idle_job, clear_jobs

NOT_HEALTHY = "TimescaleDB background jobs not healthy"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def job_labels(job_id: int, proc: str) -> dict[str, str]:
    return {"job_id": str(job_id), "proc": proc, "hypertable": ""}


@pytest.fixture
async def ts_pool(timescale_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(timescale_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def scrape_until(url: str, wanted: str) -> str:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url) as response:
                    text = await response.text()
                if wanted in text:
                    return text
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{wanted!r} never appeared at {url}")


async def test_the_collector_exports_a_failing_job(ts_pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with ts_pool.acquire() as conn:
        await clear_jobs(conn)
        failing = await add_failing_job(conn)
        idle = await add_idle_job(conn)
    port = free_port()
    settings = Settings(data_dir=tmp_path, metrics_port=0)  # type: ignore[call-arg]
    stop = asyncio.Event()
    # The daemon's own wiring: its metrics, its service, read through a metrics endpoint.
    async with open_daemon(settings, ts_pool) as daemon:
        (watch,) = [s for s in daemon.services() if s.name == "timescaledb-jobs"]
        with capture_logs() as logs:
            async with asyncio.TaskGroup() as group:
                group.create_task(watch.run(stop))
                group.create_task(serve_metrics(daemon.metrics, "127.0.0.1", port, stop))
                url = f"http://127.0.0.1:{port}/metrics"
                text = await scrape_until(url, 'polyfarm_timescaledb_jobs{state="failing"}')
                stop.set()
    found = samples(text)
    for state, count in {"failing": 1, "overdue": 0, "paused": 0, "ok": 1}.items():
        assert value(found, "polyfarm_timescaledb_jobs", state=state) == count, state
    boom = job_labels(failing, "public.polyfarm_test_boom")
    failures = value(found, "polyfarm_timescaledb_job_failures", **boom)
    assert failures is not None
    assert failures >= 1
    quiet = job_labels(idle, "public.polyfarm_test_idle")
    assert value(found, "polyfarm_timescaledb_job_failures", **quiet) == 0
    never = "polyfarm_timescaledb_job_last_success_timestamp_seconds"
    assert value(found, never, **boom) is None
    warnings = [entry for entry in logs if entry["event"] == NOT_HEALTHY]
    assert len(warnings) == 1, "logged when the set of unhealthy jobs changes, not each minute"
    assert [job["job_id"] for job in warnings[0]["jobs"]] == [failing]


async def test_a_deleted_job_leaves_the_gauges(ts_pool: asyncpg.Pool) -> None:
    async with ts_pool.acquire() as conn:
        await clear_jobs(conn)
        failing = await add_failing_job(conn)
    metrics = Metrics()
    watch = JobWatch(ts_pool, metrics)
    with capture_logs() as logs:
        assert await watch.refresh() is not None
        assert await watch.refresh() is not None
        async with ts_pool.acquire() as conn:
            await conn.execute("SELECT delete_job($1)", failing)
        report = await watch.refresh()
    assert report is not None
    assert report.healthy
    found = samples(metrics.render().decode())
    assert value(found, "polyfarm_timescaledb_jobs", state="failing") == 0
    assert not any(name == "polyfarm_timescaledb_job_failures" for name, _ in found)
    events = [entry["event"] for entry in logs]
    assert events.count(NOT_HEALTHY) == 1
    assert events.count("TimescaleDB background jobs healthy again") == 1


async def test_plain_postgresql_is_read_once_and_exports_nothing(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0
    real = job_watch.job_health

    async def counted(conn: asyncpg.Connection) -> job_watch.JobHealthReport:
        nonlocal reads
        reads += 1
        return await real(conn)

    monkeypatch.setattr(job_watch, "job_health", counted)
    metrics = Metrics()
    stop = asyncio.Event()
    task = asyncio.create_task(JobWatch(pool, metrics, interval_s=0.01).run(stop))
    await asyncio.sleep(0.3)
    assert not task.done(), "a service returns only when stopped"
    stop.set()
    await asyncio.wait_for(task, 5)
    assert reads == 1
    found = samples(metrics.render().decode())
    assert not any(name.startswith("polyfarm_timescaledb_job") for name, _ in found)


@pytest.fixture
def server(plain_server: object) -> object:
    # ``pool`` above is the plain flavour's: TimescaleDB's tests use ``ts_pool``.
    return plain_server
