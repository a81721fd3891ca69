"""CLOB market objects and Data API trade rows (pure)."""

from __future__ import annotations

from typing import Any

from polyfarm.sim.lifecycle import current_mid_half
from polyfarm.sim.model import MarketState, Outcome, Trade
from polyfarm.sim.names import profile
from polyfarm.sim.render_gamma import IMAGE, PUSD
from polyfarm.sim.wire import HALF_SCALE, PRICE_SCALE, SIZE_SCALE, iso_z, price_str, size_str


def _token_prices(market: MarketState) -> tuple[float, float]:
    settled = {
        Outcome.YES: (1.0, 0.0),
        Outcome.NO: (0.0, 1.0),
        Outcome.FIFTY: (0.5, 0.5),
        Outcome.VOID: (0.0, 0.0),
    }
    if market.result in settled:
        return settled[market.result]
    yes = round(current_mid_half(market) / HALF_SCALE, 5)
    return yes, round(1.0 - yes, 5)


def _clob_tokens(market: MarketState) -> list[dict[str, Any]]:
    prices = _token_prices(market)
    winners = (Outcome.YES, Outcome.NO)
    return [
        {"token_id": market.token(index == 0), "outcome": market.outcomes[index],
         "price": prices[index], "winner": market.result is winners[index]}
        for index in (0, 1)
    ]  # fmt: skip


def _clob_state(market: MarketState) -> dict[str, Any]:
    closed = market.closed_s is not None
    return {
        "enable_order_book": True,
        "active": True,
        "closed": closed,
        "archived": False,
        "accepting_orders": not closed,
        "accepting_order_timestamp": None,
        "minimum_order_size": market.min_size,
        "minimum_tick_size": market.tick / PRICE_SCALE,
    }


def clob_market(market: MarketState) -> dict[str, Any]:
    """A CLOB catalogue object (snake_case; note the number/string mix of the wire)."""
    fee = 1000 if market.fee_type else 0
    return {
        **_clob_state(market),
        "condition_id": market.condition_id,
        "question_id": market.question_id,
        "question": market.question,
        "description": market.event.description,
        "market_slug": market.slug,
        "end_date_iso": iso_z(market.end_s),
        "game_start_time": None,
        "seconds_delay": 0,
        "fpmm": "",
        "maker_base_fee": fee,
        "taker_base_fee": fee,
        "notifications_enabled": False,
        "neg_risk": market.neg_risk,
        "neg_risk_market_id": market.event.neg_risk_market_id,
        "neg_risk_request_id": market.neg_risk_request_id,
        "icon": IMAGE,
        "image": IMAGE,
        "rewards": {"rates": [{"asset_address": PUSD, "rewards_daily_rate": 5}],
                    "min_size": 50, "max_spread": 3.5},
        "is_50_50_outcome": market.result is Outcome.FIFTY,
        "tokens": _clob_tokens(market),
        "tags": [tag["label"] for tag in market.event.tags],
    }  # fmt: skip


def clob_market_info(market: MarketState) -> dict[str, Any]:
    """``/clob-markets/{condition_id}``: the official client v2's compact market info (short
    keys; ``nr`` left out when false, ``fd`` only on fee-enabled markets)."""
    body: dict[str, Any] = {
        "c": market.condition_id,
        "t": [{"t": market.token(i == 0), "o": market.outcomes[i]} for i in (0, 1)],
        "mts": price_str(market.tick),
        "mos": market.min_size,
        "mbf": 1000 if market.fee_type else 0,
        "tbf": 1000 if market.fee_type else 0,
        "rfqe": False,
    }
    if market.neg_risk:
        body["nr"] = True
    if market.fee_type is not None:
        body["fd"] = {"r": 0.03, "e": 1, "to": True}
    return body


