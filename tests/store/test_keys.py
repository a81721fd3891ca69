"""Token ids get one sid each, once, whoever asks first (polyfarm.store.keys)."""

from __future__ import annotations

import asyncio

import asyncpg

from polyfarm.store.keys import TokenKeys

from .factories import T0, token


def records(numbers: range, market: str = "100") -> list[tuple[object, ...]]:
    """Public-row-shaped records: ts, token_id, market_id, ..."""
    return [(T0, token(n), market, 0.5) for n in numbers]


async def registry(pool: asyncpg.Pool) -> dict[str, tuple[int, str]]:
    rows = await pool.fetch("SELECT token_id, token_sid, market_id FROM token_keys")
    return {r["token_id"]: (r["token_sid"], r["market_id"]) for r in rows}


async def test_new_tokens_are_registered_and_known_ones_need_no_round_trip(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    keys = TokenKeys()
    first = dict(await keys.resolve(pool, records(range(5))))
    stored = await registry(pool)
    assert first == {t: sid for t, (sid, _) in stored.items()}
    assert {market for _, market in stored.values()} == {"100"}
    assert len(set(first.values())) == 5
    closed = await asyncpg.create_pool(db_dsn, min_size=1, max_size=1)
    await closed.close()  # any use of this pool fails
    again = await keys.resolve(closed, records(range(5)))
    assert {t: again[t] for t in first} == first


async def test_a_second_process_gets_the_same_sids(pool: asyncpg.Pool) -> None:
    one, other = TokenKeys(), TokenKeys()
    a = dict(await one.resolve(pool, records(range(0, 300))))
    b = dict(await other.resolve(pool, records(range(200, 400), market="200")))
    assert {t: a[t] for t in a if t in b} == {t: b[t] for t in a if t in b}
    stored = await registry(pool)
    assert len(stored) == 400
    assert stored[token(250)][1] == "100"  # the first market id registered stays


async def test_concurrent_registrations_of_overlapping_tokens_agree(pool: asyncpg.Pool) -> None:
    caches = [TokenKeys() for _ in range(4)]
    batches = [records(range(i * 50, i * 50 + 400)) for i in range(4)]
    found = await asyncio.gather(
        *(cache.resolve(pool, batch) for cache, batch in zip(caches, batches, strict=True))
    )
    stored = await registry(pool)
    assert len(stored) == 550
    for mapping, batch in zip(found, batches, strict=True):
        assert all(mapping[r[1]] == stored[r[1]][0] for r in batch)  # type: ignore[index]


async def test_the_cache_stays_bounded_and_a_batch_keeps_its_sids(pool: asyncpg.Pool) -> None:
    keys = TokenKeys(capacity=100)
    batch = records(range(250))
    mapping = await keys.resolve(pool, batch)
    assert all(r[1] in mapping for r in batch)
    assert len(keys) <= 100
    stored = await registry(pool)
    assert all(mapping[r[1]] == stored[r[1]][0] for r in batch)  # type: ignore[index]
    later_batch = records(range(240, 300))
    later = await keys.resolve(pool, later_batch)
    stored = await registry(pool)
    assert all(later[r[1]] == stored[r[1]][0] for r in later_batch)  # type: ignore[index]
    assert len(keys) <= 100
