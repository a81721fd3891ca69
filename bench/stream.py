"""Stream benchmark: market-WebSocket messages through parse → live book → write, on one core.

Frames come from the simulator's own world (20,000 markets = 40,000 tokens by default): first a
``book`` snapshot for every token, then the venue's message mix (``price_change``,
``best_bid_ask``, ``last_trade_price``, ``tick_size_change``...) as single-object frames. Each
mode runs in its own process, pinned to one CPU, against a fresh migrated database:

* ``stream`` — polyfarm: ``MarketProtocol`` decoding, ``StreamIngest`` (live books, trade keys,
  rolling windows, whales, delta capture for the configured tiers), bounded queues, the
  ``Flusher`` and the COPY-based ``BulkWriter``; the hash checker runs at its default rate;
* ``baseline`` — the naive path: ``json.loads``, dict-of-``Decimal`` books, and ``executemany``
  INSERTs of the same trade and delta rows.

Three phases per mode: the snapshot load (timed apart); then frames as fast as the path takes
them with its writes keeping up (the backlog of queued rows is bounded), giving the sustained
messages/s; then the last ``--paced`` frames offered at ``--rate`` messages/s (25,000 = 2.5x the
whole venue), giving frame-to-committed-row latency p50/p99, counted from when each frame was
due, so a path that falls behind shows it. Then the process RSS with every live book held.
``--capture-all`` stores every ``price_change`` (default: the tiers of
``websocket.capture_delta_tiers``). ``--json`` puts one JSON object on the last line.

    python bench/stream.py [--markets 20000] [--messages 400000] [--capture-all] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from polyfarm.store.database import create_pool
from polyfarm.store.embedded import EmbeddedPostgres

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from stream_frames import START_S, frames, generate, utc  # noqa: E402

YIELD_EVERY = 32  # frames between turns of the event loop (the socket gives one per frame)
SOFT_BACKLOG = 20_000  # queued rows at which the unpaced phase waits for the writes
WIDTHS = (10, 9, 9, 8, 8)


# -- the polyfarm path --------------------------------------------------------------------------


def bench_catalog(layout: list[list[Any]], settings: Any) -> Any:
    """The catalogue the collector would hold for this world (tiers by hours to close)."""
    from dataclasses import replace

    from polyfarm.markets.catalog import MarketCatalog
    from polyfarm.polymarket.domain import MarketInfo, TokenInfo

    catalog = MarketCatalog(settings.tiers)
    for market_id, condition, yes, no, tier in layout:
        tokens = (
            TokenInfo(index=0, outcome="Yes", token_id=yes, price=None),
            TokenInfo(index=1, outcome="No", token_id=no, price=None),
        )
        info = MarketInfo(
            market_id=str(market_id), condition_id=condition, question="", tokens=tokens
        )
        catalog.add_announced(info, utc(START_S))
        catalog.markets[str(market_id)] = replace(catalog.markets[str(market_id)], tier=tier)
    return catalog


def build_stream(layout: list[list[Any]], pool: asyncpg.Pool, capture_all: bool) -> Any:
    from polyfarm.clock import utc_now
    from polyfarm.settings import Settings
    from polyfarm.store.disk import NoPressure
    from polyfarm.store.rows import BOOK_DELTAS, TRADES
    from polyfarm.store.writer import BulkWriter
    from polyfarm.stream.bookcheck import BookChecker
    from polyfarm.stream.counts import StreamCounts
    from polyfarm.stream.fills import FillMemory, WhaleLog
    from polyfarm.stream.ingest import StreamIngest
    from polyfarm.stream.sink import Flusher, WriteQueue

    settings = Settings()
    catalog = bench_catalog(layout, settings)
    books: dict[str, Any] = {}
    counts = StreamCounts()
    dropped: list[str] = []  # markets of the delta rows dropped (a full queue)
    checker = BookChecker(books, None, settings.websocket, counts)  # type: ignore[arg-type]
    trades = WriteQueue(TRADES, settings.websocket.queue_rows)
    deltas = WriteQueue(BOOK_DELTAS, settings.websocket.queue_rows)
    writer = BulkWriter(pool)
    interval = settings.websocket.flush_interval_s
    flusher = Flusher(writer, [trades, deltas], interval_s=interval, batch_rows=2_000)
    activity: dict[str, Any] = {}
    whales = WhaleLog(pool=pool, clock=utc_now, books=books, activity=activity)
    fills = FillMemory(
        activity=activity,
        whales=whales,
        whale_thresholds=settings.whales.thresholds(),
        whale_feature_tier=2,
    )
    ingest = StreamIngest(
        catalog=catalog,
        books=books,
        activity=activity,
        fills=fills,
        trades=trades,
        deltas=deltas,
        flusher=flusher,
        checker=checker,
        submit_gap=lambda gap: None,
        disk=NoPressure(),
        counts=counts,
        drop_deltas=lambda market, ts: dropped.append(market),
    )
    capture = set(range(5)) if capture_all else set(settings.websocket.capture_delta_tiers)
    captured = {}
    for market_id, condition, yes, no, tier in layout:
        for token in (yes, no):
            ingest.track(token, condition)
            if tier in capture:
                captured[token] = str(market_id)
    ingest.set_capture(captured)
    return ingest, flusher, checker, settings, dropped


async def run_stream(
    path: Path, layout: list[list[Any]], dsn: str, capture_all: bool, paced: int, rate: float
) -> dict[str, Any]:
    from datetime import UTC, datetime

    from polyfarm.polymarket.domain import Counters
    from polyfarm.polymarket.ws_protocol import MarketProtocol
    from polyfarm.stream.connection import Watermark
    from polyfarm.stream.housekeeping import freeze_long_lived

    pool = await create_pool(dsn, min_size=2, max_size=4)
    ingest, flusher, checker, settings, dropped = build_stream(layout, pool, capture_all)
    protocol = MarketProtocol([], ping_interval_s=10.0, counters=Counters())
    mark = Watermark()

    async def handle(frame: bytes, stamp: float) -> int:
        result = protocol.receive(frame, received_at=datetime.now(UTC), now=stamp)
        for message in result.messages:
            ingest.handle(message, stamp, mark)
        return len(result.messages)

    async def backlog() -> int:
        return len(ingest.trades) + len(ingest.deltas)

    intake_done, stop = asyncio.Event(), asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(flusher.run(intake_done))
        group.create_task(_verify_loop(checker, settings, stop))
        report = await drive(
            path, handle, backlog, flusher.latencies, paced, rate, freeze_long_lived
        )
        intake_done.set()
        stop.set()
    report.update(
        rss_mb=round(psutil.Process().memory_info().rss / 2**20),
        live_books=sum(1 for b in ingest.books.values() if b.ready),
        dropped_rows=len(dropped),
        captured_tokens=len(ingest.capture),
    )
    await pool.close()
    return report


async def _verify_loop(checker: Any, settings: Any, stop: asyncio.Event) -> None:
    per_tick = int(settings.websocket.hash_checks_per_s / 10)
    while not stop.is_set():
        checker.verify_some(per_tick)
        await asyncio.sleep(0.1)


async def drive(
    path: Path,
    handle: Callable[[bytes, float], Awaitable[int]],
    backlog: Callable[[], Awaitable[int]],
    latencies: Any,
    paced: int,
    rate: float,
    freeze: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Snapshots, then as fast as the writes keep up (bounded backlog), then ``paced``
    frames at ``rate`` messages/s for the latency figures. Frames are read as they go."""
    total = sum(1 for _, phase in frames(path, skip=True) if phase == 0)
    source = frames(path)
    began = time.perf_counter()
    snapshots = 0
    first = next(source)
    while first[1] == 1:
        snapshots += await handle(first[0], time.perf_counter())
        first = next(source)
    loaded = time.perf_counter()
    freeze()  # what the stream does once its first snapshots are in
    fast = await _fast(chain([first], source), total - paced, handle, backlog)
    fast_done = time.perf_counter()
    latencies.clear()
    slow = await _paced(source, handle, backlog, rate)
    return {
        "snapshot_books": snapshots,
        "snapshot_load_s": round(loaded - began, 2),
        "messages": fast,
        "msgs_per_s": round(fast / (fast_done - loaded)),
        "paced_messages": slow,
        "paced_rate": rate,
        "latency_ms_p50": round(latencies.percentile(0.5) * 1000, 1),
        "latency_ms_p99": round(latencies.percentile(0.99) * 1000, 1),
    }


