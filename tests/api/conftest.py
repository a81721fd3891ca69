"""Fixtures for the API tests: a farm database filled once per package by a short simulated
collection, and an in-process client (httpx over ASGI, the app's lifespan run by hand).

Given a DSN, ``make_client`` builds the app as ``polyfarm serve`` does: its lifespan opens the
read-only pool (``open_reader_pool``), so the requests read as ``polyfarm_reader``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from polyfarm.api.app import create_app
from polyfarm.metrics import Metrics
from polyfarm.settings import Settings
from polyfarm.store.database import create_pool, open_reader_pool

from ..conftest import TEMPLATE, Server, _fresh_database
from .farm import fill_farm


@pytest.fixture
def server(plain_server: Server) -> Server:
    # The API reads both flavours through the same SQL; the store tests cover TimescaleDB.
    return plain_server


@pytest.fixture(scope="package")
async def farm_dsn(
    plain_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    async for dsn in _fresh_database(plain_server, TEMPLATE):
        await fill_farm(dsn, tmp_path_factory.mktemp("farm"))
        yield dsn


@pytest.fixture(scope="package")
async def farm_pool(farm_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(farm_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


def api_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path, "metrics_port": 0}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def client_for(
    app: FastAPI, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            yield c


ClientFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_client(tmp_path: Path) -> ClientFactory:
    """``make_client(pool_or_dsn, clock=..., dashboard_dir=..., **settings)``: a pool is used
    as it is; a DSN (the owner's) becomes ``database_url`` and the app opens its reader pool."""

    def make(
        pool: asyncpg.Pool | str,
        *,
        clock: Callable[[], datetime] | None = None,
        dashboard_dir: Path | None = None,
        metrics: Metrics | None = None,
        raise_app_exceptions: bool = True,
        **settings: object,
    ) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        options: dict[str, object] = {"dashboard_dir": dashboard_dir}
        if clock is not None:
            options["clock"] = clock
        if isinstance(pool, str):
            settings = {"database_url": pool, **settings}
        config = api_settings(tmp_path, **settings)
        source = pool if isinstance(pool, asyncpg.Pool) else reader_pool_factory(config)
        app = create_app(config, source, metrics, **options)  # type: ignore[arg-type]
        return client_for(app, raise_app_exceptions)

    return make


def reader_pool_factory(
    settings: Settings,
) -> Callable[[], contextlib.AbstractAsyncContextManager[asyncpg.Pool]]:
    return lambda: open_reader_pool(settings, start_embedded=False)


@pytest.fixture
async def farm(farm_dsn: str, make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The farm through the API as served: read as polyfarm_reader. ``farm_pool`` (the owner's)
    is for the tests' own expectations."""
    async with make_client(farm_dsn) as client:
        yield client
