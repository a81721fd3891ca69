"""Chaos run: the whole daemon against the simulator, injured on purpose, checked against truth.

Processes: the simulator (``polyfarm sim``), the collector daemon (``polyfarm collect``), and
an embedded PostgreSQL in a scratch directory, all on loopback. Phases, in order: a clean
warm-up; WebSocket drops; silent stalls (sockets stay open, PONGs answered, no data); a 429
storm; malformed frames; duplicate and out-of-order frames with book-hash mismatches; the
database stopped for ``--db-outage-s`` seconds; ``kill -9`` of the daemon and a restart; a
quiet tail until every lost window is repaired (or ``--repair-limit-s`` passes). Then every
trade the simulator emitted in the measured window is compared with the ``trades`` table.

With ``--collectors 2`` a second collector (instance ``b``, its own data directory) writes into
the same database all along, except for one more phase in which it is stopped and started
again (an upgrade); the kill phase kills the first. The result then also counts book changes
stored twice and maintenance intervals run twice (both must be 0).

Prints a table (faults injected per kind, trades emitted / stored / missing / duplicated,
recovery time per phase, journal peak, RSS peak); ``--json`` ends with one JSON object.

    python bench/chaos.py [--markets 150] [--phase-s 40] [--db-outage-s 120] [--collectors 2]
                          [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil

from polyfarm.store.embedded import EmbeddedPostgres
from polyfarm.store.rows import canonical_decimal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim_process import POLYFARM, start_sim

PHASES: list[tuple[str, str]] = [
    ("warm-up", ""),
    ("ws drops", "ws_drop=0.01"),
    ("silent stalls", "ws_stall=0.005"),
    ("429 storm", "http_429=0.5,retry_after_s=1"),
    ("malformed frames", "ws_malformed=0.01,malformed_json=0.05,truncated_json=0.05"),
    ("dup/out-of-order/hash", "ws_duplicate=0.02,ws_out_of_order=0.02,hash_mismatch=0.02"),
]


MAINTENANCE_S = 60  # short, so that the elected job changes hands within the run


@dataclass
class Run:
    started: float = field(default_factory=time.monotonic)
    recovery_s: dict[str, float | None] = field(default_factory=dict)
    faults_by_phase: dict[str, dict[str, int]] = field(default_factory=dict)
    journal_peak_bytes: int = 0
    rss_peak_mb: float = 0.0
    daemon: asyncio.subprocess.Process | None = None
    second: asyncio.subprocess.Process | None = None  # with --collectors 2


def trade_identity(token: str, epoch_s: int, price: str, size: str, side: str) -> tuple[Any, ...]:
    return (token, epoch_s, canonical_decimal(price), canonical_decimal(size), side)


async def start_daemon(
    urls: dict[str, str], dsn: str, data_dir: Path, instance: str = "a"
) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env.update(urls)
    env |= {
        "POLYFARM_DATABASE_URL": dsn,
        "POLYFARM_DATA_DIR": str(data_dir),
        "POLYFARM_INSTANCE": instance,
        "POLYFARM_LOG_LEVEL": "WARNING",
        "POLYFARM_WEBSOCKET__STALL_TIMEOUT_S": "15",
        "POLYFARM_METRICS_PORT": "0",
        "POLYFARM_INTERVALS__MAINTENANCE_S": str(MAINTENANCE_S),
    }
    return await asyncio.create_subprocess_exec(
        POLYFARM,
        "collect",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=open(data_dir / "daemon.log", "ab"),  # noqa: ASYNC230
    )


async def set_faults(http: aiohttp.ClientSession, base: str, spec: str) -> None:
    async with http.post(f"{base}/_sim/faults", json={"spec": spec}) as response:
        response.raise_for_status()


async def sim_json(http: aiohttp.ClientSession, base: str, path: str) -> Any:
    async with http.get(f"{base}{path}") as response:
        response.raise_for_status()
        return await response.json()


async def latest_trade_received(dsn: str) -> datetime | None:
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        value: datetime | None = await conn.fetchval("SELECT max(received_at) FROM trades")
        return value
    finally:
        await conn.close()


def journal_size(journal_dir: Path) -> int:
    return sum(p.stat().st_size for p in journal_dir.glob("*.jnl")) if journal_dir.exists() else 0


async def sample(run: Run, journal_dir: Path) -> None:
    """Once a second: journal size and the daemon's RSS."""
    while True:
        size = await asyncio.to_thread(journal_size, journal_dir)
        run.journal_peak_bytes = max(run.journal_peak_bytes, size)
        if run.daemon is not None and run.daemon.returncode is None:
            try:
                rss = psutil.Process(run.daemon.pid).memory_info().rss / 2**20
                run.rss_peak_mb = max(run.rss_peak_mb, rss)
            except psutil.NoSuchProcess:
                pass
        await asyncio.sleep(1)


