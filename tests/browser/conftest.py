"""Browser tests: Debian's Chromium driven by Playwright against ``polyfarm serve`` (a real
subprocess on a free loopback port) over a database filled by a short simulated collection.

Screenshots go to the test's temporary directory; with ``POLYFARM_UPDATE_SCREENSHOTS=1``
(``make screenshots``) they replace the README's pictures in ``docs/screenshots``.
"""

from __future__ import annotations

import asyncio
import ctypes.util
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright

from polyfarm.api.static import default_dashboard_dir
from polyfarm.store.database import create_pool

from ..api.farm import fill_farm
from ..conftest import TEMPLATE, Server, _fresh_database
from ..support import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_PACKAGES = "chromium libatomic1"  # what `make test` installs as root
DIST = default_dashboard_dir() / "index.html"
SCREENSHOTS = ROOT / "docs" / "screenshots"
POLYFARM = str(Path(sys.executable).with_name("polyfarm"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="package")
async def farm_dsn(
    plain_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    async for dsn in _fresh_database(plain_server, TEMPLATE):
        await fill_farm(dsn, tmp_path_factory.mktemp("browser-farm"))
        yield dsn


@pytest.fixture(scope="package")
async def farm_pool(farm_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(farm_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()


def polyfarm_env(dsn: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env |= {"POLYFARM_DATABASE_URL": dsn, "POLYFARM_DATA_DIR": str(data_dir)}
    env["POLYFARM_METRICS_PORT"] = "0"
    return env


async def _wait_healthy(url: str, server: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            if server.returncode is not None:
                break
            try:
                async with http.get(f"{url}health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"polyfarm serve did not come up at {url}")


@pytest.fixture(scope="package")
def dashboard_built() -> None:
    # Shipped with the package: missing is a defect, not a reason to skip.
    assert DIST.exists(), "the shipped dashboard build is missing: run `make dashboard`"


@pytest.fixture(scope="package")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no /usr/bin/chromium: `apt-get install {BROWSER_PACKAGES}` (make test does as root)"
        )
    if ctypes.util.find_library("atomic") is None:
        # Playwright's driver is a bundled Node that links libatomic.so.1.
        pytest.skip(
            f"no libatomic.so.1 for Playwright's driver: `apt-get install {BROWSER_PACKAGES}`"
        )
    return CHROMIUM


@pytest.fixture(scope="package")
async def base_url(
    dashboard_built: None, farm_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        POLYFARM, "serve", "--port", str(port),
        env=polyfarm_env(farm_dsn, tmp_path_factory.mktemp("serve")),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        await _wait_healthy(url, server)
        yield url
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(server.communicate(), 30)
    assert server.returncode == 0, err.decode()[-3000:]


@pytest.fixture(scope="package")
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser, base_url: str) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=base_url, viewport={"width": 1360, "height": 900}, locale="en-US"
    )
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    yield page
    await context.close()
    assert problems == [], problems


Screenshot = Callable[[Page, str], Awaitable[Path]]


@pytest.fixture
def screenshot(tmp_path: Path) -> Screenshot:
    update = os.environ.get("POLYFARM_UPDATE_SCREENSHOTS") == "1"
    folder = SCREENSHOTS if update else tmp_path

    async def take(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000, "a blank page makes a tiny PNG"
        return path

    return take