async def _fast(
    source: Iterator[tuple[bytes, int]],
    count: int,
    handle: Callable[[bytes, float], Awaitable[int]],
    backlog: Callable[[], Awaitable[int]],
) -> int:
    done = 0
    for index, (frame, _) in enumerate(islice(source, count)):
        done += await handle(frame, time.perf_counter())
        if index % YIELD_EVERY == 0:
            await asyncio.sleep(0)
            while await backlog() > SOFT_BACKLOG:  # noqa: ASYNC110 - the writes set the pace
                await asyncio.sleep(0.001)
    await _drained(backlog)
    return done


async def _drained(backlog: Callable[[], Awaitable[int]]) -> None:
    """Until every queued row is committed (the flusher runs in another task)."""
    while await backlog():  # noqa: ASYNC110 - polls a length another task brings down
        await asyncio.sleep(0.001)


async def _paced(
    source: Iterator[tuple[bytes, int]],
    handle: Callable[[bytes, float], Awaitable[int]],
    backlog: Callable[[], Awaitable[int]],
    rate: float,
) -> int:
    done, start = 0, time.perf_counter()
    for index, (frame, _) in enumerate(source):
        due = start + done / rate  # when the venue would have sent it: latency counts from
        ahead = due - time.perf_counter()  # here, so falling behind shows (no coordinated
        if ahead > 0:  # omission)
            await asyncio.sleep(ahead)
        elif index % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # behind schedule: still let the writes run
        done += await handle(frame, due)
    await _drained(backlog)
    return done


