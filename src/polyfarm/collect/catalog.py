"""The in-process catalogue of markets being collected, shared by every collector.

The metadata collector is its only writer; the others read tokens and tiers from it. It lives
in the supervisor's process (no Redis): rebuilt from the first metadata scan after a start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from polyfarm.collect.tiers import tier_for
from polyfarm.polymarket.domain import MarketInfo
from polyfarm.settings import TierSettings


@dataclass(frozen=True)
class TrackedMarket:
    market_id: str
    condition_id: str
    token_ids: tuple[str, ...]
    outcomes: tuple[str, ...]
    end_date: datetime | None
    closed: bool
    tier: int | None
    enable_order_book: bool
    neg_risk: bool
    tick_size: float | None
    volume_24h: float | None
    liquidity: float | None
    question: str = ""


@dataclass(frozen=True)
class CatalogDiff:
    new: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    vanished: tuple[str, ...] = ()  # open before, absent from a complete open-market scan
    retiered: tuple[tuple[str, int | None], ...] = ()


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def tracked_from(market: MarketInfo, now: datetime, tiers: TierSettings) -> TrackedMarket:
    return TrackedMarket(
        market_id=market.market_id,
        condition_id=market.condition_id,
        token_ids=market.token_ids,
        outcomes=tuple(t.outcome for t in market.tokens),
        end_date=market.end_date,
        closed=market.closed,
        tier=tier_for(market.end_date, market.closed, now, tiers),
        enable_order_book=market.enable_order_book is not False,
        neg_risk=market.neg_risk,
        tick_size=_number(market.tick_size),
        volume_24h=_number(market.volume_24hr),
        liquidity=_number(market.liquidity),
        question=market.question,
    )


@dataclass
class MarketCatalog:
    tiers: TierSettings
    markets: dict[str, TrackedMarket] = field(default_factory=dict)
    token_market: dict[str, str] = field(default_factory=dict)
    # Open markets that dropped out of a complete scan, until the resolution tracker settles them.
    vanished: set[str] = field(default_factory=set)
    # Set once the first complete scan is in: the other collectors wait for it.
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def apply_scan(
        self, scanned: Iterable[MarketInfo], now: datetime, *, complete: bool
    ) -> CatalogDiff:
        """Merge one metadata scan. ``complete``: the scan saw every open market, so an open
        market missing from it has closed or been removed (the resolution tracker checks)."""
        seen: set[str] = set()
        new, closed = [], []
        for market in scanned:
            seen.add(market.market_id)
            before = self.markets.get(market.market_id)
            tracked = tracked_from(market, now, self.tiers)
            self._put(tracked)
            if before is None and not tracked.closed:
                new.append(tracked.market_id)
            if tracked.closed and (before is None or not before.closed):
                closed.append(tracked.market_id)
        vanished = (
            [m for m, t in self.markets.items() if not t.closed and m not in seen]
            if complete
            else []
        )
        if complete:
            self.ready.set()
        self.vanished.update(vanished)
        self.vanished.difference_update(seen)
        return CatalogDiff(tuple(new), tuple(closed), tuple(vanished), self.retier(now))

    def retier(self, now: datetime) -> tuple[tuple[str, int | None], ...]:
        """Move markets between tiers as time passes; returns the markets that moved."""
        moved = []
        for market_id, market in self.markets.items():
            tier = tier_for(market.end_date, market.closed, now, self.tiers)
            if tier != market.tier:
                self.markets[market_id] = _with(market, tier=tier)
                moved.append((market_id, tier))
        return tuple(moved)

    def mark_closed(self, market_ids: Iterable[str]) -> None:
        for market_id in market_ids:
            market = self.markets.get(market_id)
            if market is not None:
                self.markets[market_id] = _with(market, closed=True, tier=None)
            self.vanished.discard(market_id)

    def open_markets(self) -> list[TrackedMarket]:
        return [m for m in self.markets.values() if not m.closed]

    def active_tokens(self) -> list[tuple[str, TrackedMarket]]:
        """Tokens of open markets that trade on the CLOB."""
        return [
            (token, market)
            for market in self.open_markets()
            if market.enable_order_book
            for token in market.token_ids
        ]

    def market_of(self, token_id: str) -> TrackedMarket | None:
        market_id = self.token_market.get(token_id)
        return None if market_id is None else self.markets.get(market_id)

    def _put(self, market: TrackedMarket) -> None:
        self.markets[market.market_id] = market
        for token in market.token_ids:
            self.token_market[token] = market.market_id


def _with(market: TrackedMarket, **changes: object) -> TrackedMarket:
    return replace(market, **changes)  # type: ignore[arg-type]
