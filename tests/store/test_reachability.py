"""``polyfarm_database_up``: the collector's probe says 1 while its database answers, 0 when not."""

from __future__ import annotations

import asyncio

import asyncpg

from polyfarm.metrics import Metrics
from polyfarm.store.reachability import DatabaseProbe, database_answers

from ..support import free_port


async def probed(pool: asyncpg.Pool, before: float) -> float | None:
    """The gauge after the probe ran a few times, starting from ``before``."""
    metrics, stop = Metrics(), asyncio.Event()
    metrics.database_up.set(before)
    task = asyncio.create_task(DatabaseProbe(pool, metrics, 0.05, timeout_s=2.0).run(stop))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 5)
    return metrics.registry.get_sample_value("polyfarm_database_up")


async def test_the_probe_sets_up_while_the_database_answers(pool: asyncpg.Pool) -> None:
    assert await database_answers(pool)
    assert await probed(pool, before=0.0) == 1.0


async def test_a_database_that_is_away_is_down_not_an_error() -> None:
    # min_size=0: the pool opens without a server, as the daemon's does before an outage.
    away = await asyncpg.create_pool(
        f"postgresql://postgres@127.0.0.1:{free_port()}/polyfarm", min_size=0, max_size=1
    )
    try:
        assert not await database_answers(away, timeout_s=2.0)
        assert await probed(away, before=1.0) == 0.0
    finally:
        await away.close()
