"""A market as the daemon tracks it: Gamma's parsed market, wrapped with what collection adds
(its tier now, whether it closed since, the inputs of its books' venue hash)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

import msgspec

from polyfarm.markets.tiers import tier_for
from polyfarm.polymarket.domain import MarketInfo
from polyfarm.settings import TierSettings


@dataclass(frozen=True)
class BookSeed:
    """The two inputs of a book's venue hash that WebSocket ``book`` messages leave out: the
    market's minimum order size (as the venue spells it, ``"5"``) and its neg-risk flag."""

    min_order_size: str
    neg_risk: bool


def decimal_text(value: Decimal) -> str:
    """The venue's spelling of a decimal: no exponent, no trailing zeros (``5``, ``0.5``)."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def book_seed(market: MarketInfo) -> BookSeed | None:
    """Gamma's ``orderMinSize`` and ``negRisk``; None when the market's metadata has no
    minimum size (a market heard of on the WebSocket only)."""
    if market.min_order_size is None:
        return None
    return BookSeed(decimal_text(market.min_order_size), market.neg_risk)


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class TrackedMarket:
    """``info`` is the market as parsed, minus its raw JSON and description (20,000 markets'
    worth of those is tens of megabytes the daemon never reads back); ``closed`` and ``tier``
    change as the stream and the clock move on, without a new scan."""

    info: MarketInfo
    closed: bool
    tier: int | None
    book_seed: BookSeed | None
    # Read for every market at every subscription sync and cadence walk: built once here
    # rather than by MarketInfo's property on each read.
    token_ids: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "token_ids", self.info.token_ids)

    @property
    def market_id(self) -> str:
        return self.info.market_id

    @property
    def condition_id(self) -> str:
        return self.info.condition_id

    @property
    def question(self) -> str:
        return self.info.question

    @property
    def outcomes(self) -> tuple[str, ...]:
        return tuple(t.outcome for t in self.info.tokens)

    @property
    def end_date(self) -> datetime | None:
        return self.info.end_date

    @property
    def created_at(self) -> datetime | None:
        return self.info.created_at

    @property
    def start_date(self) -> datetime | None:
        return self.info.start_date

    @property
    def enable_order_book(self) -> bool:
        return self.info.enable_order_book is not False

    @property
    def neg_risk(self) -> bool:
        return self.info.neg_risk

    @property
    def tick_size(self) -> float | None:
        return _number(self.info.tick_size)

    @property
    def volume_24h(self) -> float | None:
        return _number(self.info.volume_24hr)

    @property
    def volume_1w(self) -> float | None:
        return _number(self.info.volume_1wk)

    @property
    def volume_total(self) -> float | None:
        return _number(self.info.volume)

    @property
    def liquidity(self) -> float | None:
        return _number(self.info.liquidity)

    @property
    def price_change_1d(self) -> float | None:
        return _number(self.info.one_day_price_change)

    @property
    def price_change_1w(self) -> float | None:
        return _number(self.info.one_week_price_change)

    @property
    def price_change_1m(self) -> float | None:
        return _number(self.info.one_month_price_change)

    def retiered(self, tier: int | None) -> TrackedMarket:
        return replace(self, tier=tier)

    def closing(self) -> TrackedMarket:
        return replace(self, closed=True, tier=None)


def tracked_from(market: MarketInfo, now: datetime, tiers: TierSettings) -> TrackedMarket:
    return TrackedMarket(
        info=msgspec.structs.replace(market, raw=None, description=None),
        closed=market.closed,
        tier=tier_for(market.end_date, market.closed, now, tiers),
        book_seed=book_seed(market),
    )