async def recovery_after(dsn: str, since: datetime, limit_s: float) -> float | None:
    """Seconds until a trade received after ``since`` is stored (the stream writes again)."""
    began = time.monotonic()
    while time.monotonic() - began < limit_s:
        latest = await latest_trade_received(dsn)
        if latest is not None and latest > since:
            return round(time.monotonic() - began, 1)
        await asyncio.sleep(0.5)
    return None


async def fault_phases(
    run: Run, http: aiohttp.ClientSession, base: str, dsn: str, phase_s: float
) -> None:
    for name, spec in PHASES:
        print(f"phase: {name} ({spec or 'no faults'}) from {time.time():.0f}", file=sys.stderr)
        before = Counter((await sim_json(http, base, "/_sim/stats"))["faults"])
        await set_faults(http, base, spec)
        await asyncio.sleep(phase_s)
        await set_faults(http, base, "")
        after = Counter((await sim_json(http, base, "/_sim/stats"))["faults"])
        run.faults_by_phase[name] = dict(after - before)
        run.recovery_s[name] = await recovery_after(dsn, datetime.now(UTC), 120)


async def database_outage(run: Run, server: EmbeddedPostgres, dsn: str, seconds: float) -> None:
    print(f"phase: database stopped for {seconds:.0f} s from {time.time():.0f}", file=sys.stderr)
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(server.start)
    run.recovery_s["database outage"] = await recovery_after(dsn, datetime.now(UTC), 180)


async def kill_and_restart(run: Run, urls: dict[str, str], dsn: str, data_dir: Path) -> None:
    print(f"phase: kill -9 of the daemon, then a restart at {time.time():.0f}", file=sys.stderr)
    assert run.daemon is not None
    run.daemon.send_signal(signal.SIGKILL)
    await run.daemon.wait()
    await asyncio.sleep(5)
    run.daemon = await start_daemon(urls, dsn, data_dir)
    run.recovery_s["kill -9"] = await recovery_after(dsn, datetime.now(UTC), 180)


async def upgrade_second(
    run: Run, urls: dict[str, str], dsn: str, data_dir: Path, s: float
) -> None:
    """The second collector stopped (SIGTERM) for ``s`` seconds, then started again."""
    print(f"phase: collector b stopped for {s:.0f} s from {time.time():.0f}", file=sys.stderr)
    assert run.second is not None
    run.second.send_signal(signal.SIGTERM)
    await asyncio.wait_for(run.second.wait(), 60)
    await asyncio.sleep(s)
    run.second = await start_daemon(urls, dsn, data_dir, "b")


