from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from polyfarm.backoff import Backoff
from polyfarm.runtime import CycleResult, Job, Service, Supervisor, run_until_stopped


def fast_backoff() -> Backoff:
    return Backoff(base_s=0.01, max_s=0.05)


@dataclass(frozen=True)
class RecordingBackoff(Backoff):
    """The supervisor's retry waits, as it asked for them."""

    waits: list[float] = field(default_factory=list)

    def delay(self, attempt: int, jitter: float) -> float:
        wait = super().delay(attempt, jitter)
        self.waits.append(wait)
        return wait


async def test_a_failing_job_is_retried_and_never_stops_the_others(pool: asyncpg.Pool) -> None:
    calls = {"flaky": 0, "steady": 0}

    async def flaky() -> CycleResult:
        calls["flaky"] += 1
        if calls["flaky"] <= 2:
            raise RuntimeError(f"boom {calls['flaky']}")
        return CycleResult(markets=3, rows=6)

    async def steady() -> CycleResult:
        calls["steady"] += 1
        return CycleResult(markets=1, rows=1)

    stop = asyncio.Event()
    supervisor = Supervisor(
        pool,
        [Job("flaky", 0.05, flaky), Job("steady", 0.05, steady)],
        backoff=fast_backoff(),
        health_interval_s=0.05,
    )
    task = asyncio.create_task(run_until_stopped(supervisor, stop, deadline_s=5))
    for _ in range(200):
        await asyncio.sleep(0.02)
        if calls["flaky"] >= 4 and calls["steady"] >= 4:
            break
    stop.set()
    await task
    runs = await pool.fetch("SELECT task_name, status, error_message FROM task_runs ORDER BY id")
    health = {r["collector"]: r for r in await pool.fetch("SELECT * FROM collector_health")}
    flaky_runs = [r for r in runs if r["task_name"] == "flaky"]
    assert [r["status"] for r in flaky_runs[:3]] == ["failed", "failed", "success"]
    assert "boom 1" in flaky_runs[0]["error_message"]
    assert all(r["status"] == "success" for r in runs if r["task_name"] == "steady")
    assert health["flaky"]["consecutive_failures"] == 0
    assert supervisor.state["flaky"].failures == 2
    assert supervisor.state["steady"].rows == calls["steady"]


async def test_a_crashing_service_is_restarted_after_waits_that_grow(pool: asyncpg.Pool) -> None:
    starts = 0

    async def stream(stop: asyncio.Event) -> None:
        nonlocal starts
        starts += 1
        if starts <= 4:
            raise ConnectionError("socket dropped")
        await stop.wait()

    stop = asyncio.Event()
    backoff = RecordingBackoff(base_s=0.01, max_s=0.04)
    services = [Service("stream", stream)]
    supervisor = Supervisor(pool, [], services, backoff=backoff, jitter=lambda: 0.0)
    task = asyncio.create_task(run_until_stopped(supervisor, stop, deadline_s=5))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if starts >= 5:
            break
    stop.set()
    await task
    assert starts == 5
    assert supervisor.restarts["stream"] == 4
    # Half of each step for certain (jitter 0): the step doubles per crash, up to max_s.
    assert backoff.waits == [0.005, 0.01, 0.02, 0.02]


async def test_a_failing_job_retries_after_waits_that_grow(pool: asyncpg.Pool) -> None:
    calls = 0

    async def flaky() -> CycleResult:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise RuntimeError(f"boom {calls}")
        return CycleResult(rows=1)

    backoff = RecordingBackoff(base_s=0.01, max_s=1.0)
    supervisor = Supervisor(pool, [Job("flaky", 60, flaky)], backoff=backoff, jitter=lambda: 0.0)
    stop = asyncio.Event()
    task = asyncio.create_task(run_until_stopped(supervisor, stop, deadline_s=5))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if calls >= 4:
            break
    stop.set()
    await task
    assert calls == 4
    assert backoff.waits == [0.005, 0.01, 0.02]  # then a success: back to its interval


async def test_shutdown_lets_a_cycle_finish_within_the_deadline(pool: asyncpg.Pool) -> None:
    finished = asyncio.Event()
    started = asyncio.Event()

    async def slow() -> CycleResult:
        started.set()
        await asyncio.sleep(0.2)
        finished.set()
        return CycleResult(rows=1)

    stop = asyncio.Event()
    supervisor = Supervisor(pool, [Job("slow", 60, slow)], backoff=fast_backoff())
    task = asyncio.create_task(run_until_stopped(supervisor, stop, deadline_s=5))
    await started.wait()
    stop.set()
    await task
    assert finished.is_set()
    assert await pool.fetchval("SELECT status FROM task_runs") == "success"


async def test_shutdown_deadline_cancels_a_stuck_cycle(pool: asyncpg.Pool) -> None:
    started = asyncio.Event()

    async def stuck() -> CycleResult:
        started.set()
        await asyncio.sleep(3600)
        return CycleResult()

    stop = asyncio.Event()
    supervisor = Supervisor(pool, [Job("stuck", 60, stuck)], backoff=fast_backoff())
    task = asyncio.create_task(run_until_stopped(supervisor, stop, deadline_s=0.2))
    await started.wait()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await pool.fetchval("SELECT status FROM task_runs") == "cancelled"


async def test_an_elected_job_runs_in_one_instance_per_slot_and_fails_over(
    pool: asyncpg.Pool,
) -> None:
    """Two collectors on one database: the elected job runs once a slot, always in the holder;
    once the holder stops, the other takes it over within the lease's grace."""
    interval_s = 1.0
    ran: list[str] = []

    def job_of(instance: str) -> Job:
        async def maintenance() -> CycleResult:
            ran.append(instance)
            return CycleResult()

        return Job("maintenance", interval_s, maintenance, elected=True)

    stops = {name: asyncio.Event() for name in "ab"}
    supervisors = {
        name: Supervisor(pool, [job_of(name)], backoff=fast_backoff(), instance=name)
        for name in "ab"
    }
    tasks = {
        name: asyncio.create_task(run_until_stopped(supervisors[name], stops[name], 5))
        for name in "ab"
    }
    await asyncio.sleep(4 * interval_s)
    holder = ran[0]
    other = "b" if holder == "a" else "a"
    assert set(ran) == {holder}, ran
    assert supervisors[other].state["maintenance"].standby >= 2
    stops[holder].set()
    await tasks[holder]
    await asyncio.sleep(3 * interval_s)
    stops[other].set()
    await tasks[other]
    runs = await pool.fetch(
        "SELECT instance, started_at FROM task_runs WHERE task_name = 'maintenance' "
        "ORDER BY started_at"
    )
    slots = [int(r["started_at"].timestamp() // interval_s) for r in runs]
    assert len(slots) == len(set(slots)), "two runs in one slot"
    assert [r["instance"] for r in runs] == ran
    assert ran[-1] == other, "the other instance never took over"
