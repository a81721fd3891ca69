"""Pure parsers: wire structs (or raw JSON) in, validated domain objects out.

Nothing here awaits, reads the clock, the environment or any global. A bad record raises
``PayloadError`` with a reason; the list and ``*_page`` parsers collect those as ``Reject``s so
one bad record never blocks its neighbours. Gamma and resolution inference live here; CLOB and
Data API parsers live in private modules and are re-exported; WebSocket messages are parsed in
``ws_protocol``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import msgspec

import polyfarm.polymarket._convert as cv
import polyfarm.polymarket.schemas as s
from polyfarm.errors import PayloadError
from polyfarm.polymarket._parse_clob import (
    parse_book,
    parse_books,
    parse_clob_market,
    parse_clob_market_info,
    parse_clob_markets_page,
    parse_last_trade,
    parse_last_trade_prices,
    parse_market_by_token,
    parse_midpoints,
    parse_prices,
    parse_prices_history,
    parse_prices_history_series,
    parse_spreads,
)
from polyfarm.polymarket._parse_data import (
    parse_data_price_point,
    parse_data_prices_history_page,
    parse_data_prices_history_series,
    parse_data_trade_v1,
    parse_data_trade_v2,
    parse_data_trades_v1,
    parse_data_trades_v2_page,
)
from polyfarm.polymarket.domain import (
    ClobMarket,
    EventInfo,
    MarketInfo,
    Page,
    ProtocolVersion,
    Reject,
    Resolution,
    ResolutionKind,
    Tag,
    TokenInfo,
)

__all__ = [
    "clob_market_resolution",
    "infer_resolution",
    "market_resolution",
    "parse_book",
    "parse_books",
    "parse_clob_market",
    "parse_clob_market_info",
    "parse_clob_markets_page",
    "parse_data_price_point",
    "parse_data_prices_history_page",
    "parse_data_prices_history_series",
    "parse_data_trade_v1",
    "parse_data_trade_v2",
    "parse_data_trades_v1",
    "parse_data_trades_v2_page",
    "parse_gamma_event",
    "parse_gamma_events",
    "parse_gamma_events_page",
    "parse_gamma_market",
    "parse_gamma_markets",
    "parse_gamma_markets_page",
    "parse_last_trade",
    "parse_last_trade_prices",
    "parse_market_by_token",
    "parse_midpoints",
    "parse_prices",
    "parse_prices_history",
    "parse_prices_history_series",
    "parse_spreads",
    "protocol_version",
]

_MARKET = msgspec.json.Decoder(s.GammaMarketWire)
_EVENT = msgspec.json.Decoder(s.GammaEventWire)
_WINNER_THRESHOLD = Decimal("0.95")
_HALF = Decimal("0.5")


# --- Gamma ---------------------------------------------------------------------------------


@cv.payload_errors
def parse_gamma_market(obj: object) -> MarketInfo:
    w = cv.to_wire(obj, _MARKET, s.GammaMarketWire)
    event = w.events[0] if w.events else None
    scheme, tokens = _gamma_tokens(w)
    return MarketInfo(
        market_id=cv.numeric_id(w.id, "id"),
        condition_id=cv.condition_id(w.condition_id, "conditionId"),
        question=w.question or "",
        question_id=cv.optional_text(w.question_i_d),
        slug=cv.optional_text(w.slug),
        description=w.description,
        tokens=tokens,
        protocol_version=scheme,
        declared_version=w.version,
        active=w.active,
        closed=bool(w.closed),
        archived=w.archived,
        accepting_orders=w.accepting_orders,
        enable_order_book=w.enable_order_book,
        neg_risk=bool(w.neg_risk),
        neg_risk_market_id=cv.optional_text(w.neg_risk_market_i_d),
        neg_risk_request_id=cv.optional_text(w.neg_risk_request_i_d),
        neg_risk_other=bool(w.neg_risk_other),
        group_item_title=cv.optional_text(w.group_item_title),
        event_id=_optional_id(event.id if event else None),
        event_slug=cv.optional_text(event.slug) if event else None,
        series_slug=cv.optional_text(event.series_slug) if event else None,
        category=cv.optional_text(w.category),
        tick_size=cv.loose_decimal(w.order_price_min_tick_size),
        min_order_size=cv.loose_decimal(w.order_min_size),
        **_gamma_market_times(w),
        **_gamma_market_stats(w),
        uma_resolution_status=cv.optional_text(w.uma_resolution_status),
        uma_resolution_statuses=tuple(
            cv.string_items(
                cv.stringified_list(w.uma_resolution_statuses, "umaResolutionStatuses"),
                "umaResolutionStatuses",
            )
        ),
        automatically_resolved=w.automatically_resolved,
        fees_enabled=w.fees_enabled,
        fee_type=cv.optional_text(w.fee_type),
        raw=bytes(obj) if isinstance(obj, msgspec.Raw | bytes) else None,
    )


def _gamma_market_times(w: s.GammaMarketWire) -> dict[str, Any]:
    return {
        "start_date": cv.gamma_time(w.start_date, "startDate"),
        "end_date": cv.gamma_time(w.end_date, "endDate"),
        "closed_time": cv.gamma_time(w.closed_time, "closedTime"),
        "created_at": cv.gamma_time(w.created_at, "createdAt"),
        "updated_at": cv.gamma_time(w.updated_at, "updatedAt"),
    }


def _gamma_market_stats(w: s.GammaMarketWire) -> dict[str, Any]:
    return {
        "volume": cv.loose_decimal(w.volume_num if w.volume_num is not None else w.volume),
        "volume_24hr": cv.loose_decimal(w.volume24hr),
        "volume_1wk": cv.loose_decimal(w.volume1wk),
        "one_day_price_change": cv.loose_decimal(w.one_day_price_change),
        "one_week_price_change": cv.loose_decimal(w.one_week_price_change),
        "one_month_price_change": cv.loose_decimal(w.one_month_price_change),
        "liquidity": cv.loose_decimal(
            w.liquidity_num if w.liquidity_num is not None else w.liquidity
        ),
        "best_bid": cv.loose_decimal(w.best_bid),
        "best_ask": cv.loose_decimal(w.best_ask),
        "spread": cv.loose_decimal(w.spread),
        "last_trade_price": cv.loose_decimal(w.last_trade_price),
    }


_PROTOCOLS = {version.value: version for version in ProtocolVersion}
_CHOSEN_FIELD = {ProtocolVersion.V1: "clobTokenIds", ProtocolVersion.V2: "positionIds"}


def protocol_version(declared: str | None) -> ProtocolVersion:
    """Gamma's ``version``: absent means a market listed before Protocol V2, hence V1."""
    if declared is None:
        return ProtocolVersion.V1
    scheme = _PROTOCOLS.get(declared)
    if scheme is None:
        raise PayloadError(f"unknown protocol version {declared!r} (expected v1 or v2)")
    return scheme


