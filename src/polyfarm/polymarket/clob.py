"""CLOB REST client: books, prices, price history and the market catalogue (reference §2)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Self, TypeVar

import aiohttp
import msgspec

import polyfarm.polymarket.schemas as s
from polyfarm.errors import PayloadError
from polyfarm.polymarket._service import RestService
from polyfarm.polymarket.domain import (
    Batch,
    ClobMarket,
    ClobMarketInfo,
    LastTrade,
    MarketByToken,
    NoOrderBook,
    OrderBook,
    Page,
    PricePoint,
    Quote,
    Reject,
)
from polyfarm.polymarket.http import NotFoundError, RestClient, query_params
from polyfarm.polymarket.parse import (
    parse_book,
    parse_books,
    parse_clob_market,
    parse_clob_market_info,
    parse_clob_markets_page,
    parse_last_trade_prices,
    parse_market_by_token,
    parse_midpoints,
    parse_prices,
    parse_prices_history,
    parse_prices_history_series,
    parse_spreads,
)
from polyfarm.polymarket.price_series import PriceSeries, concat
from polyfarm.polymarket.ratelimit import RateLimiter
from polyfarm.settings import Settings

BATCH_MAX = 500  # items per POST /books, /prices, ... [DOC]
HISTORY_MAX_SPAN_S = 1_296_000  # /prices-history rejects windows longer than 15 days
FIRST_CURSOR = "MA=="  # base64("0")
END_CURSOR = "LTE="  # base64("-1")

T = TypeVar("T")

_RAW = msgspec.json.Decoder(msgspec.Raw)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_MAP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_TICK = msgspec.json.Decoder(s.TickSizeWire)
_HISTORY = msgspec.json.Decoder(s.PricesHistoryWire)
_MARKETS = msgspec.json.Decoder(s.ClobMarketsEnvelope)
_TEXT = msgspec.json.Decoder(str)
_VERSION = msgspec.json.Decoder(s.VersionWire)
SAMPLING_MARKETS = "/sampling-markets"  # markets with liquidity rewards, same envelope
SAMPLING_SIMPLIFIED_MARKETS = "/sampling-simplified-markets"


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    unique = list(dict.fromkeys(items))  # order-preserving dedupe
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def history_windows(
    start_s: int, end_s: int, max_span_s: int = HISTORY_MAX_SPAN_S
) -> list[tuple[int, int]]:
    """Split ``[start, end]`` into consecutive windows no longer than the server's cap."""
    windows: list[tuple[int, int]] = []
    cursor = start_s
    while cursor < end_s:
        upper = min(cursor + max_span_s, end_s)
        windows.append((cursor, upper))
        cursor = upper
    return windows


def merge_batches(batches: Iterable[Batch[T]], requested: Sequence[str]) -> Batch[T]:
    """Join chunk results on token id; report tokens the server did not answer for."""
    items: dict[str, T] = {}
    rejects: list[Reject] = []
    for batch in batches:
        items.update(batch.items)
        rejects.extend(batch.rejects)
    wanted = dict.fromkeys(requested)
    return Batch(
        items={k: v for k, v in items.items() if k in wanted},
        rejects=tuple(rejects),
        missing=tuple(token for token in wanted if token not in items),
    )


