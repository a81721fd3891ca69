"""Data API client: the public trade tape, v1 (offset paging) and v2 (cursor paging), and
the v2 price history (cursor paging). See docs/polymarket-wire.md §5 and §11.

Every 200 body is checked for an ``error`` key by ``RestClient`` (the Data API rate-limits with
``200 {"error": "Too Many Requests"}``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import msgspec

import polyfarm.polymarket.schemas as s
from polyfarm.errors import PayloadError
from polyfarm.polymarket._service import RestService
from polyfarm.polymarket.clob import HISTORY_MAX_SPAN_S, history_windows
from polyfarm.polymarket.domain import DataTrade, Page, PricePoint
from polyfarm.polymarket.http import query_params
from polyfarm.polymarket.parse import (
    parse_data_prices_history_page,
    parse_data_prices_history_series,
    parse_data_trades_v1,
    parse_data_trades_v2_page,
)
from polyfarm.polymarket.price_series import PriceSeries, concat

OFFSET_MAX = 10_000  # v1 `offset` beyond this → 400
V1_LIMIT_MAX = 10_000
V2_LIMIT_MAX = 1_000
V2_CONDITIONS_MAX = 20
HISTORY_LIMIT_MAX = 10_000  # points per /v2/prices-history page (also the default)
HISTORY_INTERVALS = frozenset({"max", "all", "1m", "1w", "1d", "6h", "1h"})

_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_V2_ENVELOPE = msgspec.json.Decoder(s.DataTradesV2Envelope)
_HISTORY_ENVELOPE = msgspec.json.Decoder(s.DataPricesHistoryEnvelope)

E = TypeVar("E")
T = TypeVar("T")


class _Paged(Protocol):
    @property
    def next_cursor(self) -> str | None: ...


PageT = TypeVar("PageT", bound=_Paged)

TradeKey = tuple[object, ...]


@dataclass
class _Window:
    """Progress through one ``[start, end]`` window of the newest-first v1 tape."""

    skip: set[TradeKey]
    complete: bool = False
    oldest_s: int | None = None
    keys_by_second: dict[int, set[TradeKey]] = field(default_factory=dict)

    def take(self, trades: list[DataTrade]) -> list[DataTrade]:
        fresh = [t for t in trades if t.dedupe_key not in self.skip]
        for trade in trades:
            second = int(trade.timestamp.timestamp())
            self.keys_by_second.setdefault(second, set()).add(trade.dedupe_key)
            self.oldest_s = second if self.oldest_s is None else min(self.oldest_s, second)
        return fresh

    def next_end(self, current_end: int | None) -> int:
        """End of the next window: just above the oldest second reached (both ends are
        re-fetched and de-duplicated, so it does not matter whether ``end`` is inclusive)."""
        if self.oldest_s is None:
            raise PayloadError("trade window exhausted its offset budget without readable rows")
        new_end = self.oldest_s + 1
        if current_end is not None and new_end >= current_end:
            raise PayloadError(
                f"more than {OFFSET_MAX} trades within one second at {self.oldest_s}"
            )
        return new_end

    def boundary_keys(self) -> set[TradeKey]:
        assert self.oldest_s is not None  # next_end() ran first
        return {
            key for sec, keys in self.keys_by_second.items() if sec >= self.oldest_s for key in keys
        }


class DataApiClient(RestService):
    """``async with DataApiClient(RestClient(settings.data_url, "data", ...)) as data: ...``"""

    service = "data"

    async def iter_trades(
        self,
        market: Sequence[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        page_size: int = 500,
        taker_only: bool = True,
        **filters: object,
    ) -> AsyncIterator[Page[DataTrade]]:
        """v1 ``/trades`` for condition ids, newest first, every trade in ``[start, end]`` once.

        Offset paging stops at 10,000; when a window still has older trades there, the walk
        continues in a new window ending at the oldest second reached (each window has its own
        offset budget) and drops the rows it has already yielded.
        """
        limit = max(1, min(page_size, V1_LIMIT_MAX))
        base = {
            "market": ",".join(market),
            "limit": limit,
            "takerOnly": taker_only,
            "start": _epoch_s(start),
            **filters,
        }
        window_end = _epoch_s(end)
        window = _Window(skip=set())
        while True:
            async for page in self._walk_window(base, window_end, limit, window):
                yield page
            if window.complete:
                return
            window_end = window.next_end(window_end)
            window = _Window(skip=window.boundary_keys())

    async def _walk_window(
        self, base: Mapping[str, object], end: int | None, limit: int, window: _Window
    ) -> AsyncIterator[Page[DataTrade]]:
        for offset in range(0, OFFSET_MAX + 1, limit):
            params = query_params({**base, "end": end, "offset": offset})
            rows = await self.rest.get("/trades", _RAW_LIST, params=params)
            good, rejects = parse_data_trades_v1(rows)
            yield Page(items=tuple(window.take(good)), rejects=tuple(rejects))
            if len(rows) < limit:
                window.complete = True
                return

    async def iter_trades_v2(
        self,
        condition: Sequence[str],
        *,
        page_size: int = V2_LIMIT_MAX,
        **filters: object,
    ) -> AsyncIterator[Page[DataTrade]]:
        """v2 ``/v2/trades`` (cursor paged), ≤ 20 condition ids per scan."""
        unique = list(dict.fromkeys(condition))
        for i in range(0, len(unique), V2_CONDITIONS_MAX):
            chunk = ",".join(unique[i : i + V2_CONDITIONS_MAX])
            async for page in self._v2_scan(chunk, min(page_size, V2_LIMIT_MAX), filters):
                yield page

    async def _v2_scan(
        self, condition: str, limit: int, filters: Mapping[str, object]
    ) -> AsyncIterator[Page[DataTrade]]:
        base = {"condition": condition, **filters}
        async for page in self._cursor_walk(
            "/v2/trades", _V2_ENVELOPE, parse_data_trades_v2_page, base, limit
        ):
            yield page

    async def iter_prices_history(
        self,
        token_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: str | None = None,
        as_of: datetime | None = None,
        bucket_seconds: int | None = None,
        page_size: int = HISTORY_LIMIT_MAX,
    ) -> AsyncIterator[Page[PricePoint]]:
        """``/v2/prices-history`` pages, oldest first, for exactly one window form: ``start``
        (inclusive, with an optional exclusive ``end``; at most 15 days), ``interval`` or
        ``as_of`` (the latest observation at or before it)."""
        window = _history_window(start, end, interval, as_of)
        base = {"token_id": token_id, **window, "bucket_seconds": bucket_seconds}
        limit = max(1, min(page_size, HISTORY_LIMIT_MAX))
        async for page in self._cursor_walk(
            "/v2/prices-history", _HISTORY_ENVELOPE, parse_data_prices_history_page, base, limit
        ):
            yield page

    async def get_prices_history(
        self, token_id: str, *, start: datetime, end: datetime, bucket_seconds: int = 60
    ) -> list[PricePoint]:
        """The series between ``start`` and ``end`` in ≤ 15-day windows, sorted and de-duplicated
        on ``t``. Rejected points are dropped (retrying cannot repair them)."""
        points: dict[datetime, PricePoint] = {}
        for lower, upper in history_windows(_seconds(start), _seconds(end), HISTORY_MAX_SPAN_S):
            async for page in self.iter_prices_history(
                token_id,
                start=datetime.fromtimestamp(lower, UTC),
                end=datetime.fromtimestamp(upper, UTC),
                bucket_seconds=bucket_seconds,
            ):
                points.update((p.t, p) for p in page.items)
        return [points[t] for t in sorted(points)]

    async def get_price_series(
        self, token_id: str, *, start: datetime, end: datetime, bucket_seconds: int = 60
    ) -> PriceSeries:
        """``get_prices_history`` as columns (the same points, in the same order), read
        without a Python object per point: what a backfill asks for."""
        parts: list[PriceSeries] = []
        for lower, upper in history_windows(_seconds(start), _seconds(end), HISTORY_MAX_SPAN_S):
            window = _history_window(
                datetime.fromtimestamp(lower, UTC), datetime.fromtimestamp(upper, UTC), None, None
            )
            base = {"token_id": token_id, **window, "bucket_seconds": bucket_seconds}
            async for page in self._cursor_walk(
                "/v2/prices-history",
                _HISTORY_ENVELOPE,
                parse_data_prices_history_series,
                base,
                HISTORY_LIMIT_MAX,
            ):
                parts.append(page.series)
        return concat(parts).last_per_instant()

    async def _cursor_walk(
        self,
        path: str,
        decoder: msgspec.json.Decoder[E],
        parse_page: Callable[[E], PageT],
        base: Mapping[str, object],
        limit: int,
    ) -> AsyncIterator[PageT]:
        """The v2 envelope walk: ``limit`` on the first page only, then ``cursor`` until the
        pagination says there is no more; the same filters are re-sent on every page."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            extra = {"limit": limit} if cursor is None else {"cursor": cursor}
            envelope = await self.rest.get(path, decoder, params=query_params({**base, **extra}))
            page = parse_page(envelope)
            yield page
            cursor = page.next_cursor
            if cursor is None:
                return
            if cursor in seen:
                raise PayloadError(f"{path}: next_cursor repeated, pagination is not advancing")
            seen.add(cursor)


def _history_window(
    start: datetime | None, end: datetime | None, interval: str | None, as_of: datetime | None
) -> dict[str, object]:
    """The query parameters of one window form; anything else is the caller's mistake."""
    forms = sum(value is not None for value in (start, interval, as_of))
    if forms != 1 or (end is not None and start is None):
        raise ValueError("give exactly one of start (with an optional end), interval or as_of")
    if interval is not None and interval not in HISTORY_INTERVALS:
        raise ValueError(f"interval must be one of {sorted(HISTORY_INTERVALS)}")
    return {"start": _epoch_s(start), "end": _epoch_s(end), "interval": interval,
            "as_of": _epoch_s(as_of)}  # fmt: skip


def _epoch_s(moment: datetime | None) -> int | None:
    return None if moment is None else _seconds(moment)


def _seconds(moment: datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
