"""Backfill benchmark: the simulated venue's open markets backfilled for D days at 1 minute
(and their trade tape) at the documented rate limits, against the floor those limits allow.

    .venv/bin/python bench/backfill.py --markets 200 --days 7
    .venv/bin/python bench/backfill.py --markets 200 --days 7 --json   # … last line: JSON

The simulator runs as a separate process (``polyfarm sim``, its documented rate limits on),
the database is a fresh one on an embedded PostgreSQL (or ``--dsn``'s server), and the backfill
runs in this process exactly as ``polyfarm backfill --all-open`` does, its rate limiter at
``--rate-fraction`` of each documented limit.

The floor is the time the documented limits allow for the requests the run needed: each
request passes one budget that bounds it (the CLOB's ``/prices-history``: 1,000 per 10 s; the
Data API: 1,000 per 10 s, of which ``/trades`` 200), and the floor is the slowest budget's
requests over its rate. ``floor_ratio`` is wall time over that floor (1.0: as fast as the
venue allows). The JSON line holds ``wall_s``, ``floor_s``, ``floor_ratio``, ``rows_per_s``
(rows stored per second of wall time) and ``rss_mb_peak`` (this process's peak resident set),
and ``cpu_s``: the CPU seconds the backfill (``client``), the simulator and the database server
used meanwhile. Their sum over the host's cores is ``cpu_floor_s``: on a host where it exceeds
``floor_s`` the run is bound by the host's cores, not by the venue's limits (the simulator
serving the history runs on the same cores here, where the venue's would not).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil

from polyfarm.backfill.fetch import HistoryFetcher
from polyfarm.backfill.markets import Selection, select_markets
from polyfarm.backfill.run import Backfiller, BackfillPlan, Summary
from polyfarm.clock import utc_now
from polyfarm.daemon import Clients, open_clients
from polyfarm.logs import configure_logging
from polyfarm.polymarket.ratelimit import DOCUMENTED_LIMITS, WINDOW_S
from polyfarm.settings import Settings
from polyfarm.store.database import create_pool
from polyfarm.store.writer import BulkWriter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch_db import admin_server, drop_database, fresh_database
from sim_process import start_sim

CORES = os.cpu_count() or 1


def floor_s(clob_sent: int, data_sent: int, trade_pages: int) -> float:
    """The slowest budget's requests over its documented rate (pure)."""
    per_s = {name: limit / WINDOW_S for name, limit in DOCUMENTED_LIMITS.items()}
    return max(
        clob_sent / per_s["clob_prices_history"],
        data_sent / per_s["data_general"],
        trade_pages / per_s["data_trades"],
    )


class CpuMeter:
    """CPU seconds (user + system) of this process, the simulator and the database server
    (its postmaster and every backend alive at the end) between ``start`` and ``stop``."""

    def __init__(self, sim_pid: int, db_pid: int | None) -> None:
        self._sim = psutil.Process(sim_pid)
        self._db = psutil.Process(db_pid) if db_pid else None
        self._begin: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        now = {"client": own.ru_utime + own.ru_stime, "simulator": _cpu(self._sim)}
        if self._db is not None:
            now["database"] = _cpu(self._db) + sum(
                _cpu(child) for child in self._db.children(recursive=True)
            )
        return now

    def start(self) -> None:
        self._begin = self._now()

    def stop(self) -> None:
        end = self._now()
        self.used = {name: round(end[name] - self._begin.get(name, 0.0), 2) for name in end}


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:  # a backend that exited meanwhile
        return 0.0
    return float(times.user + times.system)


async def backfill(
    settings: Settings, dsn: str, days: int, meter: CpuMeter
) -> tuple[Summary, float, int, int, int]:
    pool = await create_pool(dsn, min_size=2, max_size=6)
    try:
        async with open_clients(settings) as clients:
            subjects = await select_markets(clients.gamma, Selection(all_open=True))
            end = utc_now()
            plan = BackfillPlan(subjects, end - timedelta(days=days), end)
            backfiller = _backfiller(settings, pool, clients)
            meter.start()
            began = time.perf_counter()
            summary = await backfiller.run(plan)
            wall = time.perf_counter() - began
            meter.stop()
            return (summary, wall, len(subjects), clients.clob.rest.sent,
                    clients.data_api.rest.sent)  # fmt: skip
    finally:
        await pool.close()


def _backfiller(settings: Settings, pool: Any, clients: Clients) -> Backfiller:
    return Backfiller(
        pool=pool,
        fetcher=HistoryFetcher(clients.clob, clients.data_api),
        data_api=clients.data_api,
        writer=BulkWriter(pool),
        clock=utc_now,
        concurrency=settings.backfill.concurrency,
        markets_per_request=settings.backfill.markets_per_request,
        trade_settle_s=0.0,
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sim, urls = await start_sim(args.markets, args.seed)
    try:
        with admin_server(args.dsn, "bench-backfill") as (admin, db_pid):
            meter = CpuMeter(sim.pid, db_pid)
            dsn = await fresh_database(admin, "bench_backfill", utc_now())
            try:
                settings = Settings(
                    gamma_url=urls["POLYFARM_GAMMA_URL"], clob_url=urls["POLYFARM_CLOB_URL"],
                    data_url=urls["POLYFARM_DATA_URL"], ws_url=urls["POLYFARM_WS_URL"],
                    rate_limits={"fraction": args.rate_fraction},
                    backfill={"concurrency": args.concurrency},
                )  # fmt: skip
                summary, wall, markets, clob, data = await backfill(settings, dsn, args.days, meter)
            finally:
                await drop_database(admin, dsn)
    finally:
        sim.terminate()
        await sim.wait()
    floor = floor_s(clob, data, summary.trade_requests)
    rows = summary.history_rows + summary.trade_rows
    return {
        "markets": markets,
        "days": args.days,
        "rate_fraction": args.rate_fraction,
        "requests_clob": clob,
        "requests_data_api": data,
        "trade_pages": summary.trade_requests,
        "history_rows": summary.history_rows,
        "trade_rows": summary.trade_rows,
        "missing_minutes": sum(summary.missing_minutes.values()),
        "wall_s": round(wall, 2),
        "floor_s": round(floor, 2),
        "floor_ratio": round(wall / floor, 2) if floor else None,
        "rows_per_s": round(rows / wall) if wall else None,
        "rss_mb_peak": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu_s": meter.used,
        # The CPU the run's three parts used, spread over every core of this host: no run on
        # it can be faster, whatever the venue allows.
        "cpu_floor_s": round(sum(meter.used.values()) / CORES, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate-fraction", type=float, default=0.9,
                        help="share of each documented limit (alone on the host)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--dsn", help="an admin DSN; default: an embedded PostgreSQL")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    result = asyncio.run(run(args))
    print(
        f"{result['markets']} markets x {result['days']} days: {result['wall_s']} s "
        f"(floor {result['floor_s']} s, ratio {result['floor_ratio']}); "
        f"{result['history_rows']:,} history + {result['trade_rows']:,} trade rows, "
        f"{result['rows_per_s']:,} rows/s; requests clob {result['requests_clob']}, "
        f"data {result['requests_data_api']}; peak RSS {result['rss_mb_peak']} MB; CPU s "
        f"{result['cpu_s']} (floor on this host {result['cpu_floor_s']} s)"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
