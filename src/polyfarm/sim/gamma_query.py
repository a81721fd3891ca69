"""Gamma list semantics (pure): filters, ordering and keyset cursors.

* ``closed`` defaults to false on list endpoints; an event is closed once all its markets are.
* Default order is ascending id; ``order`` takes comma-separated field names, ``ascending``
  defaults to false; unknown fields → 422 ``order fields are not valid``.
* Keyset cursors are opaque base64url of the last row's sort key; a different ``order`` with an
  old cursor is rejected.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
from multidict import MultiMapping

from polyfarm.sim.httputil import ApiError, query_bool
from polyfarm.sim.model import EventState, MarketState, Outcome
from polyfarm.sim.render_gamma import market_liquidity

T = TypeVar("T")
SortKey = Callable[[Any], float]

MARKET_ORDER: dict[str, SortKey] = {
    "id": lambda m: m.gamma_id,
    "volume24hr": lambda m: m.vol24,
    "volume_num": lambda m: m.vol_total,
    "volumeNum": lambda m: m.vol_total,
    "volume": lambda m: m.vol_total,
    "liquidity_num": market_liquidity,
    "liquidityNum": market_liquidity,
    "liquidity": market_liquidity,
    "endDate": lambda m: m.end_s,
    "startDate": lambda m: m.created_s,
    "createdAt": lambda m: m.created_s,
}
EVENT_ORDER: dict[str, SortKey] = {
    "id": lambda e: e.gamma_id,
    "volume24hr": lambda e: sum(m.vol24 for m in e.markets),
    "volume": lambda e: sum(m.vol_total for m in e.markets),
    "liquidity": lambda e: sum(market_liquidity(m) for m in e.markets),
    "endDate": lambda e: e.end_s,
    "startDate": lambda e: e.start_s,
    "createdAt": lambda e: e.created_s,
}


def parse_date(raw: str, name: str) -> float:
    """RFC 3339 or bare ``YYYY-MM-DD`` → epoch seconds."""
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, f"invalid date for {name}: {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _number(query: Mapping[str, str], name: str) -> float | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise ApiError(422, f"invalid number for {name}: {raw!r}") from None


def _ints(query: MultiMapping[str], name: str) -> set[int]:
    try:
        return {int(v) for v in query.getall(name, [])}
    except ValueError:
        raise ApiError(422, f"invalid integer for {name}") from None


@dataclass(frozen=True, slots=True)
class Range:
    low: float | None = None
    high: float | None = None

    def holds(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    @property
    def active(self) -> bool:
        return self.low is not None or self.high is not None


def date_range(query: Mapping[str, str], prefix: str) -> Range:
    low, high = query.get(f"{prefix}_min"), query.get(f"{prefix}_max")
    return Range(
        parse_date(low, f"{prefix}_min") if low else None,
        parse_date(high, f"{prefix}_max") if high else None,
    )


def number_range(query: Mapping[str, str], prefix: str) -> Range:
    return Range(_number(query, f"{prefix}_min"), _number(query, f"{prefix}_max"))


@dataclass(frozen=True, slots=True)
class MarketFilter:
    closed: bool
    ids: frozenset[int]
    keys: Mapping[str, frozenset[str]]
    end: Range
    start: Range
    liquidity: Range
    volume: Range
    uma_status: str | None
    tag_id: str | None

    @classmethod
    def from_query(cls, query: MultiMapping[str]) -> MarketFilter:
        names = ("slug", "condition_ids", "clob_token_ids", "position_ids", "question_ids")
        return cls(
            closed=query_bool(query, "closed", False),
            ids=frozenset(_ints(query, "id")),
            keys={n: frozenset(query.getall(n, [])) for n in names if n in query},
            end=date_range(query, "end_date"),
            start=date_range(query, "start_date"),
            liquidity=number_range(query, "liquidity_num"),
            volume=number_range(query, "volume_num"),
            uma_status=query.get("uma_resolution_status"),
            tag_id=query.get("tag_id"),
        )

    def _keys_match(self, market: MarketState) -> bool:
        values = {
            "slug": (market.slug,),
            "condition_ids": (market.condition_id,),
            "clob_token_ids": market.ctf_ids or (),
            "position_ids": market.position_ids or (),
            "question_ids": (market.question_id,),
        }
        return all(any(v in wanted for v in values[name]) for name, wanted in self.keys.items())

    def matches(self, market: MarketState) -> bool:
        if (market.closed_s is not None) != self.closed:
            return False
        if self.ids and market.gamma_id not in self.ids:
            return False
        if self.keys and not self._keys_match(market):
            return False
        if not (self.end.holds(market.end_s) and self.start.holds(market.created_s)):
            return False
        if self.volume.active and not self.volume.holds(market.vol_total):
            return False
        if self.liquidity.active and not self.liquidity.holds(market_liquidity(market)):
            return False
        return self._status_and_tag(market)

    def _status_and_tag(self, market: MarketState) -> bool:
        if self.uma_status is not None:
            resolved = market.result is not Outcome.OPEN
            if self.uma_status != ("resolved" if resolved else ""):
                return False
        return self.tag_id is None or any(t["id"] == self.tag_id for t in market.event.tags)


@dataclass(frozen=True, slots=True)
class EventFilter:
    closed: bool
    ids: frozenset[int]
    slugs: frozenset[str]
    tag_id: str | None
    tag_slug: str | None
    end: Range
    start: Range

    @classmethod
    def from_query(cls, query: MultiMapping[str]) -> EventFilter:
        return cls(
            closed=query_bool(query, "closed", False),
            ids=frozenset(_ints(query, "id")),
            slugs=frozenset(query.getall("slug", [])),
            tag_id=query.get("tag_id"),
            tag_slug=query.get("tag_slug"),
            end=date_range(query, "end_date"),
            start=date_range(query, "start_date"),
        )

    def matches(self, event: EventState) -> bool:
        if event.is_closed() != self.closed:
            return False
        if (self.ids and event.gamma_id not in self.ids) or (
            self.slugs and event.slug not in self.slugs
        ):
            return False
        if not (self.end.holds(event.end_s) and self.start.holds(event.start_s)):
            return False
        if self.tag_id is not None and all(t["id"] != self.tag_id for t in event.tags):
            return False
        return self.tag_slug is None or any(t["slug"] == self.tag_slug for t in event.tags)


@dataclass(frozen=True, slots=True)
class Ordering(Generic[T]):
    fields: tuple[str, ...]
    ascending: bool
    keys: tuple[SortKey, ...]

    @classmethod
    def from_query(cls, query: Mapping[str, str], table: Mapping[str, SortKey]) -> Ordering[T]:
        raw = query.get("order", "")
        fields = tuple(f.strip() for f in raw.split(",") if f.strip()) or ("id",)
        if any(f not in table for f in fields):
            raise ApiError(422, "order fields are not valid")
        ascending = query_bool(query, "ascending", not raw)
        return cls(fields, ascending, tuple(table[f] for f in fields))

    def key(self, item: T) -> tuple[float, ...]:
        sign = 1.0 if self.ascending else -1.0
        return (*(sign * k(item) for k in self.keys), sign * item.gamma_id)  # type: ignore[attr-defined]

    def sort(self, items: Sequence[T]) -> list[T]:
        return sorted(items, key=self.key)


def encode_cursor(ordering: Ordering[Any], key: tuple[float, ...]) -> str:
    payload = orjson.dumps({"o": list(ordering.fields), "a": ordering.ascending, "k": list(key)})
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(raw: str, ordering: Ordering[Any]) -> tuple[float, ...]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        key = tuple(float(v) for v in data["k"])
        same = tuple(data["o"]) == ordering.fields and data["a"] == ordering.ascending
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ApiError(422, "invalid after_cursor") from None
    if not same:
        raise ApiError(422, "after_cursor does not match the requested order")
    return key


def _id_ascending_page(
    items: Sequence[T], predicate: Callable[[T], bool], after: tuple[float, ...] | None, limit: int
) -> tuple[list[T], bool]:
    """Fast path for the default order: ``items`` are already in ascending id order."""
    start = bisect_right(items, after[0], key=_gamma_id) if after else 0
    page: list[T] = []
    for item in itertools.islice(items, start, None):
        if predicate(item):
            if len(page) == limit:
                return page, True
            page.append(item)
    return page, False


def keyset_page(
    items: Sequence[T],
    predicate: Callable[[T], bool],
    ordering: Ordering[T],
    after: str | None,
    limit: int,
) -> tuple[list[T], str | None]:
    """One page after the cursor and the next cursor (None on the last page).

    ``items`` must be in ascending id order (as the world keeps them).
    """
    start = decode_cursor(after, ordering) if after else None
    if ordering.fields == ("id",) and ordering.ascending:
        page, more = _id_ascending_page(items, predicate, start, limit)
    else:
        ordered = ordering.sort([item for item in items if predicate(item)])
        if start is not None:
            ordered = [item for item in ordered if ordering.key(item) > start]
        page, more = ordered[:limit], len(ordered) > limit
    return page, encode_cursor(ordering, ordering.key(page[-1])) if more and page else None


def _gamma_id(item: Any) -> int:
    gamma_id: int = item.gamma_id
    return gamma_id
