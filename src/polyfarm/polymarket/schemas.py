"""Wire schemas: what Polymarket sends, typed as msgspec Structs (reference: polymarket-api.md).

Every field the reference calls optional is optional here and unknown fields are ignored, so a
new key never breaks decoding. Only what ``parse.py`` needs to build a valid domain object is
typed strictly (ids as strings, CLOB prices and sizes as decimals). Lists of records are decoded
as ``msgspec.Raw`` first so one bad record can be rejected without losing its page.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

# Gamma mixes strings and numbers for the same quantity (market `liquidity` is a string, event
# `liquidity` a number); such auxiliary fields are decoded loosely and converted in parse.py.
LooseNumber = str | float | None
# Stringified JSON arrays (`"[\"Yes\", \"No\"]"`); a real array is accepted too.
StringifiedList = str | list[Any] | None
Id = str | int
EpochTimestamp = str | int


class _Wire(msgspec.Struct, kw_only=True):
    pass


# --- Gamma ---------------------------------------------------------------------------------


class GammaSeriesWire(_Wire):
    id: Id | None = None
    slug: str | None = None


class GammaTagWire(_Wire):
    id: Id
    label: str | None = None
    slug: str | None = None


class GammaEventRefWire(_Wire, rename="camel"):
    """The parent event nested in a market (``events[0]``); only the join keys matter."""

    id: Id | None = None
    slug: str | None = None
    series_slug: str | None = None


class GammaMarketWire(_Wire, rename="camel"):
    id: Id
    condition_id: str | None = None
    question: str | None = None
    question_i_d: str | None = msgspec.field(default=None, name="questionID")
    slug: str | None = None
    description: str | None = None
    outcomes: StringifiedList = None
    outcome_prices: StringifiedList = None
    clob_token_ids: StringifiedList = None
    # Protocol V2 (2026): ``version`` says which field holds the trading ids; ``positionIds``
    # is a real array (a stringified one is accepted too).
    version: str | None = None
    position_ids: StringifiedList = None
    active: bool | None = None
    closed: bool | None = None
    archived: bool | None = None
    accepting_orders: bool | None = None
    enable_order_book: bool | None = None
    neg_risk: bool | None = None
    neg_risk_market_i_d: str | None = msgspec.field(default=None, name="negRiskMarketID")
    neg_risk_request_i_d: str | None = msgspec.field(default=None, name="negRiskRequestID")
    neg_risk_other: bool | None = None
    group_item_title: str | None = None
    category: str | None = None
    order_price_min_tick_size: LooseNumber = None
    order_min_size: LooseNumber = None
    start_date: str | None = None
    end_date: str | None = None
    closed_time: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    volume: LooseNumber = None
    volume_num: LooseNumber = None
    volume24hr: LooseNumber = None
    volume1wk: LooseNumber = None
    liquidity: LooseNumber = None
    liquidity_num: LooseNumber = None
    one_day_price_change: LooseNumber = None
    one_week_price_change: LooseNumber = None
    one_month_price_change: LooseNumber = None
    best_bid: LooseNumber = None
    best_ask: LooseNumber = None
    spread: LooseNumber = None
    last_trade_price: LooseNumber = None
    uma_resolution_status: str | None = None
    uma_resolution_statuses: StringifiedList = None
    automatically_resolved: bool | None = None
    fees_enabled: bool | None = None
    fee_type: str | None = None
    events: list[GammaEventRefWire] | None = None


class GammaEventWire(_Wire, rename="camel"):
    id: Id
    slug: str | None = None
    ticker: str | None = None
    title: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    closed_time: str | None = None
    active: bool | None = None
    closed: bool | None = None
    archived: bool | None = None
    neg_risk: bool | None = None
    enable_neg_risk: bool | None = None
    neg_risk_augmented: bool | None = None
    neg_risk_market_i_d: str | None = msgspec.field(default=None, name="negRiskMarketID")
    series_slug: str | None = None
    liquidity: LooseNumber = None
    volume: LooseNumber = None
    volume24hr: LooseNumber = None
    open_interest: LooseNumber = None
    tags: list[GammaTagWire] | None = None
    markets: list[msgspec.Raw] | None = None


class GammaMarketsEnvelope(_Wire):
    """``/markets/keyset``; some parsers also saw ``data`` instead of ``markets`` [?]."""

    markets: list[msgspec.Raw] | None = None
    data: list[msgspec.Raw] | None = None
    next_cursor: str | None = None


class GammaEventsEnvelope(_Wire):
    events: list[msgspec.Raw] | None = None
    data: list[msgspec.Raw] | None = None
    next_cursor: str | None = None


# --- CLOB REST -----------------------------------------------------------------------------


class LevelWire(_Wire):
    price: Decimal
    size: Decimal


class BookWire(_Wire, tag_field="event_type", tag="book"):
    """REST ``/book`` item and WS ``book`` message alike (the tag is optional when standalone)."""

    asset_id: str
    market: str
    timestamp: EpochTimestamp
    bids: list[LevelWire] | None = None
    asks: list[LevelWire] | None = None
    # Very old docs named the arrays buys/sells.
    buys: list[LevelWire] | None = None
    sells: list[LevelWire] | None = None
    hash: str | None = None
    min_order_size: Decimal | None = None
    tick_size: Decimal | None = None
    neg_risk: bool | None = None
    last_trade_price: str | None = None  # may be "" or "0.430"


class ErrorBodyWire(_Wire):
    """Polymarket error body: ``{"error": "..."}`` (Gamma adds ``type``, history adds more)."""

    error: str | None = None
    type: str | None = None
    retry_after_seconds: float | None = None


class PriceWire(_Wire):
    price: Decimal


class MidpointWire(_Wire):
    mid: Decimal


class SpreadWire(_Wire):
    spread: Decimal


class LastTradePriceWire(_Wire):
    price: Decimal
    side: str | None = None
    token_id: str | None = None


class TickSizeWire(_Wire):
    minimum_tick_size: Decimal


class HistoryPointWire(_Wire):
    t: int
    p: Decimal


class PricesHistoryWire(_Wire):
    history: list[msgspec.Raw] | None = None


class ClobTokenWire(_Wire):
    token_id: str
    outcome: str | None = None
    price: Decimal | None = None
    winner: bool | None = None


class ClobMarketWire(_Wire):
    condition_id: str
    question_id: str | None = None
    question: str | None = None
    market_slug: str | None = None
    active: bool | None = None
    closed: bool | None = None
    archived: bool | None = None
    accepting_orders: bool | None = None
    enable_order_book: bool | None = None
    minimum_tick_size: Decimal | None = None
    minimum_order_size: Decimal | None = None
    neg_risk: bool | None = None
    neg_risk_market_id: str | None = None
    end_date_iso: str | None = None
    is_50_50_outcome: bool | None = None
    tokens: list[ClobTokenWire] | None = None
    tags: list[str] | None = None


class ClobMarketInfoTokenWire(_Wire):
    t: str
    o: str | None = None


class ClobFeeDetailsWire(_Wire):
    r: Decimal | None = None
    e: Decimal | None = None
    to: bool | None = None


class ClobMarketInfoWire(_Wire):
    """``/clob-markets/{condition_id}``: the compact market info of the official client v2."""

    c: str
    t: list[ClobMarketInfoTokenWire | None] | None = None
    mts: Decimal | None = None
    mos: Decimal | None = None
    nr: bool | None = None  # left out when false
    fd: ClobFeeDetailsWire | None = None
    mbf: Decimal | None = None
    tbf: Decimal | None = None
    rfqe: bool | None = None


class MarketByTokenWire(_Wire):
    """``/markets-by-token/{token_id}``."""

    condition_id: str
    primary_token_id: str
    secondary_token_id: str


class VersionWire(_Wire):
    version: int


class ClobMarketsEnvelope(_Wire):
    data: list[msgspec.Raw] | None = None
    next_cursor: str | None = None
    limit: int | None = None
    count: int | None = None


# --- Data API ------------------------------------------------------------------------------


class DataTradeV1Wire(_Wire, rename="camel"):
    condition_id: str
    asset: str
    side: str
    price: Decimal
    size: Decimal
    timestamp: int
    proxy_wallet: str | None = None
    transaction_hash: str | None = None
    outcome: str | None = None
    outcome_index: int | None = None
    title: str | None = None
    slug: str | None = None
    event_slug: str | None = None
    name: str | None = None
    pseudonym: str | None = None


class DataTradeV2Wire(_Wire):
    condition_id: str
    token_id: str
    side: str
    price: Decimal
    size: Decimal
    timestamp: int
    proxy_wallet: str | None = None
    transaction_hash: str | None = None
    outcome: str | None = None
    outcome_index: int | None = None
    title: str | None = None
    slug: str | None = None
    event_slug: str | None = None
    name: str | None = None
    pseudonym: str | None = None


class DataPaginationWire(_Wire):
    has_more: bool | None = None
    next_cursor: str | None = None
    # Seen on real /v2/trades pages beside the cursor; informative only (offset paging is
    # refused as a parameter).
    limit: int | None = None
    offset: int | None = None


class DataTradesV2Envelope(_Wire):
    data: list[msgspec.Raw] | None = None
    pagination: DataPaginationWire | None = None


class DataPricePointWire(_Wire):
    """One ``/v2/prices-history`` point; ``resolution_seconds`` is the window it was observed
    in (the terminal point, a real tick, may say 0)."""

    timestamp: int
    price: Decimal
    resolution_seconds: int | None = None


class DataPricesHistoryEnvelope(_Wire):
    data: list[msgspec.Raw] | None = None
    pagination: DataPaginationWire | None = None


# --- Market WebSocket ----------------------------------------------------------------------


class PriceChangeItemWire(_Wire):
    price: Decimal
    size: Decimal
    side: str
    asset_id: str | None = None  # absent in the legacy `changes` items
    hash: str | None = None
    best_bid: str | None = None
    best_ask: str | None = None


class PriceChangeWire(_Wire, tag_field="event_type", tag="price_change"):
    """Current (``price_changes``), legacy (``changes``) and flat 2024 forms in one struct."""

    market: str
    timestamp: EpochTimestamp
    price_changes: list[PriceChangeItemWire] | None = None
    changes: list[PriceChangeItemWire] | None = None
    asset_id: str | None = None
    price: Decimal | None = None
    size: Decimal | None = None
    side: str | None = None
    hash: str | None = None


class LastTradeWire(_Wire, tag_field="event_type", tag="last_trade_price"):
    asset_id: str
    market: str
    price: Decimal
    size: Decimal
    timestamp: EpochTimestamp
    side: str | None = None
    fee_rate_bps: Decimal | None = None
    transaction_hash: str | None = None


class TickSizeChangeWire(_Wire, tag_field="event_type", tag="tick_size_change"):
    asset_id: str
    market: str
    new_tick_size: Decimal
    timestamp: EpochTimestamp
    old_tick_size: Decimal | None = None


class BestBidAskWire(_Wire, tag_field="event_type", tag="best_bid_ask"):
    asset_id: str
    market: str
    timestamp: EpochTimestamp
    best_bid: str | None = None
    best_ask: str | None = None
    spread: str | None = None


class EventMessageWire(_Wire):
    id: Id | None = None
    slug: str | None = None


class NewMarketWire(_Wire, tag_field="event_type", tag="new_market"):
    market: str
    timestamp: EpochTimestamp
    id: Id | None = None
    question: str | None = None
    slug: str | None = None
    assets_ids: list[str] | None = None
    clob_token_ids: list[str] | None = None
    outcomes: list[str] | None = None
    event_message: EventMessageWire | None = None
    group_item_title: str | None = None
    order_price_min_tick_size: str | None = None
    tags: list[str] | None = None
    # Seen on 2026 messages; not used, typed loosely so an odd value costs nothing.
    condition_id: str | None = None
    description: str | None = None
    active: bool | None = None
    fees_enabled: Any = None
    fee_schedule: Any = None
    taker_base_fee: Any = None
    game_start_time: Any = None
    line: Any = None
    sports_market_type: Any = None


class MarketResolvedWire(_Wire, tag_field="event_type", tag="market_resolved"):
    market: str
    timestamp: EpochTimestamp
    id: Id | None = None
    assets_ids: list[str] | None = None
    winning_asset_id: str | None = None
    winning_outcome: str | None = None
    tags: list[str] | None = None


WsMessageWire = (
    BookWire
    | PriceChangeWire
    | LastTradeWire
    | TickSizeChangeWire
    | BestBidAskWire
    | NewMarketWire
    | MarketResolvedWire
)


class WsProbeWire(_Wire):
    """Cheap second look at a message the tagged union refused: which case is it?"""

    event_type: Any = None
    bids: Any = None
    asks: Any = None
    buys: Any = None
    sells: Any = None
