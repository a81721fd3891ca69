"""World events → market-channel WebSocket messages (pure).

Each message is serialised once here and fanned out as the same bytes to every subscriber.
Routing: ``assets`` lists the token ids whose subscribers receive it; ``custom_only`` limits it
to connections with ``custom_feature_enabled``; ``broadcast`` (``new_market``) goes to every
custom-feature connection regardless of assets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from polyfarm.sim.book import ws_book_body
from polyfarm.sim.model import (
    BookUpdate,
    MarketCreated,
    MarketResolved,
    MarketState,
    Outcome,
    TickSizeChange,
    TokenView,
    TradeEvent,
    WorldEvent,
)
from polyfarm.sim.wire import PRICE_SCALE, PRICE_STR, size_str

FEE_SCHEDULE = {"exponent": 1, "rate": 0.03, "taker_only": True, "rebate_rate": 0.25}


@dataclass(frozen=True, slots=True)
class Outbound:
    payload: bytes
    assets: tuple[str, ...]
    kind: str
    custom_only: bool = False
    broadcast: bool = False


def book_message(market: MarketState, is_yes: bool) -> bytes:
    """A ``book`` snapshot: the REST summary less ``min_order_size``/``neg_risk``."""
    return ws_book_body(market, is_yes).encode()


def _change_item(asset: str, price: int, size: str, side: str, view: TokenView) -> dict[str, str]:
    return {
        "asset_id": asset,
        "price": PRICE_STR[price],
        "size": size,
        "side": side,
        "hash": view.hash,
        "best_bid": view.best_bid,
        "best_ask": view.best_ask,
    }


def price_change(update: BookUpdate) -> Outbound:
    """Both tokens' items in one message: a YES bid at p is a NO ask at 1 - p."""
    market = update.market
    assert update.yes is not None
    assert update.no is not None
    items = []
    for is_bid, price, size in update.changes:
        text = size_str(size)
        yes_side, no_side = ("BUY", "SELL") if is_bid else ("SELL", "BUY")
        items.append(_change_item(market.yes_token, price, text, yes_side, update.yes))
        items.append(_change_item(market.no_token, PRICE_SCALE - price, text, no_side, update.no))
    message = {
        "event_type": "price_change",
        "market": market.condition_id,
        "price_changes": items,
        "timestamp": str(update.ts_ms),
    }
    return Outbound(orjson.dumps(message), (market.yes_token, market.no_token), "price_change")


def _spread(view: TokenView) -> str:
    bid = round(float(view.best_bid) * PRICE_SCALE)
    ask = round(float(view.best_ask) * PRICE_SCALE)
    return PRICE_STR[max(ask - bid, 0)]


def best_bid_ask(update: BookUpdate) -> list[Outbound]:
    out = []
    pairs = ((update.market.yes_token, update.yes), (update.market.no_token, update.no))
    for asset, view in pairs:
        assert view is not None
        message = {
            "event_type": "best_bid_ask",
            "market": update.market.condition_id,
            "asset_id": asset,
            "best_bid": view.best_bid,
            "best_ask": view.best_ask,
            "spread": _spread(view),
            "timestamp": str(update.ts_ms),
        }
        out.append(Outbound(orjson.dumps(message), (asset,), "best_bid_ask", custom_only=True))
    return out


def last_trade_price(event: TradeEvent) -> Outbound:
    fill = event.trade
    message = {
        "asset_id": fill.token_id,
        "event_type": "last_trade_price",
        "fee_rate_bps": "0",
        "market": fill.market.condition_id,
        "price": PRICE_STR[fill.price],
        "side": "BUY" if fill.buy else "SELL",
        "size": size_str(fill.size),
        "timestamp": str(fill.ts_ms),
        "transaction_hash": fill.tx_hash,
    }
    return Outbound(orjson.dumps(message), (fill.token_id,), "last_trade_price")


def tick_size_change(event: TickSizeChange) -> list[Outbound]:
    market = event.market
    out = []
    for asset in (market.yes_token, market.no_token):
        message = {
            "asset_id": asset,
            "event_type": "tick_size_change",
            "market": market.condition_id,
            "new_tick_size": PRICE_STR[event.new_tick],
            "old_tick_size": PRICE_STR[event.old_tick],
            "timestamp": str(event.ts_ms),
        }
        out.append(Outbound(orjson.dumps(message), (asset,), "tick_size_change"))
    return out


def new_market(event: MarketCreated) -> Outbound:
    """``assets_ids`` are the trading ids; ``clob_token_ids`` the ``clobTokenIds`` as Gamma
    publishes them (a v2 market's CTF ids, or none)."""
    market = event.market
    parent = market.event
    tokens = [market.yes_token, market.no_token]
    fees = market.fee_type is not None
    message: dict[str, Any] = {
        "event_type": "new_market",
        "id": str(market.gamma_id),
        "question": market.question,
        "market": market.condition_id,
        "slug": market.slug,
        "description": parent.description,
        "assets_ids": tokens,
        "outcomes": list(market.outcomes),
        "event_message": {
            "id": str(parent.gamma_id),
            "ticker": parent.slug,
            "slug": parent.slug,
            "title": parent.title,
            "description": parent.description,
        },
        "timestamp": str(event.ts_ms),
        "tags": [tag["slug"] for tag in parent.tags],
        "condition_id": market.condition_id,
        "active": True,
        "clob_token_ids": list(market.ctf_ids or ()),
        "fees_enabled": fees,
        "taker_base_fee": "1000" if fees else "0",  # numbers are strings on this channel
        "fee_schedule": FEE_SCHEDULE if fees else None,
        "sports_market_type": "",
        "line": "",
        "game_start_time": "",
        "order_price_min_tick_size": PRICE_STR[market.tick],
        "group_item_title": market.group_title or "",
    }
    return Outbound(orjson.dumps(message), tuple(tokens), "new_market", True, True)


def market_resolved(event: MarketResolved) -> list[Outbound]:
    """Sent for a Yes/No winner only; 50/50 and void resolutions have no winning asset."""
    market = event.market
    if market.result not in (Outcome.YES, Outcome.NO):
        return []
    winner_yes = market.result is Outcome.YES
    message = {
        "event_type": "market_resolved",
        "id": str(market.gamma_id),
        "market": market.condition_id,
        "assets_ids": [market.yes_token, market.no_token],
        "winning_asset_id": market.token(winner_yes),
        "winning_outcome": market.outcomes[0 if winner_yes else 1],
        "timestamp": str(event.ts_ms),
        "tags": [tag["slug"] for tag in market.event.tags],
    }
    assets = (market.yes_token, market.no_token)
    return [Outbound(orjson.dumps(message), assets, "market_resolved", custom_only=True)]


def encode(event: WorldEvent) -> list[Outbound]:
    """Every outbound message one world event causes, in send order."""
    if isinstance(event, BookUpdate):
        if event.yes is None:
            return []
        out = [price_change(event)]
        return out + best_bid_ask(event) if event.top_changed else out
    if isinstance(event, TradeEvent):
        return [last_trade_price(event)]
    if isinstance(event, TickSizeChange):
        return tick_size_change(event)
    if isinstance(event, MarketCreated):
        return [new_market(event)]
    if isinstance(event, MarketResolved):
        return market_resolved(event)
    return []
