"""Resolution tracker (default every 10 min): closed markets → ``market_resolutions``.

Candidates are markets we hold as open whose end date has passed or that vanished from the last
open-market scan, and closed markets without a known outcome. They are looked up on Gamma with
``closed=true`` (100 ids a request). The outcome is inferred from the final prices (exactly one
> 0.95 is the winner; ``["0.5","0.5"]`` is a 50/50; ``["0","0"]`` is void), only once the
market is closed and UMA says resolved (or says nothing). Where Gamma's prices do not settle
it, the CLOB market's ``tokens[].winner`` flag, the venue's own settlement signal, is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import orjson

from polyfarm.clock import Clock
from polyfarm.logs import get_logger
from polyfarm.markets.catalog import MarketCatalog
from polyfarm.markets.records import market_record
from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.domain import MarketInfo, Resolution, ResolutionKind
from polyfarm.polymarket.gamma import GammaClient
from polyfarm.polymarket.parse import clob_market_resolution, market_resolution
from polyfarm.runtime import CycleResult
from polyfarm.store.dimensions import ResolutionRecord, record_resolutions, upsert_markets

log = get_logger(__name__)

IDS_PER_REQUEST = 100
CLOB_CHECKS_PER_CYCLE = 50


def resolution_record(
    market: MarketInfo, resolution: Resolution, now: datetime, method: str, source: str
) -> ResolutionRecord | None:
    """The row for a settled market; None while the outcome is not known."""
    if resolution.kind is ResolutionKind.UNRESOLVED:
        return None
    prices = {t.outcome: None if t.price is None else float(t.price) for t in market.tokens}
    return ResolutionRecord(
        market_id=market.market_id,
        condition_id=market.condition_id,
        resolved_at=market.closed_time or now,
        outcome_kind=resolution.kind.value,
        winning_outcome=resolution.winner_outcome,
        winning_token_id=resolution.winner_token_id,
        final_prices=orjson.dumps(prices).decode(),
        method=method,
        source=source,
    )


class ResolutionTracker:
    name = "resolutions"

    def __init__(
        self,
        gamma: GammaClient,
        clob: ClobClient,
        pool: asyncpg.Pool,
        catalog: MarketCatalog,
        clock: Clock,
    ) -> None:
        self._gamma = gamma
        self._clob = clob
        self._pool = pool
        self._catalog = catalog
        self._clock = clock

    async def candidates(self, now: datetime) -> list[str]:
        overdue = [
            m.market_id
            for m in self._catalog.open_markets()
            if m.end_date is not None and m.end_date <= now
        ]
        vanished = [*sorted(self._catalog.vanished), *overdue]
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT m.market_id FROM markets m
                LEFT JOIN market_resolutions r USING (market_id)
                WHERE r.market_id IS NULL AND (m.closed OR m.end_date <= $1)
                ORDER BY m.end_date NULLS LAST
                """,
                now,
            )
        return list(dict.fromkeys([*vanished, *(r["market_id"] for r in rows)]))

    async def cycle(self) -> CycleResult:
        now = self._clock()
        candidates = await self.candidates(now)
        closed: list[MarketInfo] = []
        for start in range(0, len(candidates), IDS_PER_REQUEST):
            ids = candidates[start : start + IDS_PER_REQUEST]
            async for page in self._gamma.iter_markets_keyset(limit=100, id=ids, closed=True):
                closed.extend(page.items)
        records = await self._settle(closed, now)
        async with self._pool.acquire() as conn:
            tiers = self._catalog.tiers
            await upsert_markets(conn, [market_record(m, now, tiers, {}) for m in closed])
            stored = await record_resolutions(conn, records)
        self._catalog.mark_closed((m.market_id for m in closed), now)
        if records:
            log.info("markets resolved", count=len(records), closed=len(closed))
        return CycleResult(markets=len(candidates), rows=stored)

    async def _settle(self, closed: Sequence[MarketInfo], now: datetime) -> list[ResolutionRecord]:
        records = []
        clob_checks = 0
        for market in closed:
            record = resolution_record(
                market, market_resolution(market), now, "final_prices", "gamma"
            )
            if record is None and clob_checks < CLOB_CHECKS_PER_CYCLE:
                clob_checks += 1
                record = await self._ask_clob(market, now)
            if record is not None:
                records.append(record)
        return records

    async def _ask_clob(self, market: MarketInfo, now: datetime) -> ResolutionRecord | None:
        try:
            clob_market = await self._clob.get_market(market.condition_id)
        except Exception as exc:  # one market's lookup must not fail the cycle
            log.warning("CLOB market lookup failed", market=market.market_id, error=repr(exc))
            return None
        return resolution_record(
            market, clob_market_resolution(clob_market), now, "clob_winner", "clob"
        )
