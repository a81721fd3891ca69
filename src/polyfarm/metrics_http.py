"""The collector daemon's Prometheus endpoint: ``GET /metrics`` on ``metrics_host:metrics_port``
(127.0.0.1:9464 by default), a small aiohttp server run as a supervised service.

A port already in use is logged and retried with the supervisor's backoff; collection goes on
regardless.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from polyfarm.logs import get_logger
from polyfarm.metrics import CONTENT_TYPE, Metrics
from polyfarm.runtime import Service
from polyfarm.settings import Settings

log = get_logger(__name__)


def metrics_app(metrics: Metrics) -> web.Application:
    async def render(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    app = web.Application()
    app.router.add_get("/metrics", render)
    return app


async def serve_metrics(metrics: Metrics, host: str, port: int, stop: asyncio.Event) -> None:
    runner = web.AppRunner(metrics_app(metrics), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("metrics endpoint listening", url=f"http://{host}:{port}/metrics")
        await stop.wait()
    finally:
        await runner.cleanup()


def metrics_service(settings: Settings, metrics: Metrics) -> Service | None:
    """The endpoint as a supervised service; None when ``metrics_port`` is 0."""
    if not settings.metrics_port:
        return None

    async def run(stop: asyncio.Event) -> None:
        await serve_metrics(metrics, settings.metrics_host, settings.metrics_port, stop)

    return Service("metrics-endpoint", run)