def market_by_token(market: MarketState) -> dict[str, Any]:
    """``/markets-by-token/{token_id}``: the condition and both trading ids."""
    return {
        "condition_id": market.condition_id,
        "primary_token_id": market.yes_token,
        "secondary_token_id": market.no_token,
    }


def simplified_market(market: MarketState) -> dict[str, Any]:
    full = clob_market(market)
    keys = ("condition_id", "tokens", "rewards", "active", "closed", "archived")
    row = {key: full[key] for key in keys}
    row["accepting_orders"] = full["accepting_orders"]
    return row


def _trade_common(fill: Trade, seed: int, user: int, buy: bool) -> dict[str, Any]:
    who = profile(seed, user)
    market = fill.market
    return {
        "wallet": who["wallet"],
        "side": "BUY" if buy else "SELL",
        "size": fill.size / SIZE_SCALE,
        "price": fill.price / PRICE_SCALE,
        "timestamp": fill.ts_ms // 1000,
        "title": market.question,
        "slug": market.slug,
        "event_slug": market.event.slug,
        "outcome": market.outcomes[0 if fill.is_yes else 1],
        "outcome_index": 0 if fill.is_yes else 1,
        "name": who["name"],
        "pseudonym": who["pseudonym"],
    }


def trade_row_v1(fill: Trade, seed: int, maker: bool = False) -> dict[str, Any]:
    """A Data API ``/trades`` row (camelCase; numbers; epoch seconds)."""
    common = _trade_common(fill, seed, fill.maker if maker else fill.taker, fill.buy != maker)
    return {
        "proxyWallet": common["wallet"],
        "side": common["side"],
        "asset": fill.token_id,
        "conditionId": fill.market.condition_id,
        "size": common["size"],
        "price": common["price"],
        "timestamp": common["timestamp"],
        "title": common["title"],
        "slug": common["slug"],
        "icon": IMAGE,
        "eventSlug": common["event_slug"],
        "outcome": common["outcome"],
        "outcomeIndex": common["outcome_index"],
        "name": common["name"],
        "pseudonym": common["pseudonym"],
        "bio": "",
        "profileImage": "",
        "profileImageOptimized": "",
        "transactionHash": fill.tx_hash,
    }


UNKNOWN_OUTCOME_INDEX = 999


def trade_row_v2(fill: Trade, seed: int, maker: bool = False) -> dict[str, Any]:
    """A Data API ``/v2/trades`` row (snake_case). Like the real feed, most rows leave the
    outcome index (999) and the event slug (``""``) unknown."""
    common = _trade_common(fill, seed, fill.maker if maker else fill.taker, fill.buy != maker)
    if fill.id % 4:
        common.update(outcome_index=UNKNOWN_OUTCOME_INDEX, event_slug="")
    return {
        "proxy_wallet": common["wallet"],
        "side": common["side"],
        "token_id": fill.token_id,
        "condition_id": fill.market.condition_id,
        "size": common["size"],
        "price": common["price"],
        "timestamp": common["timestamp"],
        "title": common["title"],
        "slug": common["slug"],
        "icon": IMAGE,
        "event_slug": common["event_slug"],
        "outcome": common["outcome"],
        "outcome_index": common["outcome_index"],
        "name": common["name"],
        "pseudonym": common["pseudonym"],
        "bio": "",
        "profile_image": "",
        "profile_image_optimized": "",
        "transaction_hash": fill.tx_hash,
    }


def truth_row(fill: Trade) -> dict[str, Any]:
    """The ground-truth record of one trade, in WebSocket terms (decimal strings, ms)."""
    return {
        "id": fill.id,
        "token_id": fill.token_id,
        "condition_id": fill.market.condition_id,
        "outcome_index": 0 if fill.is_yes else 1,
        "price": price_str(fill.price),
        "size": size_str(fill.size),
        "side": "BUY" if fill.buy else "SELL",
        "timestamp_ms": fill.ts_ms,
        "transaction_hash": fill.tx_hash,
        "notional": round(fill.notional, 6),
    }
