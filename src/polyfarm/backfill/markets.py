"""Which markets a backfill covers: chosen by id, slug, event, tag, "all open" or "resolved
since", and read from Gamma (docs/polymarket-wire.md §2).

Gamma's list endpoints leave closed markets out unless asked (``closed`` defaults to false), so
a choice by id, slug or event asks for both states.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from polyfarm.polymarket.domain import MarketInfo
from polyfarm.polymarket.gamma import EVENTS_PAGE_MAX, MARKETS_PAGE_MAX, GammaClient

BOTH_STATES = (False, True)


@dataclass(frozen=True)
class Subject:
    """A market as the backfill needs it: ids, and when it could have traded."""

    market_id: str
    condition_id: str
    token_ids: tuple[str, ...]
    born_s: int | None
    closed_s: int | None


@dataclass(frozen=True)
class Selection:
    """Markets wanted; every criterion given adds its markets."""

    market_ids: tuple[str, ...] = ()
    slugs: tuple[str, ...] = ()
    events: tuple[str, ...] = ()  # event ids or slugs
    tags: tuple[str, ...] = ()  # tag ids: their open markets
    all_open: bool = False
    resolved_since: datetime | None = None

    @property
    def empty(self) -> bool:
        chosen = (self.market_ids, self.slugs, self.events, self.tags, self.all_open)
        return not any(chosen) and self.resolved_since is None


def subject_of(market: MarketInfo) -> Subject | None:
    """None for a market without trading ids (nothing to ask the venue about)."""
    if not market.token_ids:
        return None
    born = market.created_at or market.start_date
    return Subject(
        market_id=market.market_id,
        condition_id=market.condition_id,
        token_ids=market.token_ids,
        born_s=None if born is None else int(born.timestamp()),
        closed_s=_closed_s(market),
    )


def _closed_s(market: MarketInfo) -> int | None:
    if not market.closed:
        return None
    moment = market.closed_time or market.end_date
    return None if moment is None else int(moment.timestamp())


async def chosen_markets(gamma: GammaClient, selection: Selection) -> list[MarketInfo]:
    """The chosen markets as Gamma describes them, each once, in the order found."""
    found: dict[str, MarketInfo] = {}
    for source in _sources(gamma, selection):
        async for market in source:
            found.setdefault(market.market_id, market)
    return list(found.values())


async def select_markets(gamma: GammaClient, selection: Selection) -> list[Subject]:
    """The chosen markets that have trading ids, as the backfill needs them."""
    subjects = (subject_of(m) for m in await chosen_markets(gamma, selection))
    return [s for s in subjects if s is not None]


def _sources(gamma: GammaClient, selection: Selection) -> list[AsyncIterator[MarketInfo]]:
    """One walk of Gamma per criterion given (lazy: nothing is asked until iterated)."""
    sources: list[AsyncIterator[MarketInfo]] = []
    if selection.market_ids:
        sources.append(_both_states(gamma, {"id": list(selection.market_ids)}))
    if selection.slugs:
        sources.append(_both_states(gamma, {"slug": list(selection.slugs)}))
    sources.extend(_event_markets(gamma, event) for event in selection.events)
    sources.extend(_markets(gamma, {"closed": False, "tag_id": tag}) for tag in selection.tags)
    if selection.all_open:
        sources.append(_markets(gamma, {"closed": False}))
    if selection.resolved_since is not None:
        sources.append(_resolved_since(gamma, selection.resolved_since))
    return sources


async def _resolved_since(gamma: GammaClient, since: datetime) -> AsyncIterator[MarketInfo]:
    async for market in _markets(gamma, {"closed": True}):
        closed = market.closed_time or market.end_date
        if closed is not None and closed >= since:
            yield market


async def _markets(gamma: GammaClient, filters: dict[str, object]) -> AsyncIterator[MarketInfo]:
    async for page in gamma.iter_markets_keyset(limit=MARKETS_PAGE_MAX, **filters):
        for market in page.items:
            yield market


async def _both_states(gamma: GammaClient, filters: dict[str, object]) -> AsyncIterator[MarketInfo]:
    for closed in BOTH_STATES:
        async for market in _markets(gamma, {**filters, "closed": closed}):
            yield market


async def _event_markets(gamma: GammaClient, event: str) -> AsyncIterator[MarketInfo]:
    key = "id" if event.isdigit() else "slug"
    for closed in BOTH_STATES:
        filters: dict[str, object] = {"closed": closed, key: [event]}
        async for page in gamma.iter_events_keyset(limit=EVENTS_PAGE_MAX, **filters):
            for info in page.items:
                for market in info.markets:
                    yield market


async def stored_open_markets(conn: asyncpg.Connection) -> list[Subject]:
    """The open markets the metadata scan stored, with their tokens (the daemon's choice)."""
    rows = await conn.fetch(
        "SELECT m.market_id, m.condition_id, m.start_date, "
        "array_agg(t.token_id ORDER BY t.outcome_index) AS tokens "
        "FROM markets m JOIN tokens t USING (market_id) WHERE NOT m.closed "
        "GROUP BY m.market_id ORDER BY m.market_id"
    )
    return [
        Subject(
            market_id=r["market_id"],
            condition_id=r["condition_id"],
            token_ids=tuple(r["tokens"]),
            born_s=None if r["start_date"] is None else int(r["start_date"].timestamp()),
            closed_s=None,
        )
        for r in rows
    ]
