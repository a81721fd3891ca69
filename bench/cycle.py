"""Daemon-cycle benchmark against the simulator at full venue scale.

Starts ``polyfarm sim`` (its own process, rate limits on) with ``--markets`` markets, then in
this process runs one metadata scan, one price-snapshot cycle and one order-book cycle through
the real collectors into a fresh embedded database, and finally runs ``polyfarm collect`` as a
daemon for ``--soak-seconds`` while sampling its RSS once a second.

The baseline printed beside each cycle is the floor the documented rate limits allow at the
configured fraction (requests needed / requests allowed per second): a ratio near 1 means the
cycle is limited by the venue's rules, not by polyfarm.

    python bench/cycle.py --markets 20000 --soak-seconds 600 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from polyfarm.daemon import open_daemon
from polyfarm.settings import Settings
from polyfarm.store.database import create_pool, migrate_database
from polyfarm.store.embedded import EmbeddedPostgres

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim_process import POLYFARM, start_sim

# Documented per-10-second limits of the endpoints each cycle uses (reference §5).
DOCUMENTED_PER_10S = {"gamma_markets": 300, "clob_prices": 500, "clob_books": 500}


def floor_seconds(requests: int, family: str, fraction: float) -> float:
    """Fastest ``requests`` may go at ``fraction`` of the documented per-10-second limit."""
    return requests / (DOCUMENTED_PER_10S[family] * fraction / 10)


async def timed_cycles(settings: Settings, dsn: str) -> dict[str, float]:
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        await migrate_database(pool, settings)
        async with open_daemon(settings, pool) as collection:
            started = time.perf_counter()
            meta = await collection.metadata.cycle()
            metadata_s = time.perf_counter() - started
            started = time.perf_counter()
            prices = await collection.prices.cycle()
            price_s = time.perf_counter() - started
            started = time.perf_counter()
            books = await collection.books.cycle()
            book_s = time.perf_counter() - started
            tokens = len(collection.catalog.active_tokens())
    finally:
        await pool.close()
    fraction = settings.rate_limits.fraction
    market_pages = math.ceil(meta.markets / 100)
    return {
        "markets": meta.markets,
        "tokens": tokens,
        "price_rows": prices.rows,
        "book_rows": books.rows,
        "metadata_scan_s": round(metadata_s, 2),
        "price_cycle_s": round(price_s, 2),
        "book_cycle_s": round(book_s, 2),
        "metadata_floor_s": round(floor_seconds(market_pages, "gamma_markets", fraction), 2),
        "price_floor_s": round(floor_seconds(math.ceil(tokens / 250), "clob_prices", fraction), 2),
        "book_floor_s": round(floor_seconds(math.ceil(tokens / 500), "clob_books", fraction), 2),
    }


async def soak(urls: dict[str, str], dsn: str, seconds: float) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env.update(urls)
    env["POLYFARM_DATABASE_URL"] = dsn
    env["POLYFARM_LOG_LEVEL"] = "WARNING"
    daemon = await asyncio.create_subprocess_exec(
        POLYFARM,
        "collect",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    process = psutil.Process(daemon.pid)
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds and daemon.returncode is None:
        samples.append((time.monotonic() - started, process.memory_info().rss / 2**20))
        await asyncio.sleep(1)
    daemon.send_signal(signal.SIGTERM)
    await asyncio.wait_for(daemon.wait(), 60)
    peak = max(rss for _, rss in samples)
    settled = [rss for t, rss in samples if t >= min(120, seconds / 2)]
    half = len(settled) // 2
    growth = (
        (sum(settled[half:]) / max(1, len(settled) - half)) - (sum(settled[:half]) / max(1, half))
        if half
        else 0.0
    )
    return {
        "soak_s": round(seconds),
        "rss_mb_peak": round(peak, 1),
        "rss_mb_growth_second_half": round(growth, 1),
        "daemon_exit_code": daemon.returncode or 0,
    }


async def run(args: argparse.Namespace) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="polyfarm-cycle-"))
    server = EmbeddedPostgres(data_dir)
    server.start()
    sim, urls = await start_sim(args.markets, seed=3)
    try:
        settings = Settings(
            gamma_url=urls["POLYFARM_GAMMA_URL"],
            clob_url=urls["POLYFARM_CLOB_URL"],
            data_url=urls["POLYFARM_DATA_URL"],
            ws_url=urls["POLYFARM_WS_URL"],
        )
        result = await timed_cycles(settings, server.dsn())
        if args.soak_seconds > 0:
            result |= await soak(urls, server.dsn(), args.soak_seconds)
    finally:
        sim.send_signal(signal.SIGTERM)
        await asyncio.wait_for(sim.wait(), 30)
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")  # type: ignore[assignment]
    return result


def print_table(result: dict[str, float]) -> None:
    print(f"{result['markets']:,} markets, {result['tokens']:,} tokens")
    print(f"{'cycle':<16}{'seconds':>10}{'rate floor':>12}{'ratio':>8}")
    for label, key, floor in (
        ("metadata scan", "metadata_scan_s", "metadata_floor_s"),
        ("price cycle", "price_cycle_s", "price_floor_s"),
        ("book cycle", "book_cycle_s", "book_floor_s"),
    ):
        ratio = result[key] / result[floor] if result[floor] else float("nan")
        print(f"{label:<16}{result[key]:>10.2f}{result[floor]:>12.2f}{ratio:>7.2f}x")
    if "rss_mb_peak" in result:
        print(
            f"daemon RSS over {result['soak_s']:.0f} s: peak {result['rss_mb_peak']} MB, "
            f"second-half growth {result['rss_mb_growth_second_half']} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=20_000)
    parser.add_argument("--soak-seconds", type=float, default=600)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print_table(result)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
