"""The API's doors: the Host check (DNS rebinding), security headers, the local docs page,
refused tokens in the log, validation of hostile parameters, and no route shadowing an id."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from structlog.testing import capture_logs

from polyfarm.api.dashboard_sources import SHIPPED_DIR
from polyfarm.api.guards import CONTENT_SECURITY_POLICY

from .conftest import ClientFactory

TOKEN = "a-long-enough-test-token"


@pytest.mark.parametrize(
    "host",
    ["attacker.example", "attacker.example:8000", "localhost.attacker.example", "127.0.0.1.nip.io",
     "", "[::1", "localhost:port", "127.0.0.2", "0.0.0.0", "local host"],
)  # fmt: skip
async def test_a_foreign_host_header_is_refused(
    db_dsn: str, make_client: ClientFactory, host: str
) -> None:
    with capture_logs() as logs:
        async with make_client(db_dsn) as client:
            refused = await client.get("/api/stats", headers={"Host": host})
            page = await client.get("/", headers={"Host": host})
    assert refused.status_code == page.status_code == 400
    assert refused.json() == {"detail": "this Host is not served here"}
    assert any("Host is not one this API answers to" in entry["event"] for entry in logs)


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:80", "[::1]:8000"])
async def test_loopback_names_are_served(
    db_dsn: str, make_client: ClientFactory, host: str
) -> None:
    async with make_client(db_dsn) as client:
        assert (await client.get("/api/stats", headers={"Host": host})).status_code == 200


async def test_api_host_and_allowed_hosts_are_served(
    db_dsn: str, make_client: ClientFactory
) -> None:
    api = {"host": "10.1.2.3", "allowed_hosts": ["dash.example", "*.corp.example"], "token": TOKEN}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with make_client(db_dsn, api=api) as client:
        for host in ("10.1.2.3:8000", "dash.example", "DASH.example.", "a.corp.example"):
            response = await client.get("/api/stats", headers={"Host": host, **auth})
            assert response.status_code == 200, host
        for host in ("corp.example", "dash.example.attacker", "other.example"):
            response = await client.get("/api/stats", headers={"Host": host, **auth})
            assert response.status_code == 400, host


async def test_every_response_carries_the_security_headers(
    db_dsn: str, make_client: ClientFactory
) -> None:
    async with make_client(db_dsn) as client:
        for path in ("/", "/markets/1", "/api/stats", "/docs", "/health", "/api/nothing"):
            response = await client.get(path)
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["x-frame-options"] == "DENY", path
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["referrer-policy"] == "no-referrer"
        refused = await client.get("/", headers={"Host": "attacker.example"})
        assert refused.headers["x-frame-options"] == "DENY"


async def test_the_docs_page_loads_nothing_from_elsewhere(
    db_dsn: str, make_client: ClientFactory
) -> None:
    async with make_client(db_dsn, dashboard_dir=SHIPPED_DIR) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert "http" not in page.text.lower(), "every script and sheet comes from this server"
        for path in ("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/swagger-init.js"):
            asset = await client.get(path)
            assert asset.status_code == 200, path
            assert len(asset.content) > 100
        assert "/openapi.json" in (await client.get("/docs/swagger-init.js")).text
        assert (await client.get("/redoc")).text == (await client.get("/")).text


async def test_without_local_swagger_files_the_docs_page_is_off(
    db_dsn: str, make_client: ClientFactory, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><div id=root></div>")
    async with make_client(db_dsn, dashboard_dir=dist) as client:
        docs = await client.get("/docs")
        missing_asset = await client.get("/docs/swagger-ui-bundle.js")
    assert docs.status_code == 404
    assert "/openapi.json" in docs.json()["detail"]
    assert missing_asset.status_code == 404


async def test_refused_tokens_are_logged_without_the_token(
    db_dsn: str, make_client: ClientFactory
) -> None:
    wrong = "wrong-but-plausible-token-0123"
    with capture_logs() as logs:
        async with make_client(db_dsn, api={"token": TOKEN}) as client:
            assert (await client.get("/api/stats")).status_code == 401
            headers = {"Authorization": f"Bearer {wrong}"}
            assert (await client.get("/metrics", headers=headers)).status_code == 401
    refusals = [entry for entry in logs if "bearer token" in entry["event"]]
    assert [entry["path"] for entry in refusals] == ["/api/stats", "/metrics"]
    assert [entry["sent_token"] for entry in refusals] == [False, True]
    assert wrong not in repr(logs)
    assert TOKEN not in repr(logs)


async def test_a_market_whose_id_is_facets_is_reachable(
    db_dsn: str, make_client: ClientFactory
) -> None:
    owner = await asyncpg.connect(db_dsn)
    try:
        await owner.execute(
            "INSERT INTO markets (market_id, condition_id, question, category) "
            "VALUES ('facets', '0xfacets', 'Is this id shadowed?', 'Tests')"
        )
    finally:
        await owner.close()
    async with make_client(db_dsn) as client:
        market = await client.get("/api/markets/facets")
        facets = await client.get("/api/market-facets")
    assert market.status_code == 200
    assert market.json()["question"] == "Is this id shadowed?"
    assert [(c["value"], c["markets"]) for c in facets.json()["categories"]] == [("Tests", 1)]


# The requests of the probe that answered 500; each is now refused by validation.
PROBE_500S = [
    "/api/markets?q=a%00b",
    "/api/markets?category=%00",
    "/api/markets?tag=x%00",
    "/api/tasks/runs?task=%00",
    "/api/markets/1%00",
    "/api/tasks/runs?before_id=9223372036854775808",
    "/%00",
    "/assets/%00",
    "/index.html%00.js",
    "/" + "a" * 5000,
    "/assets/" + "b" * 300 + ".js",
]


@pytest.mark.parametrize("path", PROBE_500S, ids=lambda p: p[:40])
async def test_the_probes_500s_are_now_client_errors(
    db_dsn: str, make_client: ClientFactory, path: str
) -> None:
    async with make_client(db_dsn, raise_app_exceptions=False) as client:
        response = await client.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:200])
