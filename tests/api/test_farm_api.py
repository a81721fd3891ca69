"""The API against a database filled by a short simulated collection: every figure it serves is
checked against a query of the database written here, independently of the API's own SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from polyfarm.settings import Settings
from polyfarm.store.stats import table_stats

from .conftest import ClientFactory


async def test_liveness_and_detailed_health(farm: httpx.AsyncClient) -> None:
    live = await farm.get("/health")
    assert live.status_code == 200
    assert live.json()["status"] == "ok"
    detailed = (await farm.get("/health/detailed")).json()
    assert detailed["database"]["reachable"] is True
    assert detailed["database"]["schema_version"] >= 6
    names = {c["collector"] for c in detailed["collectors"]}
    assert {"metadata", "prices", "orderbooks", "resolutions", "maintenance"} <= names
    prices = next(c for c in detailed["collectors"] if c["collector"] == "prices")
    assert prices["last_error"] is not None, "the farm had one failing prices cycle"
    assert prices["consecutive_failures"] == 0
    assert detailed["websocket"]["metrics_reachable"] is False  # metrics_port is 0 here


async def test_detailed_health_is_degraded_exactly_while_a_collector_is_stale(
    farm_dsn: str, farm_pool: asyncpg.Pool, make_client: ClientFactory
) -> None:
    """Judged at chosen moments, not whenever the test happens to run after the farm."""
    last_success = dict(
        await farm_pool.fetch("SELECT collector, last_success_at FROM collector_health")
    )
    prices_allowed = 3 * Settings().intervals.prices_s + 60  # three intervals and a minute
    moments = {
        "just after the last cycle": max(last_success.values()) + timedelta(seconds=1),
        "prices overdue": last_success["prices"] + timedelta(seconds=prices_allowed + 1),
    }
    expected = {
        "just after the last cycle": ("ok", set()),
        "prices overdue": ("degraded", {"prices"}),
    }
    for moment, now in moments.items():
        async with make_client(farm_dsn, clock=lambda now=now: now) as client:
            body = (await client.get("/health/detailed")).json()
        stale = {c["collector"] for c in body["collectors"] if c["stale"]}
        assert (body["status"], stale) == expected[moment], moment


async def test_stats_match_polyfarm_stats(farm: httpx.AsyncClient, farm_pool: asyncpg.Pool) -> None:
    body = (await farm.get("/api/stats")).json()
    async with farm_pool.acquire() as conn:
        expected = {t.table: t.rows for t in await table_stats(conn)}
        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        today = await conn.fetchval("SELECT count(*) FROM price_snapshots WHERE ts >= $1", day)
        trades_today = await conn.fetchval("SELECT count(*) FROM trades WHERE ts >= $1", day)
        open_by_tier = dict(
            await conn.fetch("SELECT tier, count(*) FROM markets WHERE NOT closed GROUP BY 1")
        )
    assert {t["table"]: t["rows"] for t in body["tables"]} == expected
    assert body["markets_total"] == expected["markets"]
    assert body["snapshots_today"] == today
    assert body["trades_today"] == trades_today
    assert expected["trades"] > 0
    assert expected["price_snapshots"] > 0
    served = {t["tier"]: t["markets"] for t in body["markets_by_tier"] if t["markets"]}
    assert served == open_by_tier
    assert body["markets_open"] == sum(open_by_tier.values())
    assert body["database_size_bytes"] > 1_000_000


async def test_market_list_filters_search_and_pages(
    farm: httpx.AsyncClient, farm_pool: asyncpg.Pool
) -> None:
    open_count = await farm_pool.fetchval("SELECT count(*) FROM markets WHERE NOT closed")
    first = (await farm.get("/api/markets", params={"page_size": 10})).json()
    assert first["total"] == open_count
    assert len(first["items"]) == 10
    volumes = [m["volume_24h"] for m in first["items"]]
    assert volumes == sorted(volumes, reverse=True)
    pages = [
        (await farm.get("/api/markets", params={"page_size": 10, "page": p})).json()["items"]
        for p in range(1, (open_count + 9) // 10 + 1)
    ]
    ids = [m["market_id"] for page in pages for m in page]
    assert len(ids) == len(set(ids)) == open_count

    tier2 = (await farm.get("/api/markets", params={"tier": 2, "page_size": 200})).json()
    expected_t2 = await farm_pool.fetchval(
        "SELECT count(*) FROM markets WHERE NOT closed AND tier = 2"
    )
    assert tier2["total"] == expected_t2 == len(tier2["items"])
    assert {m["tier"] for m in tier2["items"]} == {2}

    closed = (await farm.get("/api/markets", params={"status": "closed"})).json()
    assert closed["total"] == await farm_pool.fetchval("SELECT count(*) FROM markets WHERE closed")
    assert all(m["closed"] for m in closed["items"])


async def test_search_finds_a_market_by_its_question(
    farm: httpx.AsyncClient, farm_pool: asyncpg.Pool
) -> None:
    row = await farm_pool.fetchrow(
        "SELECT market_id, question FROM markets WHERE NOT closed ORDER BY market_id LIMIT 1"
    )
    words = row["question"].split()[1:5]  # a fragment from the middle, any case
    found = (await farm.get("/api/markets", params={"q": " ".join(words).upper()})).json()
    assert row["market_id"] in {m["market_id"] for m in found["items"]}
    assert all(" ".join(words).lower() in m["question"].lower() for m in found["items"])
    nothing = (await farm.get("/api/markets", params={"q": "no such market 100%_"})).json()
    assert nothing == {"items": [], "total": 0, "page": 1, "page_size": 25}


async def test_list_price_is_the_latest_snapshot(
    farm: httpx.AsyncClient, farm_pool: asyncpg.Pool
) -> None:
    item = (await farm.get("/api/markets", params={"page_size": 1})).json()["items"][0]
    latest = await farm_pool.fetchrow(
        """
        SELECT s.price, s.ts FROM price_snapshots s JOIN tokens t USING (token_id)
        WHERE t.market_id = $1 AND t.outcome_index = 0 ORDER BY s.ts DESC LIMIT 1
        """,
        item["market_id"],
    )
    assert item["price"] == latest["price"]
    assert datetime.fromisoformat(item["price_at"]) == latest["ts"]


async def test_facets_count_markets(farm: httpx.AsyncClient, farm_pool: asyncpg.Pool) -> None:
    facets = (await farm.get("/api/market-facets")).json()
    expected = dict(
        await farm_pool.fetch(
            "SELECT category, count(*) FROM markets WHERE category IS NOT NULL GROUP BY 1"
        )
    )
    assert {f["value"]: f["markets"] for f in facets["categories"]} == expected
    assert facets["tags"], "simulated events carry tags"
    slug = facets["tags"][0]["value"]
    tagged = (await farm.get("/api/markets", params={"tag": slug, "status": "all"})).json()
    assert tagged["total"] == facets["tags"][0]["markets"]


async def test_market_detail(farm: httpx.AsyncClient, farm_pool: asyncpg.Pool) -> None:
    market_id = await farm_pool.fetchval(
        "SELECT market_id FROM trades GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    )
    body = (await farm.get(f"/api/markets/{market_id}", params={"trades": 20})).json()
    token = body["token_id"]
    assert [t["outcome_index"] for t in body["tokens"]] == [0, 1]
    assert token == body["tokens"][0]["token_id"]
    stored = await farm_pool.fetchval(
        "SELECT count(*) FROM price_snapshots WHERE token_id = $1 AND price IS NOT NULL", token
    )
    # Candles from the refreshed views plus the raw tail: every snapshot counted exactly once.
    assert body["interval"] == "1m"
    assert sum(c["samples"] for c in body["candles"]) == stored
    for interval in ("5m", "1h"):
        other = (await farm.get(f"/api/markets/{market_id}", params={"interval": interval})).json()
        assert other["interval"] == interval
        assert sum(c["samples"] for c in other["candles"]) == stored
        assert len(other["candles"]) < len(body["candles"])
    for c in body["candles"]:
        assert c["low"] <= min(c["open"], c["close"]) <= max(c["open"], c["close"]) <= c["high"]
    book = body["book"]
    assert [b["price"] for b in book["bids"]] == sorted(
        (b["price"] for b in book["bids"]), reverse=True
    )
    assert book["best_bid"] == book["bids"][0]["price"]
    trades = body["trades"]
    assert len(trades) == min(
        20, await farm_pool.fetchval("SELECT count(*) FROM trades WHERE market_id = $1", market_id)
    )
    assert [t["ts"] for t in trades] == sorted((t["ts"] for t in trades), reverse=True)
    for t in trades:
        notional = t["price"] * t["size"]
        expected_tier = (
            3 if notional >= 10_000 else 2 if notional >= 2_000 else 1 if notional >= 500 else None
        )
        assert t["whale_tier"] == expected_tier
    assert body["features"] == {}  # no stream ran
    assert body["features_at"] is None


async def test_market_detail_of_a_resolved_market_and_a_missing_one(
    farm: httpx.AsyncClient, farm_pool: asyncpg.Pool
) -> None:
    resolved = await farm_pool.fetchrow(
        "SELECT market_id, outcome_kind, winning_outcome FROM market_resolutions LIMIT 1"
    )
    body = (await farm.get(f"/api/markets/{resolved['market_id']}")).json()
    assert body["closed"] is True
    assert body["resolution"]["outcome_kind"] == resolved["outcome_kind"]
    assert body["resolution"]["winning_outcome"] == resolved["winning_outcome"]
    missing = await farm.get("/api/markets/does-not-exist")
    assert missing.status_code == 404
    bad = await farm.get(f"/api/markets/{resolved['market_id']}", params={"interval": "7m"})
    assert bad.status_code == 422


async def test_task_status_and_runs(farm: httpx.AsyncClient, farm_pool: asyncpg.Pool) -> None:
    statuses = (await farm.get("/api/tasks/status")).json()
    names = [
        r["task_name"]
        for r in await farm_pool.fetch("SELECT DISTINCT task_name FROM task_runs ORDER BY 1")
    ]
    assert [s["task_name"] for s in statuses] == names
    prices = next(s for s in statuses if s["task_name"] == "prices")
    assert prices["failures_24h"] == 1
    assert prices["runs_24h"] == await farm_pool.fetchval(
        "SELECT count(*) FROM task_runs WHERE task_name = 'prices'"
    )
    assert prices["interval_s"] == 60.0
    failed = (await farm.get("/api/tasks/runs", params={"status": "failed"})).json()
    assert [r["task_name"] for r in failed["items"]] == ["prices"]
    assert failed["items"][0]["error_message"]
    assert failed["next_before_id"] is None
    page1 = (await farm.get("/api/tasks/runs", params={"limit": 10})).json()
    page2 = (
        await farm.get(
            "/api/tasks/runs", params={"limit": 10, "before_id": page1["next_before_id"]}
        )
    ).json()
    ids = [r["id"] for r in page1["items"] + page2["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 20
    top = await farm_pool.fetch("SELECT id FROM task_runs ORDER BY id DESC LIMIT 20")
    assert ids == [r["id"] for r in top]


async def test_coverage_sees_the_failed_cycle(
    farm: httpx.AsyncClient, farm_pool: asyncpg.Pool
) -> None:
    body = (await farm.get("/api/data-quality/coverage")).json()
    open_tiers = [t for t in body["tiers"] if t["tier"] is not None]
    assert open_tiers
    for tier in body["tiers"]:
        assert tier["actual"] <= tier["expected"]
    # One prices cycle failed: every open token collected before it misses that one slot.
    tokens = dict(
        await farm_pool.fetch(
            """
            SELECT m.tier, count(DISTINCT s.token_id) FROM price_snapshots s
            JOIN markets m USING (market_id)
            WHERE NOT m.closed
              AND s.ts < (SELECT started_at FROM task_runs WHERE status = 'failed')
            GROUP BY 1
            """
        )
    )
    for tier in open_tiers:
        assert tier["expected"] - tier["actual"] >= tokens[tier["tier"]]
        assert tier["coverage_pct"] < 100
    cells = body["hours"]
    assert sum(c["actual"] for c in cells) == sum(t["actual"] for t in body["tiers"])
    books = (await farm.get("/api/data-quality/coverage", params={"stream": "orderbooks"})).json()
    assert books["stream"] == "orderbooks"
    assert all(t["tier"] is not None for t in books["tiers"])


async def test_gaps_list_open_markets_once_their_last_snapshot_is_stale(
    farm_dsn: str, farm_pool: asyncpg.Pool, make_client: ClientFactory
) -> None:
    last_cycle = await farm_pool.fetchval("SELECT max(ts) FROM price_snapshots")
    priced_last = {
        r["market_id"]
        for r in await farm_pool.fetch(
            "SELECT DISTINCT s.market_id FROM price_snapshots s JOIN markets m USING (market_id)"
            " WHERE s.ts = $1 AND NOT m.closed",
            last_cycle,
        )
    }
    assert priced_last
    stale_after = 240.0  # three prices intervals and a minute
    async with make_client(farm_dsn, clock=lambda: last_cycle + timedelta(seconds=60)) as client:
        fresh = (await client.get("/api/data-quality/gaps")).json()
    late = last_cycle + timedelta(seconds=stale_after + 1)
    async with make_client(farm_dsn, clock=lambda: late) as client:
        overdue = (await client.get("/api/data-quality/gaps")).json()

    assert fresh["stale_after_s"] == overdue["stale_after_s"] == stale_after
    assert fresh["gaps"] == []
    assert fresh["gaps_open"] == fresh["gaps_total"] == 0
    assert fresh["summary"] == []
    # Right after collection every open market has a recent snapshot...
    assert (fresh["stale_total"], fresh["stale_markets"]) == (0, [])
    # ...and once the prices collector is overdue, every one of them is listed, none twice.
    listed = [m["market_id"] for m in overdue["stale_markets"]]
    assert overdue["stale_total"] == len(priced_last)
    assert sorted(listed) == sorted(priced_last)
    assert {m["age_s"] for m in overdue["stale_markets"]} == {stale_after + 1}


async def test_metrics_count_requests_by_route(farm: httpx.AsyncClient) -> None:
    await farm.get("/api/stats")
    await farm.get("/api/markets/does-not-exist")
    text = (await farm.get("/metrics")).text
    assert 'polyfarm_api_requests_total{route="/api/stats",status="200"} 1.0' in text
    assert 'polyfarm_api_requests_total{route="/api/markets/{market_id}",status="404"} 1.0' in text
    assert "polyfarm_api_request_seconds_bucket" in text
