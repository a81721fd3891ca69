"""Gamma market and event objects, typed exactly as on the wire (pure).

Stringified JSON for ``outcomes``/``outcomePrices``/``clobTokenIds``/``umaResolutionStatuses``
(``positionIds`` is a real array; ``version`` names the field holding the trading ids);
market ``volume``/``liquidity`` strings, ``volumeNum``/``liquidityNum``/``bestBid``... numbers;
event ``liquidity``/``volume`` numbers; ``closedTime`` in Postgres text style; absent values
are omitted, never null.
"""

from __future__ import annotations

from typing import Any

import orjson

from polyfarm.sim.lifecycle import outcome_prices
from polyfarm.sim.model import EventState, MarketState, Outcome
from polyfarm.sim.wire import PRICE_SCALE, SIZE_SCALE, decimal_str, iso_date, iso_z, pg_time

RESOLVER = "0x65070BE91477460D8A7AeEb94ef92fe056C2f2A7"
IMAGE = "https://polymarket-upload.s3.us-east-2.amazonaws.com/sim.png"
# Collateral since 2026-04-28: pUSD (rewards name it as their asset), not USDC.e 0x2791….
PUSD = "0xc011a7e12a19f7b1f670d46f03b03f3342e82dfb"
TEN_CENTS = PRICE_SCALE // 10


def _json_text(value: object) -> str:
    """Python-json style text (``", "`` separators) as Gamma's stringified arrays use."""
    return orjson.dumps(value).decode().replace('","', '", "')


def _top(market: MarketState) -> tuple[int, int]:
    if market.book is not None:
        bid, ask = market.book.top()
        return bid or 0, ask or PRICE_SCALE
    return market.final_top


def market_liquidity(market: MarketState) -> float:
    """USDC resting within 10 cents of the touch on both sides of the YES book."""
    book = market.book
    if book is None:
        return 0.0
    bid, ask = book.top()
    total = 0
    if bid is not None:
        total += sum(p * s for p, s in book.bids.items() if p >= bid - TEN_CENTS)
    if ask is not None:
        total += sum((PRICE_SCALE - p) * s for p, s in book.asks.items() if p <= ask + TEN_CENTS)
    return round(total / (PRICE_SCALE * SIZE_SCALE), 4)


def _updated_s(market: MarketState) -> float:
    stamps = [market.created_s, market.vol_s, market.closed_s or 0.0, market.resolved_s or 0.0]
    if market.book is not None:
        stamps.append(market.book.ts_ms / 1000)
    return max(stamps)


def _prices(market: MarketState) -> dict[str, Any]:
    bid, ask = _top(market)
    ltp = market.ltp[0] or (bid + ask) // 2
    return {
        "spread": round((ask - bid) / PRICE_SCALE, 3) if ask > bid else 0.001,
        "lastTradePrice": ltp / PRICE_SCALE,
        "bestBid": bid / PRICE_SCALE,
        "bestAsk": ask / PRICE_SCALE,
    }


def _volumes(market: MarketState, liquidity: float) -> dict[str, Any]:
    total = round(market.vol_total, 6)
    return {
        "volume": decimal_str(total),
        "liquidity": decimal_str(liquidity, 4),
        "volumeNum": total,
        "liquidityNum": liquidity,
        "volume24hr": round(market.vol24, 6),
        "volume1wk": round(market.vol1wk, 6),
        "volume1mo": round(min(total, market.vol1wk * 4), 6),
        "volume1yr": total,
        "volume24hrClob": round(market.vol24, 6),
        "volume1wkClob": round(market.vol1wk, 6),
        "volumeClob": total,
        "liquidityClob": liquidity,
    }


def _identity(market: MarketState) -> dict[str, Any]:
    return {
        "id": str(market.gamma_id),
        "question": market.question,
        "conditionId": market.condition_id,
        "slug": market.slug,
        "resolutionSource": "",
        "endDate": iso_z(market.end_s),
        "startDate": iso_z(market.created_s + 4.2, micros=True),
        "image": IMAGE,
        "icon": IMAGE,
        "description": market.event.description,
        "outcomes": _json_text(list(market.outcomes)),
        "outcomePrices": _json_text(list(outcome_prices(market))),
        "questionID": market.question_id,
        "marketMakerAddress": "",
        "createdAt": iso_z(market.created_s, micros=True),
        "updatedAt": iso_z(_updated_s(market), micros=True),
        "endDateIso": iso_date(market.end_s),
        "startDateIso": iso_date(market.created_s),
        "acceptingOrdersTimestamp": iso_z(market.created_s + 4.0),
    }


def _outcome_ids(market: MarketState) -> dict[str, Any]:
    """``version`` and the id fields it chooses between, each only when the market has it."""
    fields: dict[str, Any] = {}
    if market.declares_version:
        fields["version"] = market.protocol
    if market.ctf_ids is not None:
        fields["clobTokenIds"] = _json_text(list(market.ctf_ids))
    if market.position_ids is not None:
        fields["positionIds"] = list(market.position_ids)
    return fields


def _flags(market: MarketState) -> dict[str, Any]:
    return {
        "active": True,
        "closed": market.closed_s is not None,
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "approved": True,
        "ready": True,
        "funded": True,
        "cyom": False,
        "enableOrderBook": True,
        "acceptingOrders": market.closed_s is None,
        "negRisk": market.neg_risk,
        "negRiskOther": False,
        "automaticallyActive": True,
        "clearBookOnStart": True,
        "manualActivation": False,
        "pendingDeployment": False,
        "deploying": False,
        "rfqEnabled": False,
        "holdingRewardsEnabled": False,
        "feesEnabled": market.fee_type is not None,
    }


