"""The chosen markets' rows (events, markets, tokens), stored as the metadata scan stores them,
so that a backfill into a database no collector has filled still joins to its markets: their
questions, slugs and outcomes.

A market whose event Gamma does not return is stored without its event (the column is a
reference to ``events``); the collector's next scan fills it in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import asyncpg
import msgspec

from polyfarm.markets.records import event_record, market_record, token_records
from polyfarm.polymarket.domain import EventInfo, MarketInfo
from polyfarm.polymarket.gamma import EVENTS_PAGE_MAX, GammaClient
from polyfarm.settings import TierSettings
from polyfarm.store.dimensions import upsert_events, upsert_markets, upsert_tokens

EVENTS_PER_REQUEST = 100


async def store_dimensions(
    gamma: GammaClient,
    pool: asyncpg.Pool,
    markets: Sequence[MarketInfo],
    now: datetime,
    tiers: TierSettings,
) -> int:
    """Upsert the markets' events, the markets and their tokens; returns the rows written."""
    events = [e async for e in _events(gamma, sorted({m.event_id for m in markets if m.event_id}))]
    known = {e.event_id for e in events}
    categories = {e.event_id: e.tags[0].label for e in events if e.tags and e.tags[0].label}
    rows = [
        m if m.event_id in known else msgspec.structs.replace(m, event_id=None) for m in markets
    ]
    async with pool.acquire() as conn:
        written = await upsert_events(conn, [event_record(e, now) for e in events])
        written += await upsert_markets(
            conn, [market_record(m, now, tiers, categories) for m in rows]
        )
        return written + await upsert_tokens(conn, [t for m in rows for t in token_records(m)])


async def _events(gamma: GammaClient, event_ids: Sequence[str]) -> AsyncIterator[EventInfo]:
    """The events, open and closed (Gamma lists only open ones unless asked)."""
    seen: set[str] = set()
    for i in range(0, len(event_ids), EVENTS_PER_REQUEST):
        chunk: dict[str, object] = {"id": list(event_ids[i : i + EVENTS_PER_REQUEST])}
        for closed in (False, True):
            async for page in gamma.iter_events_keyset(
                limit=EVENTS_PAGE_MAX, closed=closed, **chunk
            ):
                for event in page.items:
                    if event.event_id not in seen:
                        seen.add(event.event_id)
                        yield event
