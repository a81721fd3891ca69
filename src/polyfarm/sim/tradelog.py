"""Every trade the simulator emitted, in id (= time) order, with per-market indexes (pure).

The oldest trades are dropped once ``retention`` is exceeded so a long run stays bounded;
per-market lists are trimmed lazily when read.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from operator import attrgetter

from polyfarm.sim.model import MarketState, Trade

_ts = attrgetter("ts_ms")
_id = attrgetter("id")


class TradeLog:
    def __init__(self, retention: int = 2_000_000) -> None:
        self._retention = max(retention, 1000)
        self._trades: list[Trade] = []
        self._by_market: dict[int, list[Trade]] = {}
        self.next_id = 1

    def __len__(self) -> int:
        return len(self._trades)

    @property
    def emitted(self) -> int:
        return self.next_id - 1

    def append(self, trade: Trade) -> None:
        self._trades.append(trade)
        self._by_market.setdefault(trade.market.idx, []).append(trade)
        self.next_id = trade.id + 1
        if len(self._trades) > self._retention * 11 // 10:
            self._trim()

    def _trim(self) -> None:
        """Drop the oldest trades beyond ``retention`` from the tape and every market index."""
        del self._trades[: len(self._trades) - self._retention]
        first = self.first_id()
        for trades in self._by_market.values():
            cut = bisect_left(trades, first, key=_id)
            if cut:
                del trades[:cut]

    def first_id(self) -> int:
        return self._trades[0].id if self._trades else self.next_id

    def since(self, since_id: int, limit: int) -> list[Trade]:
        """Trades with ``id > since_id``, oldest first."""
        start = bisect_right(self._trades, since_id, key=_id)
        return self._trades[start : start + limit]

    def for_market(self, market: MarketState) -> list[Trade]:
        trades = self._by_market.get(market.idx, [])
        cut = bisect_left(trades, self.first_id(), key=_id)
        if cut:
            del trades[:cut]
        return trades

    def newest_first(
        self,
        markets: Iterable[MarketState] | None = None,
        window_ms: tuple[int, int] | None = None,
    ) -> Iterator[Trade]:
        """Trades newest first, optionally for some markets and inside ``[start, end]`` ms."""
        if markets is None:
            return _window_desc(self._trades, window_ms)
        streams = [_window_desc(self.for_market(m), window_ms) for m in markets]
        if len(streams) == 1:
            return streams[0]
        return heapq.merge(*streams, key=_id, reverse=True)


def _window_desc(trades: list[Trade], window_ms: tuple[int, int] | None) -> Iterator[Trade]:
    if window_ms is None:
        return reversed(trades)
    low = bisect_left(trades, window_ms[0], key=_ts)
    high = bisect_right(trades, window_ms[1], key=_ts)
    return (trades[i] for i in range(high - 1, low - 1, -1))