# -- the naive baseline ---------------------------------------------------------------------------


async def run_baseline(
    path: Path, layout: list[list[Any]], dsn: str, capture_all: bool, paced: int, rate: float
) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH_DIR))
    from baseline_stream import NaiveRecorder

    conn = await asyncpg.connect(dsn)
    recorder = NaiveRecorder(conn, layout, capture_all)
    await recorder.register()

    async def handle(frame: bytes, stamp: float) -> int:
        return await recorder.handle(frame, stamp)

    async def backlog() -> int:  # it writes inline, every 500 rows; flush the remainder
        if recorder.stamps and time.perf_counter() - recorder.stamps[0] > 0.2:
            await recorder.flush()
        return len(recorder.stamps)

    report = await drive(path, handle, backlog, recorder, paced, rate)
    await conn.close()
    report.update(
        rss_mb=round(psutil.Process().memory_info().rss / 2**20), live_books=len(recorder.books)
    )
    return report


# -- orchestration ------------------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    """One measurement in this (pinned) process; prints one JSON line."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    layout = json.loads(Path(args.layout).read_text())
    runner = run_stream if args.mode == "stream" else run_baseline
    result = asyncio.run(
        runner(Path(args.frames), layout, args.target_dsn, args.capture_all, args.paced, args.rate)
    )
    print(json.dumps(result))


def spawn(mode: str, work: Path, dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--mode", mode, "--target-dsn", dsn]
    command += ["--frames", str(work / "frames.bin"), "--layout", str(work / "layout.json")]
    command += ["--paced", str(args.paced), "--rate", str(args.rate)]
    if args.capture_all:
        command.append("--capture-all")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def measure(
    admin_dsn: str, mode: str, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH_DIR))
    from scratch_db import drop_database, fresh_database  # the same fresh, migrated database

    dsn = await fresh_database(admin_dsn, "bench", utc(START_S))
    try:
        return spawn(mode, work, dsn, args)
    finally:
        await drop_database(admin_dsn, dsn)


def print_table(result: dict[str, Any]) -> None:
    stream, base = result["stream"], result["baseline"]
    columns = ("msgs_per_s", "latency_ms_p50", "latency_ms_p99", "rss_mb", "live_books")
    print(f"{'path':<10}{'msgs/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'RSS MB':>8}{'books':>8}")
    for name, row in (("polyfarm", stream), ("naive", base)):
        print(
            f"{name:<10}" + "".join(f"{row[c]:>{w},}" for c, w in zip(columns, WIDTHS, strict=True))
        )
    better = (
        stream["msgs_per_s"] / base["msgs_per_s"],
        base["latency_ms_p50"] / stream["latency_ms_p50"],
        base["latency_ms_p99"] / stream["latency_ms_p99"],
        base["rss_mb"] / stream["rss_mb"],
    )
    ratios = "".join(f"{r:>{w - 1}.1f}x" for r, w in zip(better, WIDTHS[:4], strict=True))
    print(f"{'polyfarm':<10}{ratios}   better than naive (x times)")


async def orchestrate(args: argparse.Namespace, admin_dsn: str, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    layout = generate(work / "frames.bin", args.markets, args.messages, args.seed)
    (work / "layout.json").write_text(json.dumps(layout["markets"]))
    took = time.perf_counter() - started
    print(f"  {layout['messages']:,} frames generated in {took:.1f} s", file=sys.stderr)
    stream = await measure(admin_dsn, "stream", work, args)
    baseline = await measure(admin_dsn, "baseline", work, args)
    return {
        "markets": args.markets,
        "capture_all": args.capture_all,
        "stream": stream,
        "baseline": baseline,
        "msgs_per_s": stream["msgs_per_s"],
        "latency_ms_p50": stream["latency_ms_p50"],
        "latency_ms_p99": stream["latency_ms_p99"],
        "rss_mb": stream["rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--capture-all", action="store_true", help="store every price_change")
    parser.add_argument("--paced", type=int, default=100_000, help="messages for the latency run")
    parser.add_argument("--rate", type=float, default=25_000, help="latency run, messages/s")
    parser.add_argument("--dsn", help="admin DSN of a server to use instead of the embedded one")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--mode", choices=("stream", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--frames", help=argparse.SUPPRESS)
    parser.add_argument("--layout", help=argparse.SUPPRESS)
    parser.add_argument("--target-dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="polyfarm-bench-stream-"))
    server = None if args.dsn else EmbeddedPostgres(work / "db")
    try:
        if server is not None:
            server.start()
        admin = args.dsn or server.dsn("postgres")  # type: ignore[union-attr]
        result = asyncio.run(orchestrate(args, admin, work))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_table(result)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
