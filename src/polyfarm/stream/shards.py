"""Which market's tokens ride on which connection (pure).

Assets are packed onto connections of at most ``capacity`` assets (200 by default: beyond
~500 the venue silently stops sending). A market's tokens always share one connection, so a
``price_change`` covering both outcomes arrives whole. Markets never move between connections
once placed: moving one would mean an unsubscribe here and a subscribe there, with a window in
between. New markets go to the fullest connection with room, so connections stay few.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ShardChange:
    shard: int
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    opened: bool = False  # a new connection: its first subscription carries ``subscribe``
    closed: bool = False  # nothing left on it: close the connection


@dataclass
class ShardPlan:
    """``markets``: shard → its markets and their tokens. Two indexes kept beside it make a
    sync over the venue's 20,000 markets linear: which shard holds a market, and how many
    assets each shard carries (a scan of every shard per market was quadratic)."""

    capacity: int
    markets: dict[int, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    _next_id: int = 0
    _shard_by_market: dict[str, int] = field(default_factory=dict)
    _loads: dict[int, int] = field(default_factory=dict)

    def shard_of(self, market_id: str) -> int | None:
        return self._shard_by_market.get(market_id)

    def assets(self, shard: int) -> list[str]:
        return [token for tokens in self.markets.get(shard, {}).values() for token in tokens]

    def load(self, shard: int) -> int:
        return self._loads.get(shard, 0)

    def sync(self, wanted: Mapping[str, tuple[str, ...]]) -> list[ShardChange]:
        """Bring the plan to ``wanted`` (market id → its tokens); returns what to change."""
        subscribe: dict[int, list[str]] = {}
        unsubscribe: dict[int, list[str]] = {}
        opened: set[int] = set()
        for shard, markets in self.markets.items():
            for market_id in [m for m in markets if m not in wanted]:
                unsubscribe.setdefault(shard, []).extend(self._remove(shard, market_id))
        for market_id, tokens in wanted.items():
            if not tokens or market_id in self._shard_by_market:
                continue
            shard = self._place(len(tokens), opened)
            self._add(shard, market_id, tokens)
            subscribe.setdefault(shard, []).extend(tokens)
        return self._changes(subscribe, unsubscribe, opened)

    def _add(self, shard: int, market_id: str, tokens: tuple[str, ...]) -> None:
        self.markets[shard][market_id] = tokens
        self._shard_by_market[market_id] = shard
        self._loads[shard] = self._loads.get(shard, 0) + len(tokens)

    def _remove(self, shard: int, market_id: str) -> tuple[str, ...]:
        tokens = self.markets[shard].pop(market_id)
        del self._shard_by_market[market_id]
        self._loads[shard] -= len(tokens)
        return tokens

    def _place(self, size: int, opened: set[int]) -> int:
        best: int | None = None
        for shard, load in self._loads.items():
            if load + size <= self.capacity and (
                best is None or (load, -shard) > (self._loads[best], -best)
            ):
                best = shard
        if best is not None:
            return best
        shard = self._next_id
        self._next_id += 1
        self.markets[shard] = {}
        self._loads[shard] = 0
        opened.add(shard)
        return shard

    def _changes(
        self,
        subscribe: dict[int, list[str]],
        unsubscribe: dict[int, list[str]],
        opened: set[int],
    ) -> list[ShardChange]:
        changes = []
        for shard in sorted(set(subscribe) | set(unsubscribe) | opened):
            empty = not self.markets.get(shard)
            changes.append(
                ShardChange(
                    shard,
                    tuple(subscribe.get(shard, ())),
                    tuple(unsubscribe.get(shard, ())),
                    opened=shard in opened,
                    closed=empty,
                )
            )
            if empty:
                self.markets.pop(shard, None)
                self._loads.pop(shard, None)
        return changes