async def shared_database_checks(dsn: str) -> dict[str, int]:
    """What two collectors could do twice: store a book change, run a maintenance interval."""
    conn = await asyncpg.connect(dsn)
    try:
        # The view: a change stored folded into its mirror's row counts as the change it is.
        twice = await conn.fetchval(
            "SELECT count(*) - count(DISTINCT (token_sid, ts, side, price, size)) FROM book_deltas"
        )
        runs = await conn.fetch(
            "SELECT started_at FROM task_runs WHERE task_name = 'maintenance' "
            "AND status <> 'cancelled'"
        )
    finally:
        await conn.close()
    per_interval = Counter(int(r["started_at"].timestamp()) // MAINTENANCE_S for r in runs)
    return {
        "book_changes_twice": twice,
        "maintenance_runs": len(runs),
        "maintenance_intervals_run_twice": sum(n > 1 for n in per_interval.values()),
    }


async def open_gaps(dsn: str, window: tuple[int, int]) -> int | None:
    """Lost trade windows overlapping ``window`` that the daemon has not yet repaired."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM feed_gaps WHERE stream = 'ws_trades' AND NOT repaired "
            "AND market_id IS NOT NULL "
            "AND gap_start <= to_timestamp($2) AND gap_end >= to_timestamp($1)",
            window[0],
            window[1],
        )
        return count
    finally:
        await conn.close()


async def repairs_settled(dsn: str, window: tuple[int, int], limit_s: float) -> int | None:
    """Wait until every lost window of ``window`` is repaired (the daemon waits
    ``repair_delay_s`` after a window ends before asking the Data API, then retries with
    growing pauses), or ``limit_s`` passed; returns the windows still open."""
    began = time.monotonic()
    while True:
        remaining = await open_gaps(dsn, window)
        if remaining == 0 or time.monotonic() - began >= limit_s:
            return remaining
        await asyncio.sleep(2)


async def tokens_known(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r["token_id"] for r in await conn.fetch("SELECT token_id FROM tokens")}
    finally:
        await conn.close()


async def compare(
    http: aiohttp.ClientSession, base: str, dsn: str, window: tuple[int, int], tokens: set[str]
) -> dict[str, int]:
    """Trades of the tokens known when the window opened (markets created later are picked up
    by the next metadata scan, which is a different question from loss)."""
    truth: Counter[tuple[Any, ...]] = Counter()
    since = 0
    while True:
        page = await sim_json(http, base, f"/_sim/truth/trades?since_id={since}&limit=50000")
        for t in page["trades"]:
            second = t["timestamp_ms"] // 1000
            if window[0] <= second <= window[1] and t["token_id"] in tokens:
                truth[trade_identity(t["token_id"], second, t["price"], t["size"], t["side"])] += 1
        if page["next_since_id"] is None:
            break
        since = page["next_since_id"]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT token_id, extract(epoch FROM ts)::bigint AS s, price, size, side FROM trades "
            "WHERE ts >= to_timestamp($1) AND ts <= to_timestamp($2)",
            window[0],
            window[1],
        )
    finally:
        await conn.close()
    stored: Counter[tuple[Any, ...]] = Counter(
        trade_identity(r["token_id"], r["s"], repr(r["price"]), repr(r["size"]), r["side"])
        for r in rows
        if r["token_id"] in tokens
    )
    missing = truth - stored
    duplicated = stored - truth
    for identity in sorted(missing, key=lambda key: key[1])[:20]:
        print(
            f"missing: token …{identity[0][-6:]} at {identity[1]} ({identity[2:]})", file=sys.stderr
        )
    return {
        "trades_emitted": sum(truth.values()),
        "trades_stored": sum(stored.values()),
        "missing": sum(missing.values()),
        "duplicated": sum(duplicated.values()),
    }


async def run_chaos(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="polyfarm-chaos-"))
    server = EmbeddedPostgres(data_dir)
    server.start()
    dsn = server.dsn()
    sim, urls = await start_sim(args.markets, seed=5, speed=args.speed)
    base = urls["POLYFARM_GAMMA_URL"].rsplit("/", 1)[0]
    run = Run()
    sampler = asyncio.create_task(sample(run, data_dir / "journal"))
    try:
        async with aiohttp.ClientSession() as http:
            run.daemon = await start_daemon(urls, dsn, data_dir)
            if args.collectors == 2:
                (data_dir / "b").mkdir()
                run.second = await start_daemon(urls, dsn, data_dir / "b", "b")
            await asyncio.sleep(args.settle_s)  # first scan, subscriptions, books
            first_s = int((await sim_json(http, base, "/_sim/stats"))["clock"]["now"]) + 1
            tokens = await tokens_known(dsn)
            await fault_phases(run, http, base, dsn, args.phase_s)
            await database_outage(run, server, dsn, args.db_outage_s)
            await kill_and_restart(run, urls, dsn, data_dir)
            if run.second is not None:
                await upgrade_second(run, urls, dsn, data_dir / "b", args.phase_s)
            last_s = int((await sim_json(http, base, "/_sim/stats"))["clock"]["now"]) - 1
            window = (first_s, last_s)
            await asyncio.sleep(args.settle_s)
            unrepaired = await repairs_settled(dsn, window, args.repair_limit_s)
            stats = await sim_json(http, base, "/_sim/stats")
            result: dict[str, Any] = dict(await compare(http, base, dsn, window, tokens))
            result["unrepaired_windows"] = unrepaired
            result["faults_injected"] = stats["faults"]
            if run.second is not None:
                result |= await shared_database_checks(dsn)
    finally:
        sampler.cancel()
        for daemon in (run.daemon, run.second):
            if daemon is not None and daemon.returncode is None:
                daemon.send_signal(signal.SIGTERM)
                await asyncio.wait_for(daemon.wait(), 60)
        sim.send_signal(signal.SIGTERM)
        await asyncio.wait_for(sim.wait(), 30)
        server.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    result |= {
        "faults_by_phase": run.faults_by_phase,
        "recovery_s": run.recovery_s,
        "journal_peak_bytes": run.journal_peak_bytes,
        "rss_peak_mb": round(run.rss_peak_mb, 1),
        "wall_s": round(time.monotonic() - run.started),
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    print(
        "faults injected:",
        ", ".join(f"{k}={v}" for k, v in sorted(result["faults_injected"].items())),
    )
    print(f"{'trades emitted':<22}{result['trades_emitted']:>10,}")
    print(f"{'trades stored':<22}{result['trades_stored']:>10,}")
    print(f"{'missing':<22}{result['missing']:>10,}")
    print(f"{'duplicated':<22}{result['duplicated']:>10,}")
    unrepaired = result["unrepaired_windows"]
    print(f"{'windows unrepaired':<22}{'?' if unrepaired is None else unrepaired:>10}")
    print(f"{'journal peak':<22}{result['journal_peak_bytes'] / 2**20:>9.1f}M")
    print(f"{'daemon RSS peak':<22}{result['rss_peak_mb']:>9.1f}M")
    for key in ("book_changes_twice", "maintenance_runs", "maintenance_intervals_run_twice"):
        if key in result:
            print(f"{key.replace('_', ' '):<22}{result[key]:>10,}")
    print("injury, faults injected, recovery (s until trades are written again after it ends):")
    for phase, seconds in result["recovery_s"].items():
        faults = result["faults_by_phase"].get(phase, {})
        injected = ", ".join(f"{k}={v}" for k, v in sorted(faults.items())) or "-"
        print(f"  {phase:<24}{injected:<52}{'-' if seconds is None else seconds:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=150)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--phase-s", type=float, default=40)
    parser.add_argument("--settle-s", type=float, default=30)
    parser.add_argument(
        "--repair-limit-s", type=float, default=180, help="longest wait for the last repairs"
    )
    parser.add_argument("--db-outage-s", type=float, default=120)
    parser.add_argument(
        "--collectors", type=int, choices=(1, 2), default=1, help="2: a second collector"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run_chaos(args))
    print_table(result)
    if args.json:
        print(json.dumps(result))
    twice = result.get("book_changes_twice", 0) + result.get("maintenance_intervals_run_twice", 0)
    sys.exit(0 if result["missing"] == 0 and result["duplicated"] == 0 and twice == 0 else 1)


if __name__ == "__main__":
    main()
