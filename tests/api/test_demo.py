"""``polyfarm demo`` as a user runs it: the simulator, the collector and the dashboard's API in
one process, one metrics registry, stopped by Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from ..support import free_port

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))


async def _line_with(stream: asyncio.StreamReader, prefix: str) -> str:
    while line := (await stream.readline()).decode():
        if line.startswith(prefix):
            return line.split(maxsplit=1)[1].strip()
    raise AssertionError(f"the demo printed no {prefix!r} line")


async def _stats_with_markets(http: aiohttp.ClientSession, base: str) -> dict[str, object]:
    for _ in range(200):
        async with http.get(f"{base}api/stats") as response:
            if response.status == 200:
                stats: dict[str, object] = await response.json()
                if stats["markets_total"] and stats["snapshots_today"]:
                    return stats
        await asyncio.sleep(0.1)
    raise AssertionError("the demo stored no markets and snapshots within 20 s")


async def test_demo_serves_the_dashboard_and_shares_its_metrics(
    db_dsn: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env |= {
        "POLYFARM_DATABASE_URL": db_dsn,
        "POLYFARM_DATA_DIR": str(tmp_path),
        "POLYFARM_API__PORT": str(free_port()),
        "POLYFARM_METRICS_PORT": str(metrics_port),
    }
    demo = await asyncio.create_subprocess_exec(
        POLYFARM, "demo", "--markets", "20", "--duration", "90", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert demo.stdout is not None
    try:
        base = await asyncio.wait_for(_line_with(demo.stdout, "dashboard:"), 60)
        async with aiohttp.ClientSession() as http:
            await _stats_with_markets(http, base)
            async with http.get(base) as page:
                assert page.status == 200
                assert '<div id="root">' in await page.text()
            async with http.get(f"{base}health/detailed") as health:
                detail = await health.json()
            assert detail["websocket"]["metrics_reachable"] is True
            assert detail["database"]["role"] == "polyfarm_reader", "the API reads read-only"
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as collector:
                assert "polyfarm_cycles_total" in await collector.text()
            async with http.get(f"{base}metrics") as api_metrics:
                text = await api_metrics.text()
        assert "polyfarm_api_requests_total" in text
        assert 'polyfarm_cycles_total{collector="prices",status="success"}' in text
    finally:
        if demo.returncode is None:
            demo.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(demo.communicate(), 60)
    assert demo.returncode == 0, err.decode()[-3000:]
