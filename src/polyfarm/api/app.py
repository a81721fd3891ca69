"""The FastAPI application factory. Nothing is created at import time: ``create_app`` builds an
app from the settings, a pool (or a factory the lifespan opens and closes) and the process's
metrics registry.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import asyncpg
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polyfarm.api.deps import ApiState, require_token
from polyfarm.api.docs import docs_router
from polyfarm.api.guards import SecurityHeaders, TrustedHostGuard, trusted_hosts
from polyfarm.api.probe import CollectorProbe
from polyfarm.api.routes import data_quality, health, markets, stats, tasks
from polyfarm.api.routes import metrics as metrics_route
from polyfarm.api.static import dashboard_router, default_dashboard_dir
from polyfarm.clock import Clock, utc_now
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.settings import Settings

log = get_logger(__name__)
PoolFactory = Callable[[], AbstractAsyncContextManager[asyncpg.Pool]]
UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


def collector_metrics_url(settings: Settings) -> str | None:
    """Where the collector daemon serves /metrics, or None when it serves none."""
    if not settings.metrics_port:
        return None
    host = settings.metrics_host
    host = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host
    return f"http://{host}:{settings.metrics_port}/metrics"


def create_app(
    settings: Settings,
    pool: asyncpg.Pool | PoolFactory,
    metrics: Metrics | None = None,
    *,
    clock: Clock = utc_now,
    dashboard_dir: Path | None = None,
) -> FastAPI:
    """``pool``: a pool the caller owns, or a factory whose context the app's lifespan holds."""
    registry = metrics or Metrics()
    lifespan = _lifespan(settings, pool, registry, clock)
    app = FastAPI(
        title="polyfarm",
        summary="Collection health, markets and data quality of a polyfarm database",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # served by docs.py from local files, not FastAPI's CDN page
        redoc_url=None,
    )
    _add_middleware(app, settings, registry)
    _add_error_handlers(app)
    app.include_router(health.router)
    for area in (stats, markets, tasks, data_quality):
        app.include_router(area.router, dependencies=[Depends(require_token)])
    app.include_router(metrics_route.router)
    dist = dashboard_dir or settings.api.dashboard_dir or default_dashboard_dir()
    app.include_router(docs_router(dist))
    app.include_router(dashboard_router(dist))
    return app


def _lifespan(
    settings: Settings,
    pool: asyncpg.Pool | PoolFactory,
    registry: Metrics,
    clock: Clock,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Opens the pool (when given a factory) and the collector probe; closes them at exit."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            db = pool if isinstance(pool, asyncpg.Pool) else await stack.enter_async_context(pool())
            probe = CollectorProbe(collector_metrics_url(settings))
            await stack.enter_async_context(probe)
            app.state.api = ApiState(settings, db, registry, probe, clock(), clock, _version())
            yield

    return lifespan


def _version() -> str:
    try:
        return importlib.metadata.version("polyfarm")
    except importlib.metadata.PackageNotFoundError:  # running from a bare source tree
        return "0+unknown"


def _add_middleware(app: FastAPI, settings: Settings, registry: Metrics) -> None:
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api.cors_origins),
            allow_credentials=False,
            allow_methods=["GET"],
            allow_headers=["Authorization"],
        )
    app.add_middleware(TrustedHostGuard, allowed=trusted_hosts(settings.api))
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics, metrics=registry)


def _add_error_handlers(app: FastAPI) -> None:
    async def no_schema(request: Request, exc: Exception) -> JSONResponse:
        detail = "the database has no polyfarm schema yet: run `polyfarm db migrate`"
        return JSONResponse({"detail": detail}, status_code=503)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable", path=request.url.path, error=repr(exc))
        return JSONResponse({"detail": "the database is unavailable"}, status_code=503)

    async def bad_value(request: Request, exc: Exception) -> JSONResponse:
        # Class 22 (and the driver's own out-of-range check): a value the database cannot
        # take, which validation should have stopped; the client's fault, said in one line.
        log.warning("a request value the database refused", path=request.url.path, error=str(exc))
        return JSONResponse({"detail": "a value in the request is out of range"}, status_code=400)

    app.add_exception_handler(asyncpg.UndefinedTableError, no_schema)
    app.add_exception_handler(asyncpg.DataError, bad_value)
    for error in UNAVAILABLE:
        app.add_exception_handler(error, unavailable)


class RequestMetrics:
    """Counts requests and times them, labelled by route template (bounded cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.http_requests.labels(route, str(status)).inc()
            self.metrics.http_seconds.labels(route).observe(time.perf_counter() - started)