def _chosen_ids(raw: list[Any], field: str, outcomes: int, required: bool) -> list[str]:
    """The trading ids: as many as outcomes, every one a decimal string."""
    if not raw:
        if required:
            raise PayloadError(f"{field} is missing, and the market's version names it")
        return []
    if len(raw) != outcomes:
        raise PayloadError(f"{field} has {len(raw)} items, outcomes {outcomes}")
    return [cv.token_id(item, field) for item in raw]


def _other_ids(raw: list[Any], field: str, outcomes: int) -> list[str] | None:
    """The id set the version did not choose, kept for research when it is usable."""
    if len(raw) != outcomes:
        return None
    try:
        return [cv.token_id(item, field) for item in raw]
    except PayloadError:
        return None


def _gamma_tokens(w: s.GammaMarketWire) -> tuple[ProtocolVersion, tuple[TokenInfo, ...]]:
    """Zip ``outcomes[i]`` ↔ ``outcomePrices[i]`` ↔ the ids at i, choosing the trading ids by
    ``version`` even when both id fields are present (Protocol V2 migration guide)."""
    scheme = protocol_version(w.version)
    outcomes = cv.string_items(cv.stringified_list(w.outcomes, "outcomes"), "outcomes")
    raw_prices = cv.stringified_list(w.outcome_prices, "outcomePrices")
    if raw_prices and len(raw_prices) != len(outcomes):
        raise PayloadError(f"outcomePrices has {len(raw_prices)} items, outcomes {len(outcomes)}")
    raw_ids = {
        "clobTokenIds": cv.stringified_list(w.clob_token_ids, "clobTokenIds"),
        "positionIds": cv.stringified_list(w.position_ids, "positionIds"),
    }
    chosen = _CHOSEN_FIELD[scheme]
    # A market that declares its version must name its ids; a legacy one may lack them
    # (pre-CLOB AMM markets have no order book).
    ids = {chosen: _chosen_ids(raw_ids[chosen], chosen, len(outcomes), w.version is not None)}
    for field, raw in raw_ids.items():
        if field != chosen:
            ids[field] = _other_ids(raw, field, len(outcomes)) or []
    trading, ctf, positions = ids[chosen], ids["clobTokenIds"], ids["positionIds"]
    prices = [cv.price(cv.decimal_text(p, "outcomePrices"), "outcomePrices") for p in raw_prices]
    return scheme, tuple(
        TokenInfo(
            index=i,
            outcome=outcome,
            token_id=trading[i] if trading else None,
            price=prices[i] if prices else None,
            ctf_token_id=ctf[i] if ctf else None,
            position_id=positions[i] if positions else None,
        )
        for i, outcome in enumerate(outcomes)
    )


def _optional_id(value: str | int | None) -> str | None:
    return None if value is None or value == "" else cv.numeric_id(value, "events[0].id")


