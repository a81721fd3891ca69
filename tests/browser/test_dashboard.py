"""Every page of the dashboard in a real browser, checked against the database behind it."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from playwright.async_api import Page, expect

from .conftest import POLYFARM, Screenshot, polyfarm_env


def n(value: int) -> str:
    return f"{value:,}"


async def polyfarm_stats_json(dsn: str, tmp_path: Path) -> dict[str, dict[str, object]]:
    """What ``polyfarm stats --json`` prints for this database: the numbers to match."""
    stats = await asyncio.create_subprocess_exec(
        POLYFARM, "stats", "--json", env=polyfarm_env(dsn, tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(stats.communicate(), 60)
    assert stats.returncode == 0, err.decode()
    report: dict[str, dict[str, object]] = json.loads(out.decode().strip().splitlines()[-1])
    return report


async def test_dashboard_numbers_match_polyfarm_stats(
    page: Page,
    farm_dsn: str,
    farm_pool: asyncpg.Pool,
    tmp_path: Path,
    screenshot: Screenshot,
) -> None:
    report = await polyfarm_stats_json(farm_dsn, tmp_path)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    snapshots_today = await farm_pool.fetchval(
        "SELECT count(*) FROM price_snapshots WHERE ts >= $1", day
    )
    trades_today = await farm_pool.fetchval("SELECT count(*) FROM trades WHERE ts >= $1", day)
    await page.goto("/")
    await expect(page.get_by_test_id("card-markets-value")).to_have_text(
        n(report["markets"]["rows"])  # type: ignore[arg-type]
    )
    await expect(page.get_by_test_id("card-snapshots-value")).to_have_text(n(snapshots_today))
    await expect(page.get_by_test_id("card-trades-value")).to_have_text(n(trades_today))
    await expect(page.get_by_test_id("card-database-value")).to_have_text(re.compile(r" MB$"))
    for table, figures in report.items():
        row = page.locator(f'[data-testid="table-stats"] tr[data-table="{table}"] td')
        await expect(row.nth(1)).to_have_text(n(figures["rows"]))  # type: ignore[arg-type]
    tasks = [r["task_name"] for r in await farm_pool.fetch(
        "SELECT DISTINCT task_name FROM task_runs ORDER BY 1"
    )]  # fmt: skip
    names = page.locator('[data-testid="task-health"] tbody tr td:first-child a')
    await expect(names).to_have_text(tasks)
    open_tiers = await farm_pool.fetch(
        "SELECT tier, count(*) AS n FROM markets WHERE NOT closed GROUP BY 1 ORDER BY 1"
    )
    chart = page.get_by_test_id("tier-chart")
    for row in open_tiers:
        await expect(chart.get_by_text(f"T{row['tier']}", exact=True)).to_be_visible()
        await expect(chart.get_by_text(str(row["n"]), exact=True).first).to_be_visible()
    await expect(page.get_by_test_id("health-indicator")).to_contain_text(
        re.compile("Live|degraded")
    )
    await screenshot(page, "dashboard")


async def test_markets_search_filters_and_pages(
    page: Page, farm_pool: asyncpg.Pool, screenshot: Screenshot
) -> None:
    open_count = await farm_pool.fetchval("SELECT count(*) FROM markets WHERE NOT closed")
    top = await farm_pool.fetchval(
        "SELECT question FROM markets WHERE NOT closed ORDER BY volume_24h DESC NULLS LAST LIMIT 1"
    )
    await page.goto("/markets")
    panel = page.get_by_test_id("panel-markets")
    await expect(panel.locator("h2")).to_have_text(f"{n(open_count)} markets")
    rows = page.locator('[data-testid="markets-table"] tbody tr')
    await expect(rows).to_have_count(min(25, open_count))
    await expect(rows.first.locator("td.question a")).to_have_text(top)
    await screenshot(page, "markets")

    await page.get_by_test_id("pager").get_by_role("button", name="Next").click()
    await expect(page.get_by_test_id("page-of")).to_have_text(
        f"Page 2 of {(open_count + 24) // 25}"
    )
    await expect(rows.first.locator("td.question a")).not_to_have_text(top)

    t3 = await farm_pool.fetchval("SELECT count(*) FROM markets WHERE NOT closed AND tier = 3")
    await page.get_by_test_id("filter-tier").select_option("3")
    await expect(panel.locator("h2")).to_have_text(f"{n(t3)} markets")
    await expect(rows).to_have_count(min(25, t3))
    await expect(page.locator('[data-testid="markets-table"] .badge')).to_have_text(["T3"] * t3)

    await page.get_by_test_id("filter-tier").select_option("")
    closed = await farm_pool.fetchval("SELECT count(*) FROM markets WHERE closed")
    await page.get_by_test_id("filter-status").select_option("closed")
    await expect(panel.locator("h2")).to_have_text(f"{n(closed)} markets")


async def test_search_then_open_a_market_with_chart_book_and_trades(
    page: Page, farm_pool: asyncpg.Pool, screenshot: Screenshot
) -> None:
    market = await farm_pool.fetchrow(
        """
        SELECT m.market_id, m.question FROM markets m JOIN trades t USING (market_id)
        WHERE NOT m.closed GROUP BY 1, 2
        ORDER BY count(*) FILTER (WHERE t.price * t.size >= 500) DESC, count(*) DESC LIMIT 1
        """
    )
    await page.goto("/markets")
    await page.get_by_test_id("search").fill(market["question"])
    link = page.locator('[data-testid="markets-table"] td.question a')
    await expect(link).to_have_text([market["question"]])
    await link.click()
    await expect(page).to_have_url(re.compile(f"/markets/{market['market_id']}$"))
    await expect(page.get_by_test_id("market-question")).to_have_text(market["question"])

    token = await farm_pool.fetchval(
        "SELECT token_id FROM tokens WHERE market_id = $1 AND outcome_index = 0",
        market["market_id"],
    )
    minutes = await farm_pool.fetchval(
        "SELECT count(DISTINCT date_trunc('minute', ts)) FROM price_snapshots "
        "WHERE token_id = $1 AND price IS NOT NULL",
        token,
    )
    candles = page.locator('[data-testid="candle-chart"] g.candle')
    await expect(candles).to_have_count(minutes)
    await (
        page.get_by_test_id("interval-switch").get_by_role("button", name="5m", exact=True).click()
    )
    await expect(page.get_by_test_id("panel-price").locator("h2")).to_contain_text("5m candles")
    fives = await farm_pool.fetchval(
        "SELECT count(DISTINCT time_bucket(INTERVAL '5 minutes', ts)) FROM price_snapshots "
        "WHERE token_id = $1 AND price IS NOT NULL",
        token,
    )
    await expect(candles).to_have_count(fives)
    await expect(page.locator('[data-testid="depth-chart"] svg .recharts-area')).to_have_count(2)

    trades = await farm_pool.fetch(
        "SELECT price * size AS notional FROM trades WHERE market_id = $1 "
        "ORDER BY ts DESC, exchange_ms DESC NULLS LAST LIMIT 25",
        market["market_id"],
    )
    await expect(page.locator('[data-testid="trades-table"] tbody tr')).to_have_count(len(trades))
    whales = sum(1 for t in trades if t["notional"] >= 500)
    await expect(page.locator('[data-testid="trades-table"] .badge.whale')).to_have_count(whales)
    await screenshot(page, "market")


async def coverage_as_the_page_read_it(page: Page) -> dict[str, Any]:
    """Expected slots run up to one cadence before now, so the figures change at every minute
    boundary: the page's own read is bracketed by two of ours, and taken again when a boundary
    fell in between."""
    read = "fetch('/api/data-quality/coverage?hours=24').then(r => r.json())"
    for _ in range(3):
        before = await page.evaluate(read)
        await page.reload()
        rows = page.get_by_test_id("coverage-table").locator("tr[data-tier]")
        await expect(rows.first).to_be_visible()  # the page has read the coverage
        after = await page.evaluate(read)
        if before["tiers"] == after["tiers"]:
            return after  # type: ignore[no-any-return]
    raise AssertionError("coverage changed during every read: cannot compare the page with it")


async def test_data_quality_shows_coverage_gaps_and_stale_markets(
    page: Page, base_url: str, screenshot: Screenshot
) -> None:
    await page.goto("/data-quality")
    table = page.get_by_test_id("coverage-table")
    coverage = await coverage_as_the_page_read_it(page)
    for tier in coverage["tiers"]:
        key = "closed" if tier["tier"] is None else str(tier["tier"])
        cells = table.locator(f'tr[data-tier="{key}"] td')
        await expect(cells.nth(1)).to_have_text(n(tier["markets"]))
        await expect(cells.nth(2)).to_have_text(n(tier["expected"]))
        await expect(cells.nth(3)).to_have_text(n(tier["actual"]))
        await expect(cells.nth(4)).to_have_text(n(tier["unchanged"]))
        await expect(cells.nth(5)).to_have_text(n(tier["missing"]))
    assert any(t["coverage_pct"] < 100 for t in coverage["tiers"]), "the failed cycle is a hole"
    await expect(page.get_by_test_id("panel-gaps").locator("h2")).to_have_text(
        "Feed gaps: 0 (0 not repaired)"
    )
    await expect(page.get_by_test_id("panel-stale").locator("h2")).to_have_text(
        re.compile(r"Stale markets: \d+")
    )
    await page.get_by_test_id("stream-switch").get_by_role("button", name="orderbooks").click()
    await expect(table.locator('tr[data-tier="closed"]')).to_have_count(0)
    await page.get_by_test_id("stream-switch").get_by_role("button", name="prices").click()
    await expect(table.locator('tr[data-tier="closed"]')).to_have_count(1)
    await screenshot(page, "data-quality")


async def test_tasks_history_filters_to_the_failed_run(
    page: Page, farm_pool: asyncpg.Pool, screenshot: Screenshot
) -> None:
    failed = await farm_pool.fetchrow(
        "SELECT id, error_message FROM task_runs WHERE status = 'failed'"
    )
    await page.goto("/tasks")
    await expect(page.locator('[data-testid="runs-table"] tbody tr')).to_have_count(25)
    await screenshot(page, "tasks")
    await page.get_by_test_id("filter-run-status").select_option("failed")
    rows = page.locator('[data-testid="runs-table"] tbody tr')
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator("td").first).to_have_text(str(failed["id"]))
    await expect(rows.first.locator("td.error-text")).to_have_text(failed["error_message"])
    await expect(page).to_have_url(re.compile(r"status=failed"))


async def test_navigation_and_deep_links(page: Page, farm_pool: asyncpg.Pool) -> None:
    await page.goto("/")
    for name, path, title in (
        ("Markets", "/markets", "Markets"),
        ("Data quality", "/data-quality", "Data quality"),
        ("Tasks", "/tasks", "Tasks"),
        ("Dashboard", "/", "Dashboard"),
    ):
        await page.get_by_role("navigation").get_by_role("link", name=name).click()
        await expect(page).to_have_url(re.compile(f"{path}$"))
        await expect(page.locator("h1")).to_have_text(title)
    market = await farm_pool.fetchrow("SELECT market_id, question FROM markets LIMIT 1")
    await page.goto(f"/markets/{market['market_id']}")  # served by the SPA fallback
    await expect(page.get_by_test_id("market-question")).to_have_text(market["question"])
    await page.goto("/no/such/page")
    await expect(page.locator("h1")).to_have_text("Not found")


async def test_api_docs_render_offline_under_the_content_security_policy(page: Page) -> None:
    """Swagger UI comes from this server: with every other host unreachable the page still
    renders every operation, and the CSP raises no violation (the fixture fails on console
    errors)."""
    foreign: list[str] = []

    async def loopback_only(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "http://localhost", "data:")):
            await route.continue_()
        else:
            foreign.append(url)
            await route.abort()

    await page.route("**/*", loopback_only)
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("polyfarm")
    await expect(page.locator(".opblock-summary-path").first).to_be_visible()
    paths = await page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/market-facets" in [p.replace("\u200b", "") for p in paths]
    assert foreign == [], foreign
