"""The app around the routes: token, CORS, the dashboard files, database failures, OpenAPI."""

from __future__ import annotations

import socket
from pathlib import Path

import asyncpg
import pytest
from pydantic import ValidationError

from polyfarm.api.openapi import openapi_json
from polyfarm.api.server import bind
from polyfarm.errors import ConfigError
from polyfarm.settings import ApiSettings
from polyfarm.store.database import create_pool

from .conftest import ClientFactory

ROOT = Path(__file__).resolve().parents[2]


async def test_a_token_guards_the_api_but_not_liveness(
    db_dsn: str, make_client: ClientFactory
) -> None:
    async with make_client(db_dsn, api={"token": "s3cret-token-for-tests"}) as client:
        assert (await client.get("/health")).status_code == 200
        for path in ("/api/stats", "/health/detailed", "/metrics", "/api/markets"):
            refused = await client.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == "Bearer"
        wrong = await client.get("/api/stats", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = await client.get(
            "/api/stats", headers={"Authorization": "Bearer s3cret-token-for-tests"}
        )
        assert right.status_code == 200


async def test_cors_allows_listed_origins_only(db_dsn: str, make_client: ClientFactory) -> None:
    async with make_client(db_dsn, api={"cors_origins": ["http://grafana.local:3000/"]}) as client:
        allowed = await client.get("/health", headers={"Origin": "http://grafana.local:3000"})
        other = await client.get("/health", headers={"Origin": "http://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "http://grafana.local:3000"
    assert "access-control-allow-credentials" not in allowed.headers
    assert "access-control-allow-origin" not in other.headers
    with pytest.raises(ValidationError, match="is refused"):
        ApiSettings(cors_origins=("*",))


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><div id=root></div>")
    (root / "assets" / "index-abc123.js").write_text("console.log('built')")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


async def test_dashboard_files_and_spa_fallback(
    db_dsn: str, make_client: ClientFactory, dist: Path
) -> None:
    async with make_client(db_dsn, dashboard_dir=dist) as client:
        index = await client.get("/")
        deep = await client.get("/markets/12345")
        asset = await client.get("/assets/index-abc123.js")
        escape = await client.get("/..%2fsecret.txt")
        unknown_api = await client.get("/api/no-such-thing")
    assert index.status_code == deep.status_code == 200
    assert "id=root" in index.text
    assert deep.text == index.text
    assert index.headers["cache-control"] == "no-cache"
    assert asset.text == "console.log('built')"
    assert "immutable" in asset.headers["cache-control"]
    assert "outside the build" not in escape.text
    assert unknown_api.status_code == 404
    assert unknown_api.json() == {"detail": "not found"}


async def test_an_unbuilt_dashboard_says_so(
    db_dsn: str, make_client: ClientFactory, tmp_path: Path
) -> None:
    async with make_client(db_dsn, dashboard_dir=tmp_path / "missing") as client:
        page = await client.get("/")
        api = await client.get("/api/stats")
    assert page.status_code == 503
    assert "has not been built" in page.text
    assert "make dashboard" in page.text
    assert api.status_code == 200, "the API works without the dashboard"


async def test_database_down_is_503_not_500(db_dsn: str, make_client: ClientFactory) -> None:
    closed = await create_pool(db_dsn, min_size=1, max_size=1)
    await closed.close()
    async with make_client(closed) as client:
        stats = await client.get("/api/stats")
        health = await client.get("/health/detailed")
        live = await client.get("/health")
    assert stats.status_code == 503
    assert stats.json() == {"detail": "the database is unavailable"}
    assert health.status_code == 503
    assert health.json()["status"] == "down"
    assert health.json()["database"]["reachable"] is False
    assert health.json()["timescaledb_jobs"] is None
    assert live.status_code == 200


async def test_a_database_without_schema_says_how_to_fix_it(
    empty_dsn: str, make_client: ClientFactory
) -> None:
    async with make_client(empty_dsn) as client:
        stats = await client.get("/api/stats")
    assert stats.status_code == 503
    assert "polyfarm db migrate" in stats.json()["detail"]


async def test_the_api_never_writes(pool: asyncpg.Pool) -> None:
    from polyfarm.api.deps import read_only_connection

    class FakeState:
        def __init__(self, pool: asyncpg.Pool) -> None:
            self.pool = pool

    connections = read_only_connection(FakeState(pool))  # type: ignore[arg-type]
    conn = await anext(connections)
    try:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("DELETE FROM task_runs")
    finally:
        await connections.aclose()


def test_committed_openapi_document_is_current() -> None:
    committed = (ROOT / "dashboard" / "openapi.json").read_text()
    assert committed == openapi_json(), "run `make openapi` and rebuild the dashboard"


def test_a_port_in_use_is_a_clear_error() -> None:
    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="POLYFARM_API__PORT"):
            bind("127.0.0.1", port)
    finally:
        taken.close()
    free = bind("127.0.0.1", 0)
    assert free.family == socket.AF_INET
    free.close()
