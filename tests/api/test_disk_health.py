"""``/health/detailed``'s ``disk`` section, read from the collector's metrics endpoint."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from polyfarm.metrics import Metrics
from polyfarm.metrics_http import serve_metrics
from polyfarm.settings import Settings
from polyfarm.store.disk_watch import DiskWatch
from polyfarm.store.ops import record_health

from ..support import free_port
from .conftest import ClientFactory


async def every_collector_on_time(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """A success just now for each collector the report judges (so only the disk decides)."""
    report = (await client.get("/health/detailed")).json()
    async with pool.acquire() as conn:
        for collector in report["collectors"]:
            await record_health(conn, collector["collector"], at=datetime.now(UTC), ok=True)


async def test_the_disk_section_reports_the_collectors_budget(
    pool: asyncpg.Pool, tmp_path: Path, make_client: ClientFactory
) -> None:
    collector = Metrics()
    settings = Settings(data_dir=tmp_path, storage={"disk_budget_gb": 0.001})  # type: ignore[arg-type]
    watch = DiskWatch.from_settings(settings, pool, collector, lambda: datetime.now(UTC))
    port, stop = free_port(), asyncio.Event()
    endpoint = asyncio.create_task(serve_metrics(collector, "127.0.0.1", port, stop))
    try:
        await asyncio.sleep(0.2)  # the endpoint listening
        async with make_client(pool, metrics_port=port) as client:
            await every_collector_on_time(client, pool)
            before = (await client.get("/health/detailed")).json()
            outlook = await watch.refresh()
            after = (await client.get("/health/detailed")).json()
    finally:
        stop.set()
        await endpoint
    assert outlook is not None
    assert before["disk"]["metrics_reachable"] is True
    assert before["disk"]["pressure"] is None  # nothing sampled yet
    assert before["status"] == "ok", before
    disk = after["disk"]
    assert disk["pressure"] == "snapshots_slowed"
    assert disk["days_left"] == 0
    assert disk["budget_bytes"] == 1_000_000
    assert disk["used_bytes"] == outlook.used_bytes
    assert disk["growth_bytes_per_day"] is None  # samples too short for a rate
    assert disk["retention_days"] == 183
    assert disk["retention_days_fit"] is None  # no day partition holds a whole day yet
    assert after["status"] == "degraded"


async def test_without_the_collector_the_disk_is_unknown(
    pool: asyncpg.Pool, make_client: ClientFactory
) -> None:
    async with make_client(pool) as client:  # metrics_port 0: no collector endpoint
        disk = (await client.get("/health/detailed")).json()["disk"]
    assert disk == {
        "metrics_reachable": False,
        "used_bytes": None,
        "budget_bytes": None,
        "headroom_bytes": None,
        "growth_bytes_per_day": None,
        "days_left": None,
        "retention_days": None,
        "retention_days_fit": None,
        "pressure": None,
    }
