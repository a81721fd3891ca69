"""The stall watch notices a loop held by a blocking call, says where, and counts it."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from polyfarm.loopwatch import LoopWatch
from polyfarm.metrics import Metrics


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # what a long synchronous walk does to every other task


async def test_a_blocked_loop_is_reported_with_its_stack_and_counted() -> None:
    metrics = Metrics(CollectorRegistry())
    watch = LoopWatch(threshold_s=0.3, metrics=metrics)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(watch.run(stop))
        await asyncio.sleep(0.3)
        hold_the_loop(1.0)
        await asyncio.sleep(0.4)  # the beat comes back, the watcher sees it
        stop.set()
        await task
    stalled = [e for e in logs if e["event"] == "event loop stalled"]
    resumed = [e for e in logs if e["event"] == "event loop ran again"]
    assert len(stalled) == 1
    assert any("hold_the_loop" in frame for frame in stalled[0]["stack"])
    assert len(resumed) == 1
    assert 0.9 <= resumed[0]["stalled_s"] < 2.0
    assert watch.counts.stalls == 1
    assert metrics.registry.get_sample_value("polyfarm_event_loop_stalls_total") == 1


async def test_a_loop_that_keeps_running_is_never_reported() -> None:
    watch = LoopWatch(threshold_s=0.3)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(watch.run(stop))
        for _ in range(10):
            hold_the_loop(0.1)  # short holds, each well under the threshold
            await asyncio.sleep(0.01)
        stop.set()
        await task
    assert not [e for e in logs if e["event"].startswith("event loop")]
    assert watch.counts.stalls == 0
