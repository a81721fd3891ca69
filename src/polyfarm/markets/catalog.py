"""The in-process catalogue of markets being collected, shared by every collector.

The metadata collector writes it from Gamma scans; the WebSocket stream adds the markets it
hears of first (``new_market``) and closes the ones it sees resolved; the others read tokens and
tiers from it. It lives in the supervisor's process (no Redis): rebuilt from the first metadata
scan after a start.

A closed market stays for ``CLOSED_KEPT`` after this process first saw it closed (late fills,
the resolution tracker, the stream's repairs find it), then is forgotten with its tokens: the
venue lists about ten thousand markets a day, and a catalogue that kept every one it ever saw
would grow without end. One whose end date is still ahead (closed early) is kept until that
date is ``CLOSED_KEPT`` behind: the metadata scan's recently-closed query (by end date) returns
it until then, and would otherwise take it for a market never seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from polyfarm.markets.tiers import tier_for
from polyfarm.markets.tracked import TrackedMarket, tracked_from
from polyfarm.polymarket.domain import MarketInfo
from polyfarm.settings import TierSettings

CLOSED_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class CatalogDiff:
    new: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    vanished: tuple[str, ...] = ()  # open before, absent from a complete open-market scan
    retiered: tuple[tuple[str, int | None], ...] = ()


@dataclass
class CatalogScan:
    """What one metadata scan has seen so far."""

    seen: set[str] = field(default_factory=set)
    new: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)


@dataclass
class MarketCatalog:
    tiers: TierSettings
    markets: dict[str, TrackedMarket] = field(default_factory=dict)
    token_market: dict[str, str] = field(default_factory=dict)
    # Open markets that dropped out of a complete scan, until the resolution tracker settles them.
    vanished: set[str] = field(default_factory=set)
    # Set once the first complete scan is in: the other collectors wait for it.
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    # When this process first saw each closed market closed: forgotten ``CLOSED_KEPT`` later.
    closed_seen: dict[str, datetime] = field(default_factory=dict)

    def apply_scan(
        self, scanned: Iterable[MarketInfo], now: datetime, *, complete: bool
    ) -> CatalogDiff:
        """Merge one whole metadata scan (see ``start_scan`` for the page-by-page form)."""
        scan = self.start_scan()
        self.add_scanned(scan, scanned, now)
        return self.finish_scan(scan, now, complete=complete)

    def start_scan(self) -> CatalogScan:
        return CatalogScan()

    def add_scanned(self, scan: CatalogScan, markets: Iterable[MarketInfo], now: datetime) -> None:
        for market in markets:
            scan.seen.add(market.market_id)
            before = self.markets.get(market.market_id)
            tracked = tracked_from(market, now, self.tiers)
            self._put(tracked)
            if before is None and not tracked.closed:
                scan.new.append(tracked.market_id)
            if tracked.closed and (before is None or not before.closed):
                scan.closed.append(tracked.market_id)
            if tracked.closed:
                self.closed_seen.setdefault(tracked.market_id, now)

    def finish_scan(self, scan: CatalogScan, now: datetime, *, complete: bool) -> CatalogDiff:
        """``complete``: the scan saw every open market, so an open market missing from it has
        closed or been removed (the resolution tracker checks)."""
        vanished = (
            [m for m, t in self.markets.items() if not t.closed and m not in scan.seen]
            if complete
            else []
        )
        if complete:
            self.ready.set()
        self.vanished.update(vanished)
        self.vanished.difference_update(scan.seen)
        self.forget_long_closed(now)
        return CatalogDiff(tuple(scan.new), tuple(scan.closed), tuple(vanished), self.retier(now))

    def forget_long_closed(self, now: datetime) -> list[str]:
        """Drop the markets closed for ``CLOSED_KEPT`` (see the module doc); returns them."""
        cutoff = now - CLOSED_KEPT
        gone = [
            market_id
            for market_id, seen in self.closed_seen.items()
            if seen <= cutoff and self._ended_before(market_id, cutoff)
        ]
        for market_id in gone:
            del self.closed_seen[market_id]
            market = self.markets.pop(market_id, None)
            self.vanished.discard(market_id)
            for token in () if market is None else market.token_ids:
                if self.token_market.get(token) == market_id:
                    del self.token_market[token]
        return gone

    def _ended_before(self, market_id: str, cutoff: datetime) -> bool:
        market = self.markets.get(market_id)
        end = None if market is None else market.end_date
        return end is None or end <= cutoff

    def retier(self, now: datetime) -> tuple[tuple[str, int | None], ...]:
        """Move markets between tiers as time passes; returns the markets that moved."""
        moved = []
        for market_id, market in self.markets.items():
            tier = tier_for(market.end_date, market.closed, now, self.tiers)
            if tier != market.tier:
                self.markets[market_id] = market.retiered(tier)
                moved.append((market_id, tier))
        return tuple(moved)

    def add_announced(self, market: MarketInfo, now: datetime) -> bool:
        """A market announced on the WebSocket before any scan saw it; True when it is new.
        The next metadata scan replaces this entry with Gamma's full record."""
        if market.market_id in self.markets:
            return False
        self._put(tracked_from(market, now, self.tiers))
        return True

    def mark_closed(self, market_ids: Iterable[str], now: datetime) -> None:
        for market_id in market_ids:
            market = self.markets.get(market_id)
            if market is not None:
                self.markets[market_id] = market.closing()
                self.closed_seen.setdefault(market_id, now)
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
