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
    capacity: int
    markets: dict[int, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    _next_id: int = 0

    def shard_of(self, market_id: str) -> int | None:
        for shard, markets in self.markets.items():
            if market_id in markets:
                return shard
        return None

    def assets(self, shard: int) -> list[str]:
        return [token for tokens in self.markets.get(shard, {}).values() for token in tokens]

    def load(self, shard: int) -> int:
        return sum(len(tokens) for tokens in self.markets.get(shard, {}).values())

    def sync(self, wanted: Mapping[str, tuple[str, ...]]) -> list[ShardChange]:
        """Bring the plan to ``wanted`` (market id → its tokens); returns what to change."""
        subscribe: dict[int, list[str]] = {}
        unsubscribe: dict[int, list[str]] = {}
        opened: set[int] = set()
        for shard, markets in self.markets.items():
            for market_id in [m for m in markets if m not in wanted]:
                unsubscribe.setdefault(shard, []).extend(markets.pop(market_id))
        for market_id, tokens in wanted.items():
            if not tokens or self.shard_of(market_id) is not None:
                continue
            shard = self._place(len(tokens), opened)
            self.markets[shard][market_id] = tokens
            subscribe.setdefault(shard, []).extend(tokens)
        return self._changes(subscribe, unsubscribe, opened)

    def _place(self, size: int, opened: set[int]) -> int:
        fitting = [s for s in self.markets if self.load(s) + size <= self.capacity]
        if fitting:
            return max(fitting, key=lambda s: (self.load(s), -s))
        shard = self._next_id
        self._next_id += 1
        self.markets[shard] = {}
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
        return changes
