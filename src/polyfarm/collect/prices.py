"""Price snapshots of every active token, every cycle (default 60 s), COPY-written.

Per token: best bid and ask (``POST /prices``), last trade (``POST /last-trades-prices``), the
midpoint as the price (the last trade when one side of the book is empty), and the market's
24 h volume and liquidity from the latest metadata scan. Every row of one cycle carries the same
timestamp, the start of the cadence slot, so a cycle is one instant in the table.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from polyfarm.clock import Clock
from polyfarm.collect.rejects import RejectSink
from polyfarm.logs import get_logger
from polyfarm.markets.catalog import MarketCatalog
from polyfarm.markets.tiers import aligned
from polyfarm.markets.tracked import TrackedMarket
from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.domain import LastTrade, Quote
from polyfarm.runtime import CycleResult
from polyfarm.store.rows import PRICE_SNAPSHOTS, PriceSnapshotRow
from polyfarm.store.writing import Writer

log = get_logger(__name__)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def snapshot_row(
    ts: datetime,
    token_id: str,
    market: TrackedMarket,
    quote: Quote | None,
    last: LastTrade | None,
) -> PriceSnapshotRow:
    buy = quote.buy if quote else None
    sell = quote.sell if quote else None
    last_price = _float(last.price) if last else None
    # Midpoint and spread in decimals, so that each is the double nearest to its exact value
    # (what the compact tables store, polyfarm.store.compact), not a double sum's rounding.
    both = buy is not None and sell is not None
    return PriceSnapshotRow(
        ts=ts,
        token_id=token_id,
        market_id=market.market_id,
        price=float((buy + sell) / 2) if both else last_price,  # type: ignore[operator]
        best_bid=_float(buy),
        best_ask=_float(sell),
        spread=float(sell - buy) if both else None,  # type: ignore[operator]
        last_trade_price=last_price,
        volume_24h=market.volume_24h,
        liquidity=market.liquidity,
    )


class PriceCollector:
    name = "prices"

    def __init__(
        self,
        clob: ClobClient,
        writer: Writer,
        catalog: MarketCatalog,
        clock: Clock,
        interval_s: float,
        rejects: RejectSink,
    ) -> None:
        self._rejects = rejects
        self._clob = clob
        self._writer = writer
        self._catalog = catalog
        self._clock = clock
        self._interval_s = interval_s

    async def cycle(self) -> CycleResult:
        ts = aligned(self._clock(), self._interval_s)
        tokens = self._catalog.active_tokens()
        if not tokens:
            return CycleResult()
        token_ids = [token for token, _ in tokens]
        quotes = await self._clob.get_prices(token_ids)
        lasts = await self._clob.get_last_trade_prices(token_ids)
        await self._rejects.add("clob_price", (*quotes.rejects, *lasts.rejects))
        rows = [
            snapshot_row(ts, token, market, quotes.items.get(token), lasts.items.get(token))
            for token, market in tokens
            if token in quotes.items or token in lasts.items
        ]
        result = await self._writer.write(PRICE_SNAPSHOTS, rows)
        missing = len(tokens) - len(rows)
        if missing:
            log.info("tokens without a price this cycle", missing=missing)
        markets = len({market.market_id for _, market in tokens})
        return CycleResult(markets=markets, rows=result.inserted)
