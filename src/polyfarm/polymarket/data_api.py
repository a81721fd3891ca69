"""Data API client: the public trade tape, v1 (offset paging) and v2 (cursor paging), §4.

Every 200 body is checked for an ``error`` key by ``RestClient`` (the Data API rate-limits with
``200 {"error": "Too Many Requests"}``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from polyfarm.errors import PayloadError
from polyfarm.polymarket import schemas as s
from polyfarm.polymarket._service import RestService
from polyfarm.polymarket.domain import DataTrade, Page
from polyfarm.polymarket.http import query_params
from polyfarm.polymarket.parse import parse_data_trades_v1, parse_data_trades_v2_page

OFFSET_MAX = 10_000  # v1 `offset` beyond this → 400
V1_LIMIT_MAX = 10_000
V2_LIMIT_MAX = 1_000
V2_CONDITIONS_MAX = 20

_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_V2_ENVELOPE = msgspec.json.Decoder(s.DataTradesV2Envelope)

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
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            # `limit` is honoured on the first page only; later pages carry the cursor.
            extra = {"limit": limit} if cursor is None else {"cursor": cursor}
            envelope = await self.rest.get(
                "/v2/trades", _V2_ENVELOPE, params=query_params({**base, **extra})
            )
            page = parse_data_trades_v2_page(envelope)
            yield page
            cursor = page.next_cursor
            if cursor is None:
                return
            if cursor in seen:
                raise PayloadError("/v2/trades: next_cursor repeated, pagination is not advancing")
            seen.add(cursor)


def _epoch_s(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
