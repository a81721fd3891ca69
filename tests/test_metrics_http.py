"""The collector's Prometheus endpoint, and the API's probe that reads it."""

from __future__ import annotations

import asyncio

import aiohttp

from polyfarm.api.probe import CollectorProbe, CollectorSample, sample_sums
from polyfarm.api.routes.health import websocket_health
from polyfarm.metrics import Metrics
from polyfarm.metrics_http import metrics_service, serve_metrics
from polyfarm.settings import Settings

from .support import free_port


def test_sample_sums_add_up_labels() -> None:
    text = (
        "# TYPE polyfarm_ws_messages_total counter\n"
        'polyfarm_ws_messages_total{type="book"} 3\n'
        'polyfarm_ws_messages_total{type="trade"} 4\n'
        "# TYPE polyfarm_ws_connected_shards gauge\n"
        "polyfarm_ws_connected_shards 2\n"
    )
    sums = sample_sums(text)
    assert sums["polyfarm_ws_messages_total"] == 7
    assert sums["polyfarm_ws_connected_shards"] == 2


def test_no_service_when_the_port_is_zero() -> None:
    assert metrics_service(Settings(metrics_port=0), Metrics()) is None
    service = metrics_service(Settings(metrics_port=9999), Metrics())
    assert service is not None
    assert service.name == "metrics-endpoint"


async def test_endpoint_serves_the_registry_and_the_probe_reads_rates() -> None:
    metrics = Metrics()
    metrics.ws_connected.set(3)
    metrics.messages.labels("book").inc(10)
    metrics.rows_written.labels("trades").inc(5)
    port = free_port()
    stop = asyncio.Event()
    now = [100.0]
    async with asyncio.TaskGroup() as group:
        group.create_task(serve_metrics(metrics, "127.0.0.1", port, stop))
        url = f"http://127.0.0.1:{port}/metrics"
        async with aiohttp.ClientSession() as http:
            for _ in range(50):
                try:
                    async with http.get(url) as response:
                        text = await response.text()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        assert 'polyfarm_rows_written_total{table="trades"} 5.0' in text
        async with CollectorProbe(url, clock=lambda: now[0]) as probe:
            first = await probe.sample()
            metrics.messages.labels("trade").inc(30)
            now[0] += 2.0
            second = await probe.sample()
        stop.set()
    assert first.reachable
    assert first.connected_shards == 3
    assert first.messages_total == 10
    assert first.events_per_s is None, "a rate needs two reads"
    assert second.events_per_s == 15.0
    async with CollectorProbe(url) as gone:
        assert (await gone.sample()).reachable is False
    async with CollectorProbe(None) as off:
        assert (await off.sample()).reachable is False


async def test_book_hash_checks_reach_the_detailed_health_by_source() -> None:
    metrics = Metrics()
    metrics.book_hashes.labels("ws_book", "verified").inc(7)
    metrics.book_hashes.labels("ws_book", "unverifiable").inc(2)
    metrics.book_hashes.labels("ws_price_change", "verified").inc(40)
    metrics.book_hashes.labels("rest", "mismatched").inc(1)
    port = free_port()
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(serve_metrics(metrics, "127.0.0.1", port, stop))
        url = f"http://127.0.0.1:{port}/metrics"
        async with CollectorProbe(url) as probe:
            for _ in range(50):
                sample = await probe.sample()
                if sample.reachable:
                    break
                await asyncio.sleep(0.05)
        stop.set()
    assert sample.book_hashes[("ws_book", "verified")] == 7
    health = websocket_health(sample, None)
    assert [h.model_dump() for h in health.book_hashes] == [
        {"source": "rest", "verified": 0.0, "mismatched": 1.0, "unverifiable": 0.0},
        {"source": "ws_book", "verified": 7.0, "mismatched": 0.0, "unverifiable": 2.0},
        {"source": "ws_price_change", "verified": 40.0, "mismatched": 0.0, "unverifiable": 0.0},
    ]
    assert websocket_health(CollectorSample(reachable=False), None).book_hashes == []
