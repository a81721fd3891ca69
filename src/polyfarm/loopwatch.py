"""Event-loop stall watch: a thread that notices when the asyncio loop has not run for a while
and says what it was doing.

Everything the daemon does shares one event loop, and the venue closes a WebSocket whose
client misses its PINGs; a callback that holds the loop for seconds therefore costs every
socket and opens a gap on every market. A stall cannot be seen from inside the loop while it
lasts, so a daemon thread watches a beat the loop sets every ``BEAT_S``: past
``threshold_s`` without a beat it logs a warning with the loop thread's current stack (once
per stall), and when the beat comes back it logs how long the stall lasted. The longest stall
and the count are exported as metrics.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

from polyfarm.aio import sleep_unless
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics

log = get_logger(__name__)

BEAT_S = 0.1
STACK_FRAMES = 12


def thread_stack(thread_id: int, limit: int = STACK_FRAMES) -> list[str]:
    """The innermost ``limit`` frames of a running thread, one ``file:line function`` each."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return []
    frames = traceback.extract_stack(frame)[-limit:]
    return [f"{f.filename}:{f.lineno} {f.name}" for f in frames]


@dataclass
class StallCounts:
    stalls: int = 0
    longest_s: float = 0.0


@dataclass
class LoopWatch:
    """``run`` beats on the loop; the watcher thread lives as long as ``run`` does."""

    threshold_s: float = 1.0
    metrics: Metrics | None = None
    counts: StallCounts = field(default_factory=StallCounts)
    _beat: float = field(default_factory=time.monotonic)
    _loop_thread: int = 0
    _done: threading.Event = field(default_factory=threading.Event)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._done.clear()
        watcher = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        watcher.start()
        try:
            while not stop.is_set():
                self._beat = time.monotonic()
                await sleep_unless(stop, BEAT_S)
        finally:
            self._done.set()
            await asyncio.to_thread(watcher.join)

    def _watch(self) -> None:
        stalled_since: float | None = None
        while not self._done.wait(self.threshold_s / 4):
            beat = self._beat
            age = time.monotonic() - beat
            if age > self.threshold_s and stalled_since != beat:
                stalled_since = beat
                log.warning(
                    "event loop stalled",
                    stalled_s=round(age, 2),
                    stack=thread_stack(self._loop_thread),
                )
            elif stalled_since is not None and beat != stalled_since:
                self._record(beat - stalled_since)
                stalled_since = None

    def _record(self, lasted_s: float) -> None:
        self.counts.stalls += 1
        self.counts.longest_s = max(self.counts.longest_s, lasted_s)
        log.warning("event loop ran again", stalled_s=round(lasted_s, 2))
        if self.metrics is not None:
            self.metrics.loop_stalls.inc()
            self.metrics.loop_stall_seconds.observe(lasted_s)