@cv.payload_errors
def parse_gamma_event(obj: object) -> EventInfo:
    w = cv.to_wire(obj, _EVENT, s.GammaEventWire)
    event_id = cv.numeric_id(w.id, "id")
    markets, rejects = parse_gamma_markets(w.markets or ())
    # Markets nested in an event carry no `events` of their own: point them at their parent.
    markets = [
        msgspec.structs.replace(
            m,
            event_id=m.event_id or event_id,
            event_slug=m.event_slug or cv.optional_text(w.slug),
            series_slug=m.series_slug or cv.optional_text(w.series_slug),
        )
        for m in markets
    ]
    return EventInfo(
        event_id=event_id,
        slug=cv.optional_text(w.slug),
        ticker=cv.optional_text(w.ticker),
        title=w.title,
        start_date=cv.gamma_time(w.start_date, "startDate"),
        end_date=cv.gamma_time(w.end_date, "endDate"),
        closed_time=cv.gamma_time(w.closed_time, "closedTime"),
        active=w.active,
        closed=bool(w.closed),
        archived=w.archived,
        neg_risk=bool(w.neg_risk),
        enable_neg_risk=w.enable_neg_risk,
        neg_risk_augmented=w.neg_risk_augmented,
        neg_risk_market_id=cv.optional_text(w.neg_risk_market_i_d),
        series_slug=cv.optional_text(w.series_slug),
        liquidity=cv.loose_decimal(w.liquidity),
        volume=cv.loose_decimal(w.volume),
        volume_24hr=cv.loose_decimal(w.volume24hr),
        open_interest=cv.loose_decimal(w.open_interest),
        tags=tuple(Tag(tag_id=str(t.id), label=t.label, slug=t.slug) for t in w.tags or ()),
        markets=tuple(markets),
        market_rejects=tuple(rejects),
    )


def parse_gamma_markets(records: Iterable[object]) -> tuple[list[MarketInfo], list[Reject]]:
    return cv.parse_records(records, parse_gamma_market)


def parse_gamma_events(records: Iterable[object]) -> tuple[list[EventInfo], list[Reject]]:
    return cv.parse_records(records, parse_gamma_event)


def parse_gamma_markets_page(envelope: s.GammaMarketsEnvelope) -> Page[MarketInfo]:
    items = envelope.markets if envelope.markets is not None else envelope.data
    if items is None:
        raise PayloadError("keyset page has neither `markets` nor `data`")
    good, rejects = parse_gamma_markets(items)
    return Page(
        items=tuple(good), rejects=tuple(rejects), next_cursor=cv.next_cursor(envelope.next_cursor)
    )


def parse_gamma_events_page(envelope: s.GammaEventsEnvelope) -> Page[EventInfo]:
    items = envelope.events if envelope.events is not None else envelope.data
    if items is None:
        raise PayloadError("keyset page has neither `events` nor `data`")
    good, rejects = parse_gamma_events(items)
    return Page(
        items=tuple(good), rejects=tuple(rejects), next_cursor=cv.next_cursor(envelope.next_cursor)
    )


# --- resolution ----------------------------------------------------------------------------


def infer_resolution(
    outcome_prices: Sequence[Decimal | None], closed: bool, uma_status: str | None
) -> Resolution:
    """Settlement from final prices (reference §6; seed: a price > 0.95 marks the winner).

    Only a closed market can be resolved. A UMA status other than ``resolved`` (proposed,
    disputed…) means the prices are not final yet; an absent status (common on list results)
    lets the prices decide.
    """
    if not closed or not outcome_prices or any(p is None for p in outcome_prices):
        return Resolution(kind=ResolutionKind.UNRESOLVED)
    if uma_status is not None and uma_status.lower() != "resolved":
        return Resolution(kind=ResolutionKind.UNRESOLVED)
    prices = [p for p in outcome_prices if p is not None]
    winners = [i for i, p in enumerate(prices) if p > _WINNER_THRESHOLD]
    if len(winners) == 1:
        return Resolution(kind=ResolutionKind.WINNER, winner_index=winners[0])
    if all(p == 0 for p in prices):
        return Resolution(kind=ResolutionKind.VOID)
    if len(prices) > 1 and all(p == _HALF for p in prices):
        return Resolution(kind=ResolutionKind.FIFTY_FIFTY)
    return Resolution(kind=ResolutionKind.UNRESOLVED)


def market_resolution(market: MarketInfo) -> Resolution:
    """``infer_resolution`` for a Gamma market, naming the winning token and outcome."""
    result = infer_resolution(market.outcome_prices, market.closed, market.uma_resolution_status)
    if result.winner_index is None:
        return result
    token = market.tokens[result.winner_index]
    return msgspec.structs.replace(
        result, winner_token_id=token.token_id, winner_outcome=token.outcome
    )


def clob_market_resolution(market: ClobMarket) -> Resolution:
    """CLOB ``tokens[].winner`` is the most authoritative settlement signal (reference §2.4)."""
    if not market.closed:
        return Resolution(kind=ResolutionKind.UNRESOLVED)
    if market.is_50_50_outcome:
        return Resolution(kind=ResolutionKind.FIFTY_FIFTY)
    winners = [i for i, t in enumerate(market.tokens) if t.winner]
    if len(winners) != 1:
        prices = [t.price for t in market.tokens]
        result = infer_resolution(prices, True, None)
        if result.winner_index is None:
            return result
        winners = [result.winner_index]
    token = market.tokens[winners[0]]
    return Resolution(
        kind=ResolutionKind.WINNER,
        winner_index=winners[0],
        winner_token_id=token.token_id,
        winner_outcome=token.outcome,
    )