class ClobClient(RestService):
    """``async with ClobClient(RestClient(settings.clob_url, "clob", ...)) as clob: ...``"""

    service = "clob"

    def __init__(
        self, rest: RestClient, *, batch_size: int = BATCH_MAX, concurrency: int = 4
    ) -> None:
        if not 1 <= batch_size <= BATCH_MAX:
            raise ValueError(f"batch_size must be within 1..{BATCH_MAX}")
        super().__init__(rest)
        self.batch_size = batch_size
        self._concurrency = max(1, concurrency)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        limiter: RateLimiter | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> Self:
        rest = cls.rest_from_settings(settings, limiter, session)
        return cls(rest, batch_size=settings.orderbook.batch_size)

    async def get_book(self, token_id: str) -> OrderBook | NoOrderBook:
        """The book, or ``NoOrderBook`` on 404 (unknown token or closed market)."""
        try:
            raw = await self.rest.get("/book", _RAW, params=[("token_id", token_id)])
        except NotFoundError as exc:
            return NoOrderBook(asset_id=token_id, reason=str(exc))
        return parse_book(raw)

    async def get_books(self, token_ids: Sequence[str]) -> Batch[OrderBook]:
        """``POST /books`` in chunks of ≤ 500, joined on ``asset_id`` (response order varies)."""

        async def one(chunk: list[str]) -> Batch[OrderBook]:
            raws = await self.rest.post("/books", _RAW_LIST, json=[{"token_id": t} for t in chunk])
            books, rejects = parse_books(raws)
            return Batch(items={b.asset_id: b for b in books}, rejects=tuple(rejects))

        return merge_batches(await self._per_chunk(token_ids, self.batch_size, one), token_ids)

    async def get_prices(self, token_ids: Sequence[str]) -> Batch[Quote]:
        """Best bid (BUY) and best ask (SELL) per token; two request items per token."""

        async def one(chunk: list[str]) -> Batch[Quote]:
            body = [{"token_id": t, "side": side} for t in chunk for side in ("BUY", "SELL")]
            return parse_prices(await self.rest.post("/prices", _RAW_MAP, json=body))

        return merge_batches(
            await self._per_chunk(token_ids, self.batch_size // 2 or 1, one), token_ids
        )

    async def get_midpoints(self, token_ids: Sequence[str]) -> Batch[Decimal]:
        return await self._keyed("/midpoints", token_ids, parse_midpoints)

    async def get_spreads(self, token_ids: Sequence[str]) -> Batch[Decimal]:
        return await self._keyed("/spreads", token_ids, parse_spreads)

    async def get_last_trade_prices(self, token_ids: Sequence[str]) -> Batch[LastTrade]:
        async def one(chunk: list[str]) -> Batch[LastTrade]:
            body = [{"token_id": t} for t in chunk]
            raws: list[msgspec.Raw] = await self.rest.post(
                "/last-trades-prices", _RAW_LIST, json=body
            )
            return parse_last_trade_prices(raws)

        return merge_batches(await self._per_chunk(token_ids, self.batch_size, one), token_ids)

    async def get_tick_size(self, token_id: str) -> Decimal:
        wire = await self.rest.get("/tick-size", _TICK, params=[("token_id", token_id)])
        if not wire.minimum_tick_size.is_finite() or not 0 < wire.minimum_tick_size < 1:
            raise PayloadError(f"tick size out of range: {wire.minimum_tick_size}")
        return wire.minimum_tick_size

    async def get_prices_history(
        self, token_id: str, *, start: datetime, end: datetime, fidelity: int = 1
    ) -> list[PricePoint]:
        """Midpoint series between ``start`` and ``end``, chaining ≤ 15-day windows.

        ``fidelity`` is the bucket size in minutes. Rejected points are dropped (they cannot be
        repaired by retrying); the series is sorted and de-duplicated on ``t``.
        """
        points: dict[datetime, PricePoint] = {}
        for lower, upper in history_windows(_epoch_s(start), _epoch_s(end)):
            params = query_params(
                {"market": token_id, "startTs": lower, "endTs": upper, "fidelity": fidelity}
            )
            good, _rejects = parse_prices_history(
                await self.rest.get("/prices-history", _HISTORY, params=params)
            )
            points.update((p.t, p) for p in good)
        return [points[t] for t in sorted(points)]

    async def get_price_series(
        self, token_id: str, *, start: datetime, end: datetime, fidelity: int = 1
    ) -> PriceSeries:
        """``get_prices_history`` as columns (the same points, in the same order), read
        without a Python object per point: what a backfill asks for."""
        parts: list[PriceSeries] = []
        for lower, upper in history_windows(_epoch_s(start), _epoch_s(end)):
            params = query_params(
                {"market": token_id, "startTs": lower, "endTs": upper, "fidelity": fidelity}
            )
            series, _rejects = parse_prices_history_series(
                await self.rest.get("/prices-history", _HISTORY, params=params)
            )
            parts.append(series)
        return concat(parts).last_per_instant()

    async def get_prices_history_interval(
        self, token_id: str, *, interval: str = "max", fidelity: int | None = None
    ) -> list[PricePoint]:
        """Trailing-window variant (``interval`` = max|all|1m|1w|1d|6h|1h)."""
        params = query_params({"market": token_id, "interval": interval, "fidelity": fidelity})
        good, _rejects = parse_prices_history(
            await self.rest.get("/prices-history", _HISTORY, params=params)
        )
        return good

    async def get_market(self, condition_id: str) -> ClobMarket:
        raw: msgspec.Raw = await self.rest.get(f"/markets/{condition_id}", _RAW)
        return parse_clob_market(raw)

    async def get_ok(self) -> str:
        """``GET /ok``: the health check of the official client (answers ``"OK"``)."""
        return await self.rest.get("/ok", _TEXT)

    async def get_version(self) -> int:
        """``GET /version``: the CLOB's protocol generation (2 since April 2026)."""
        wire = await self.rest.get("/version", _VERSION)
        return wire.version

    async def get_clob_market_info(self, condition_id: str) -> ClobMarketInfo:
        """``/clob-markets/{condition_id}``: tick, minimum order size, neg risk and fees."""
        raw: msgspec.Raw = await self.rest.get(f"/clob-markets/{condition_id}", _RAW)
        return parse_clob_market_info(raw)

    async def get_market_by_token(self, token_id: str) -> MarketByToken:
        """``/markets-by-token/{token_id}``: the condition a trading id belongs to."""
        raw: msgspec.Raw = await self.rest.get(f"/markets-by-token/{token_id}", _RAW)
        return parse_market_by_token(raw)

    async def iter_markets(self, *, path: str = "/markets") -> AsyncIterator[Page[ClobMarket]]:
        """The whole catalogue (every market ever), cursor ``MA==`` … until ``LTE=``; the
        ``SAMPLING_*`` paths list the markets with liquidity rewards in the same envelope."""
        cursor = FIRST_CURSOR
        seen = {cursor}
        while True:
            envelope = await self.rest.get(path, _MARKETS, params=[("next_cursor", cursor)])
            page = parse_clob_markets_page(envelope)
            yield page
            if page.next_cursor in (None, END_CURSOR) or not envelope.data:
                return
            if page.next_cursor in seen:
                raise PayloadError(f"{path}: next_cursor repeated, pagination is not advancing")
            cursor = page.next_cursor
            seen.add(cursor)

    async def _keyed(
        self,
        path: str,
        token_ids: Sequence[str],
        parse: Callable[[dict[str, msgspec.Raw]], Batch[T]],
    ) -> Batch[T]:
        async def one(chunk: list[str]) -> Batch[T]:
            return parse(
                await self.rest.post(path, _RAW_MAP, json=[{"token_id": t} for t in chunk])
            )

        return merge_batches(await self._per_chunk(token_ids, self.batch_size, one), token_ids)

    async def _per_chunk(
        self, token_ids: Sequence[str], size: int, fetch: Callable[[list[str]], Awaitable[Batch[T]]]
    ) -> list[Batch[T]]:
        """Run chunk requests with bounded concurrency; all tasks are owned by a TaskGroup."""
        limit = asyncio.Semaphore(self._concurrency)

        async def bounded(chunk: list[str]) -> Batch[T]:
            async with limit:
                return await fetch(chunk)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(bounded(chunk)) for chunk in chunked(token_ids, size)]
        except ExceptionGroup as failures:
            # Callers catch TransientSourceError & co., not groups: surface the first failure.
            raise failures.exceptions[0] from failures
        return [task.result() for task in tasks]


def _epoch_s(moment: datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
