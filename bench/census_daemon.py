"""Run ``polyfarm`` with a memory census, to find what grows in a long run.

    python bench/census_daemon.py CENSUS_FILE MINUTES collect [polyfarm arguments…]

A background thread writes one JSON line to ``CENSUS_FILE`` every ``MINUTES``: the process's
RSS, the number of objects the cyclic collector tracks outside the frozen heap (the daemon
freezes its long-lived heap once the books are in, so what is counted is what came after), the
thirty most numerous types among them, and pymalloc's arena figures (allocated against in use:
a heap that grows in arenas but not in blocks is fragmentation, not a leak). Strings, bytes and
numbers are not tracked by the collector; their containers are.

The census runs in the event loop's own thread, between two callbacks (the thread only asks
for it, ``call_soon_threadsafe``): ``gc.get_objects`` from another thread (or a signal handler)
can take a reference to a tuple that ``tuple(generator)`` is still growing, and CPython then
fails that tuple's resize with "SystemError: bad argument to internal function" in the
daemon's own code. Between callbacks no such construction is under way.

This is a diagnostic for ``bench/footprint.py --census-minutes``; the daemon runs unchanged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import io
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from contextlib import redirect_stderr

import psutil

TOP_TYPES = 30


def arena_figures() -> dict[str, int]:
    """pymalloc's own account (``sys._debugmallocstats`` writes to the C stderr, so it is read
    through a pipe on fd 2)."""
    read_fd, write_fd = os.pipe()
    saved = os.dup(2)
    try:
        os.dup2(write_fd, 2)
        with redirect_stderr(io.StringIO()):
            sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        text = pipe.read().decode(errors="replace")
    wanted = {
        "arenas_allocated_current": r"# arenas allocated current\s*=\s*([\d,]+)",
        "arenas_highwater": r"# arenas highwater mark\s*=\s*([\d,]+)",
        "bytes_in_allocated_blocks": r"# bytes in allocated blocks\s*=\s*([\d,]+)",
        "bytes_in_available_blocks": r"# bytes in available blocks\s*=\s*([\d,]+)",
        "bytes_in_unused_pools": r"\d+ unused pools \* \d+ bytes\s*=\s*([\d,]+)",
    }
    figures = {}
    for key, pattern in wanted.items():
        match = re.search(pattern, text)
        if match:
            figures[key] = int(match.group(1).replace(",", ""))
    return figures


def census(started: float) -> dict[str, object]:
    objects = gc.get_objects()
    types = Counter(type(obj).__qualname__ for obj in objects)
    count = len(objects)
    del objects
    return {
        "minute": round((time.monotonic() - started) / 60, 1),
        "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "frozen": gc.get_freeze_count(),
        "tracked": count,
        "types": dict(types.most_common(TOP_TYPES)),
        "pymalloc": arena_figures(),
    }


class LoopSeen:
    """The first event loop that runs (the daemon's), recorded by a wrapped ``run_forever``."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        original = asyncio.BaseEventLoop.run_forever

        def run_forever(loop: asyncio.BaseEventLoop) -> None:
            if self.loop is None:
                self.loop = loop
            original(loop)

        asyncio.BaseEventLoop.run_forever = run_forever  # type: ignore[method-assign,assignment]


def census_in_loop(seen: LoopSeen, started: float) -> dict[str, object] | None:
    loop = seen.loop
    if loop is None or loop.is_closed():
        return None
    done: concurrent.futures.Future[dict[str, object]] = concurrent.futures.Future()

    def take() -> None:
        try:
            done.set_result(census(started))
        except Exception as exc:  # reported in the census file, not in the daemon
            done.set_exception(exc)

    loop.call_soon_threadsafe(take)
    return done.result(timeout=300)


def keep_counting(path: str, every_s: float, seen: LoopSeen) -> None:
    started = time.monotonic()
    with open(path, "a", encoding="utf-8") as out:
        while True:
            time.sleep(every_s)
            try:
                line = census_in_loop(seen, started)
            except Exception as exc:
                line = {"error": repr(exc)}
            if line is not None:
                out.write(json.dumps(line) + "\n")
                out.flush()


def main() -> None:
    path, minutes, *arguments = sys.argv[1:]
    seen = LoopSeen()
    threading.Thread(
        target=keep_counting, args=(path, float(minutes) * 60, seen), name="census", daemon=True
    ).start()
    sys.argv = ["polyfarm", *arguments]
    from polyfarm.cli import main as polyfarm_main

    polyfarm_main()


if __name__ == "__main__":
    main()
