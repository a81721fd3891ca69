"""Gamma API client: market and event metadata via keyset pagination (reference §1)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TypeVar

import msgspec

import polyfarm.polymarket.schemas as s
from polyfarm.errors import PayloadError
from polyfarm.polymarket._service import RestService
from polyfarm.polymarket.domain import EventInfo, MarketInfo, Page
from polyfarm.polymarket.http import query_params
from polyfarm.polymarket.parse import (
    parse_gamma_event,
    parse_gamma_events_page,
    parse_gamma_market,
    parse_gamma_markets_page,
)

MARKETS_PAGE_MAX = 100  # larger limits are silently clamped to 100 [LIVE 2026-08-11]
EVENTS_PAGE_MAX = 500

E = TypeVar("E", s.GammaMarketsEnvelope, s.GammaEventsEnvelope)
T = TypeVar("T")

_MARKETS_ENVELOPE = msgspec.json.Decoder(s.GammaMarketsEnvelope)
_EVENTS_ENVELOPE = msgspec.json.Decoder(s.GammaEventsEnvelope)
_RAW = msgspec.json.Decoder(msgspec.Raw)


class GammaClient(RestService):
    """``async with GammaClient(RestClient(settings.gamma_url, "gamma", ...)) as gamma: ...``"""

    service = "gamma"

    def iter_markets_keyset(
        self, *, limit: int = MARKETS_PAGE_MAX, **filters: object
    ) -> AsyncIterator[Page[MarketInfo]]:
        """Pages of ``/markets/keyset`` until ``next_cursor`` is absent, null or empty.

        Filters are sent unchanged on every page; list values become repeated params
        (``condition_ids=[...]``). Note Gamma defaults ``closed`` to false on list endpoints.
        """
        return self._keyset(
            "/markets/keyset",
            _MARKETS_ENVELOPE,
            parse_gamma_markets_page,
            min(limit, MARKETS_PAGE_MAX),
            filters,
        )

    def iter_events_keyset(
        self, *, limit: int = 100, **filters: object
    ) -> AsyncIterator[Page[EventInfo]]:
        """Pages of ``/events/keyset`` (each event with its nested markets)."""
        return self._keyset(
            "/events/keyset",
            _EVENTS_ENVELOPE,
            parse_gamma_events_page,
            min(limit, EVENTS_PAGE_MAX),
            filters,
        )

    async def get_market(self, market_id: str | int) -> MarketInfo:
        raw = await self.rest.get(f"/markets/{market_id}", _RAW)
        return parse_gamma_market(raw)

    async def get_event(self, event_id: str | int) -> EventInfo:
        raw = await self.rest.get(f"/events/{event_id}", _RAW)
        return parse_gamma_event(raw)

    async def _keyset(
        self,
        path: str,
        decoder: msgspec.json.Decoder[E],
        parse_page: Callable[[E], Page[T]],
        limit: int,
        filters: Mapping[str, object],
    ) -> AsyncIterator[Page[T]]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        base: list[tuple[str, str]] = [("limit", str(limit)), *query_params(filters)]
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params = base if cursor is None else [*base, ("after_cursor", cursor)]
            page = parse_page(await self.rest.get(path, decoder, params=params))
            yield page
            cursor = page.next_cursor
            if cursor is None:
                return
            # A server that ignores the cursor would serve page 1 forever (agents#227).
            if cursor in seen:
                raise PayloadError(f"{path}: next_cursor repeated, pagination is not advancing")
            seen.add(cursor)
