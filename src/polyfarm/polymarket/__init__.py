"""Async clients for Polymarket's public market data: Gamma, CLOB REST, Data API, market WS.

Layout (after nautilus_trader's adapter): ``schemas`` (wire structs) → ``parse`` and
``ws_protocol`` (pure parsing, sans-I/O) → ``http``/``ratelimit`` (transport) → ``gamma``,
``clob``, ``data_api``, ``ws`` (clients). Domain types live in ``domain``.
"""

from __future__ import annotations

from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.data_api import DataApiClient
from polyfarm.polymarket.domain import (
    Batch,
    BestBidAsk,
    BookLevel,
    BookSnapshot,
    ClobMarket,
    ClobToken,
    Counters,
    DataTrade,
    EventInfo,
    LastTrade,
    MarketInfo,
    MarketResolved,
    NewMarket,
    NoOrderBook,
    OrderBook,
    Page,
    PriceChange,
    PriceLevelChange,
    PricePoint,
    Quote,
    Reject,
    Resolution,
    ResolutionKind,
    Side,
    Tag,
    TickSizeChange,
    TokenInfo,
    TradePrint,
    WsMessage,
)
from polyfarm.polymarket.gamma import GammaClient
from polyfarm.polymarket.http import (
    ClientState,
    NotFoundError,
    PermanentHttpError,
    RateLimitedHttpError,
    RestClient,
    RetryPolicy,
    TransientHttpError,
)
from polyfarm.polymarket.ratelimit import RateLimiter
from polyfarm.polymarket.ws import MarketStream, StreamClosedError, reconnecting

__all__ = [
    "Batch",
    "BestBidAsk",
    "BookLevel",
    "BookSnapshot",
    "ClientState",
    "ClobClient",
    "ClobMarket",
    "ClobToken",
    "Counters",
    "DataApiClient",
    "DataTrade",
    "EventInfo",
    "GammaClient",
    "LastTrade",
    "MarketInfo",
    "MarketResolved",
    "MarketStream",
    "NewMarket",
    "NoOrderBook",
    "NotFoundError",
    "OrderBook",
    "Page",
    "PermanentHttpError",
    "PriceChange",
    "PriceLevelChange",
    "PricePoint",
    "Quote",
    "RateLimitedHttpError",
    "RateLimiter",
    "Reject",
    "Resolution",
    "ResolutionKind",
    "RestClient",
    "RetryPolicy",
    "Side",
    "StreamClosedError",
    "Tag",
    "TickSizeChange",
    "TokenInfo",
    "TradePrint",
    "TransientHttpError",
    "WsMessage",
    "reconnecting",
]