def _trading(market: MarketState) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "groupItemThreshold": market.group_threshold,
        "orderPriceMinTickSize": market.tick / PRICE_SCALE,
        "orderMinSize": market.min_size,
        "makerBaseFee": 1000 if market.fee_type else 0,
        "takerBaseFee": 1000 if market.fee_type else 0,
        "competitive": round(0.9 + 0.0999 * min(market.weight, 1.0), 6),
        "rewardsMinSize": 50,
        "rewardsMaxSpread": 3.5,
        "umaBond": "500",
        "umaReward": "5",
        "negRiskRequestID": market.neg_risk_request_id,
    }
    if market.neg_risk:
        fields["negRiskMarketID"] = market.event.neg_risk_market_id
    if market.group_title is not None:
        fields["groupItemTitle"] = market.group_title
    if market.fee_type is not None:
        fields["feeType"] = market.fee_type
        fields["feeSchedule"] = {"exponent": 1, "rate": 0.03, "rebateRate": 0.25, "takerOnly": True}
    fields["clobRewards"] = [_reward(market)]
    return fields


def _reward(market: MarketState) -> dict[str, Any]:
    return {
        "id": str(200_000 + market.gamma_id % 100_000),
        "conditionId": market.condition_id,
        "assetAddress": PUSD,
        "rewardsAmount": 0,
        "rewardsDailyRate": 5,
        "startDate": iso_date(market.created_s),
        "endDate": "2500-12-31",
    }


def _resolution(market: MarketState) -> dict[str, Any]:
    fields: dict[str, Any] = {"umaResolutionStatuses": "[]"}
    if market.closed_s is not None:
        fields["closedTime"] = pg_time(market.closed_s)
    if market.result is not Outcome.OPEN and market.resolved_s is not None:
        history = ["proposed", "disputed"] if market.disputed else ["proposed"]
        fields.update(
            umaResolutionStatus="resolved",
            umaResolutionStatuses=_json_text(history),
            umaEndDate=iso_z(market.resolved_s),
            resolvedBy=RESOLVER,
            automaticallyResolved=not market.disputed,
        )
    return fields


def gamma_market(market: MarketState, *, with_event: bool = True) -> dict[str, Any]:
    """A Gamma market object; nested ``events`` carries the parent event (without markets)."""
    liquidity = market_liquidity(market)
    body = _identity(market)
    body.update(_outcome_ids(market))
    body.update(_volumes(market, liquidity))
    body.update(_flags(market))
    body.update(_trading(market))
    body.update(_prices(market))
    body.update(_resolution(market))
    if with_event:
        body["events"] = [gamma_event(market.event, with_markets=False)]
    return body


def _event_totals(event: EventState) -> dict[str, Any]:
    liquidity = round(sum(market_liquidity(m) for m in event.markets), 4)
    return {
        "liquidity": liquidity,
        "volume": round(sum(m.vol_total for m in event.markets), 6),
        "openInterest": 0,
        "competitive": round(sum(min(m.weight, 1.0) for m in event.markets) / 10, 6),
        "volume24hr": round(sum(m.vol24 for m in event.markets), 6),
        "volume1wk": round(sum(m.vol1wk for m in event.markets), 6),
        "liquidityClob": liquidity,
        "commentCount": event.comment_count,
    }


def _event_flags(event: EventState) -> dict[str, Any]:
    closed = event.is_closed()
    return {
        "active": True,
        "closed": closed,
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "cyom": False,
        "enableOrderBook": True,
        "negRisk": event.neg_risk,
        "enableNegRisk": event.neg_risk,
        "negRiskAugmented": event.neg_risk and len(event.markets) > 6,
        "showAllOutcomes": True,
        "showMarketImages": len(event.markets) > 1,
        "automaticallyActive": True,
        "pendingDeployment": False,
        "deploying": False,
    }


def gamma_event(event: EventState, *, with_markets: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(event.gamma_id),
        "ticker": event.slug,
        "slug": event.slug,
        "title": event.title,
        "description": event.description,
        "resolutionSource": "",
        "startDate": iso_z(event.start_s, micros=True),
        "creationDate": iso_z(event.created_s, micros=True),
        "endDate": iso_z(event.end_s),
        "createdAt": iso_z(event.created_s, micros=True),
        "updatedAt": iso_z(max(_updated_s(m) for m in event.markets), micros=True),
        "startTime": iso_z(event.end_s - _window(event)),
    }
    body.update(_event_flags(event))
    body.update(_event_totals(event))
    _event_extras(event, body)
    if with_markets:
        body["markets"] = [gamma_market(m, with_event=False) for m in event.markets]
    return body


def _window(event: EventState) -> float:
    return {"5m": 300.0, "15m": 900.0, "1h": 3600.0, "4h": 14400.0}.get(
        (event.series or {}).get("recurrence", ""), 0.0
    )


def _event_extras(event: EventState, body: dict[str, Any]) -> None:
    if len(event.markets) > 1:
        body["sortBy"] = "price"
    if event.neg_risk:
        body["negRiskMarketID"] = event.neg_risk_market_id
    if event.series is not None:
        body["seriesSlug"] = event.series["slug"]
        body["series"] = [dict(event.series)]
    closed = [m.closed_s for m in event.markets if m.closed_s is not None]
    if event.is_closed() and closed:
        body["closedTime"] = pg_time(max(closed))
    body["tags"] = [dict(tag) for tag in event.tags]
