from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import asyncpg

from polyfarm.store.dimensions import (
    ResolutionRecord,
    record_resolutions,
    update_tiers,
    upsert_events,
    upsert_markets,
    upsert_tokens,
)

from .factories import T0, event_record, market_record, token_records


async def test_dimensions_round_trip_and_upsert_in_place(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await upsert_events(conn, [event_record("9")]) == 1
        assert await upsert_markets(conn, [market_record("100"), market_record("101")]) == 2
        assert await upsert_tokens(conn, token_records("100") + token_records("101")) == 4
        first_seen = await conn.fetchval("SELECT first_seen FROM markets WHERE market_id='100'")
        await asyncio.sleep(0.01)
        changed = market_record("100")._replace(question="Edited?", closed=True, tier=None)
        assert await upsert_markets(conn, [changed]) == 1
        row = await conn.fetchrow("SELECT * FROM markets WHERE market_id = '100'")
        outcomes = await conn.fetch(
            "SELECT outcome, outcome_index FROM tokens WHERE market_id='101' ORDER BY 2"
        )
    assert row["question"] == "Edited?"
    assert row["closed"] is True
    assert row["tier"] is None
    assert row["first_seen"] == first_seen
    assert row["updated_at"] > first_seen
    assert row["outcomes"] == ["Yes", "No"]
    assert row["raw"] == {"id": "100"}
    assert row["end_date"] == market_record().end_date
    assert [(r["outcome"], r["outcome_index"]) for r in outcomes] == [("Yes", 0), ("No", 1)]


async def test_market_with_unknown_event_is_kept_without_the_link(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await upsert_markets(conn, [market_record("100", event_id="does-not-exist")])
        event_id = await conn.fetchval("SELECT event_id FROM markets WHERE market_id='100'")
        count = await conn.fetchval("SELECT count(*) FROM markets")
    assert (count, event_id) == (1, None)


async def test_tokens_of_unknown_markets_are_skipped_not_fatal(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await upsert_markets(conn, [market_record("100", event_id=None)])
        stored = await upsert_tokens(conn, token_records("100") + token_records("555"))
    assert stored == 2


async def test_resolution_is_kept_once_known(pool: asyncpg.Pool) -> None:
    base = ResolutionRecord(
        "100", "0x" + "0" * 61 + "100", T0, "unknown", None, None, None, "final_prices", "gamma"
    )
    winner = base._replace(
        outcome_kind="winner",
        winning_outcome="Yes",
        winning_token_id="1",
        final_prices=json.dumps({"Yes": 1.0, "No": 0.0}),
    )
    late_other = winner._replace(winning_outcome="No", method="ws_market_resolved")
    async with pool.acquire() as conn:
        await upsert_markets(conn, [market_record("100", event_id=None)])
        assert await record_resolutions(conn, [base]) == 1
        assert await record_resolutions(conn, [winner]) == 1
        assert await record_resolutions(conn, [late_other]) == 0
        row = await conn.fetchrow("SELECT * FROM market_resolutions")
    assert row["outcome_kind"] == "winner"
    assert row["winning_outcome"] == "Yes"
    assert row["final_prices"] == {"Yes": 1.0, "No": 0.0}


async def test_update_tiers_touches_only_changes(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await upsert_markets(conn, [market_record("100", None), market_record("101", None)])
        await update_tiers(conn, [("100", 4), ("101", 1)])
        tiers = dict(await conn.fetch("SELECT market_id, tier FROM markets ORDER BY 1"))
    assert tiers == {"100": 4, "101": 1}


async def test_an_older_observation_never_replaces_a_newer_one(pool: asyncpg.Pool) -> None:
    """Two collectors: one's slow scan, read before the other closed the market, finishes
    after it and must not open the market again (nor undo an event's change)."""
    newer = T0 + timedelta(minutes=5)
    async with pool.acquire() as conn:
        await upsert_events(conn, [event_record("9")._replace(title="New", observed_at=newer)])
        closed = market_record("100")._replace(closed=True, observed_at=newer)
        await upsert_markets(conn, [closed])
        stale_market = market_record("100")._replace(closed=False, question="Stale?")
        assert await upsert_markets(conn, [stale_market]) == 0
        assert await upsert_events(conn, [event_record("9")._replace(title="Stale")]) == 0
        market = await conn.fetchrow("SELECT * FROM markets WHERE market_id = '100'")
        title = await conn.fetchval("SELECT title FROM events WHERE event_id = '9'")
        later = closed._replace(question="Later", observed_at=newer + timedelta(minutes=1))
        assert await upsert_markets(conn, [later]) == 1
    assert (market["closed"], market["observed_at"], title) == (True, newer, "New")
