"""Every JSON example in the shared wire-format reference goes through the client's parsers.

The reference (``../shared/polymarket-api.md``) is read at test time. Fenced ```json blocks and
inline `{...}`/`[...]` spans that are valid JSON are extracted, routed by shape to the matching
parser, and checked. Placeholders (``<token_id>``) and ids the reference shortened with ``…`` are
filled in from full ids found elsewhere in the same reference; nothing else is altered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import orjson
import pytest

from polyfarm.polymarket import parse as p
from polyfarm.polymarket import schemas as s
from polyfarm.polymarket.domain import (
    BestBidAsk,
    BookSnapshot,
    Counters,
    MarketResolved,
    NewMarket,
    PriceChange,
    ResolutionKind,
    TickSizeChange,
    TradePrint,
)
from polyfarm.polymarket.http import error_in_body
from polyfarm.polymarket.ws_protocol import MarketProtocol, decode_frame
from tests.polymarket.conftest import REFERENCE

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
TEXT = REFERENCE.read_text(encoding="utf-8")
FULL_TOKEN_IDS = sorted(set(re.findall(r"\b\d{60,}\b", TEXT)))
FULL_CONDITION_IDS = sorted(set(re.findall(r"0x[0-9a-f]{64}\b", TEXT)))
SAMPLE_TOKEN = FULL_TOKEN_IDS[0]


@dataclass(frozen=True)
class Example:
    origin: str
    value: Any

    @property
    def raw(self) -> bytes:
        return orjson.dumps(self.value)


def _expand(value: Any) -> Any:
    """Fill ``<token>`` placeholders and ``7132…``-style shortened ids with full ones."""
    if isinstance(value, dict):
        return {_expand(k): _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, str):
        if value in ("<token_id>", "<token>"):
            return SAMPLE_TOKEN
        match = re.fullmatch(r"(0x[0-9a-f]+|\d+)…", value)
        if match:
            pool = FULL_CONDITION_IDS if value.startswith("0x") else FULL_TOKEN_IDS
            hits = [full for full in pool if full.startswith(match.group(1))]
            return hits[0] if len(hits) == 1 else value
    return value


def _examples() -> list[Example]:
    found: list[Example] = []
    for i, block in enumerate(re.findall(r"```json\n(.*?)```", TEXT, re.S)):
        found.append(Example(f"block{i}", _expand(orjson.loads(block))))
    prose = re.sub(r"```.*?```", "", TEXT, flags=re.S)
    for i, span in enumerate(re.findall(r"`([\[{][^`]*)`", prose)):
        try:
            found.append(Example(f"inline{i}", _expand(orjson.loads(span))))
        except orjson.JSONDecodeError:
            continue  # shape descriptions such as {"price":str,"size":str}
    return found


EXAMPLES = _examples()


def test_reference_has_examples() -> None:
    assert sum(e.origin.startswith("block") for e in EXAMPLES) >= 15
    assert len(EXAMPLES) >= 50


# --- handlers: one per payload kind ---------------------------------------------------------


def check_gamma_market(ex: Example) -> None:
    market = p.parse_gamma_market(ex.raw)
    raw = ex.value
    assert market.market_id == raw["id"]
    assert isinstance(market.market_id, str)
    assert market.condition_id == raw["conditionId"]
    assert [t.outcome for t in market.tokens] == orjson.loads(raw["outcomes"])
    assert list(market.token_ids) == orjson.loads(raw["clobTokenIds"])
    assert all(isinstance(t, str) for t in market.token_ids)
    prices = [Decimal(x) for x in orjson.loads(raw["outcomePrices"])]
    assert list(market.outcome_prices) == prices
    assert market.updated_at is not None
    assert market.updated_at.tzinfo is UTC
    if raw["id"] == "1557558":
        assert market.start_date == datetime(2026, 3, 11, 9, 29, 1, 328428, tzinfo=UTC)
        assert market.end_date == datetime(2026, 3, 12, 9, 25, tzinfo=UTC)
        assert market.event_id == "260654"
        assert market.series_slug == "btc-up-or-down-5m"
        assert market.tick_size == Decimal("0.01")
        assert market.uma_resolution_statuses == ()
        assert p.market_resolution(market).kind is ResolutionKind.UNRESOLVED
    if raw["id"] == "1460332":
        assert market.closed_time == datetime(2026, 3, 19, 23, 20, 15, tzinfo=UTC)
        assert market.uma_resolution_statuses == ("proposed",)
        assert market.neg_risk_request_id is None  # "" means unset
        resolution = p.market_resolution(market)
        assert resolution.kind is ResolutionKind.WINNER
        assert resolution.winner_outcome == "No"
        assert resolution.winner_token_id == market.tokens[1].token_id


def check_gamma_event(ex: Example) -> None:
    event = p.parse_gamma_event(ex.raw)
    assert event.event_id == ex.value["id"]
    assert event.market_rejects == ()
    assert len(event.markets) == len(ex.value["markets"])
    child = event.markets[0]
    assert child.event_id == event.event_id
    assert child.event_slug == event.slug
    assert child.neg_risk_market_id == event.neg_risk_market_id
    assert event.start_date == datetime(2025, 7, 11, 18, 41, 17, 827458, tzinfo=UTC)
    assert event.liquidity == Decimal("43042905.16152")
    assert event.tags[0].tag_id == "2"


def check_gamma_keyset(ex: Example) -> None:
    envelope = msgspec.json.decode(ex.raw, type=s.GammaMarketsEnvelope)
    page = p.parse_gamma_markets_page(envelope)
    assert page.next_cursor == ex.value["next_cursor"]
    # The reference trims keyset items to their ids; without a conditionId each is rejected
    # (with its id as key), which is what a collector would quarantine.
    assert [r.key for r in page.rejects] + [m.market_id for m in page.items] == ["12", "17", "18"]


def check_book(ex: Example) -> None:
    book = p.parse_book(ex.raw)
    raw = ex.value
    assert book.asset_id == raw["asset_id"]
    assert book.market == raw["market"]
    assert book.timestamp == datetime.fromtimestamp(int(raw["timestamp"]) / 1000, UTC)
    assert book.best_bid is not None
    assert book.best_ask is not None
    assert book.best_bid.price == Decimal(raw["bids"][-1]["price"])  # best = last level
    assert book.best_ask.price == Decimal(raw["asks"][-1]["price"])
    assert book.best_bid.price == max(Decimal(lv["price"]) for lv in raw["bids"])
    assert book.best_ask.price == min(Decimal(lv["price"]) for lv in raw["asks"])
    assert len(book.bids) == len(raw["bids"])
    assert book.hash == raw["hash"]


def check_clob_market(ex: Example) -> None:
    market = p.parse_clob_market(ex.raw)
    assert market.condition_id == ex.value["condition_id"]
    assert [t.token_id for t in market.tokens] == [t["token_id"] for t in ex.value["tokens"]]
    assert market.minimum_tick_size == Decimal("0.001")
    assert market.neg_risk is True
    assert p.clob_market_resolution(market).kind is ResolutionKind.UNRESOLVED


WS_TYPES = {
    "book": BookSnapshot,
    "price_change": PriceChange,
    "last_trade_price": TradePrint,
    "tick_size_change": TickSizeChange,
    "best_bid_ask": BestBidAsk,
    "new_market": NewMarket,
    "market_resolved": MarketResolved,
}


def check_ws(ex: Example) -> None:
    counters = Counters()
    result = decode_frame(ex.raw, RECEIVED, counters)
    assert result.rejects == [], result.rejects
    (message,) = result.messages
    assert isinstance(message, WS_TYPES[ex.value["event_type"]])
    if isinstance(message, PriceChange):
        assert message.items
        assert all(i.asset_id.isdigit() for i in message.items)
        assert message.timestamp == datetime.fromtimestamp(int(ex.value["timestamp"]) / 1000, UTC)
    if isinstance(message, TradePrint):
        assert message.price == Decimal("0.491")
        assert message.side == "SELL"
    if isinstance(message, MarketResolved):
        assert message.winning_asset_id == message.asset_ids[0]
    if isinstance(message, NewMarket):
        assert message.outcomes == ("Yes", "No")
        assert len(message.asset_ids) == 2
        assert message.event_slug == "nvda-above-in-january-2026"


def check_data_v1(ex: Example) -> None:
    trades, rejects = p.parse_data_trades_v1(ex.value)
    assert rejects == []
    assert len(trades) == len(ex.value)
    trade, raw = trades[0], ex.value[0]
    assert trade.token_id == raw["asset"]
    assert trade.condition_id == raw["conditionId"]
    assert trade.price == Decimal("0.001")
    assert trade.size == Decimal("32862.45")
    assert trade.timestamp == datetime.fromtimestamp(raw["timestamp"], UTC)  # seconds
    assert trade.outcome_index == 0
    assert trade.side == "BUY"


def check_data_v2(ex: Example) -> None:
    trade = p.parse_data_trade_v2(ex.raw)
    assert trade.token_id == ex.value["token_id"]
    assert trade.outcome_index is None
    assert trade.timestamp == datetime.fromtimestamp(ex.value["timestamp"], UTC)
    assert trade.event_slug is None
    assert trade.price == Decimal("0.62")


def check_error_body(ex: Example) -> None:
    assert error_in_body(ex.raw) == ex.value["error"]


def check_price_like(ex: Example) -> None:
    value = ex.value
    if "mid" in value:
        assert msgspec.json.decode(ex.raw, type=s.MidpointWire).mid == Decimal(value["mid"])
    elif "spread" in value:
        assert msgspec.json.decode(ex.raw, type=s.SpreadWire).spread == Decimal(value["spread"])
    elif "minimum_tick_size" in value:
        wire = msgspec.json.decode(ex.raw, type=s.TickSizeWire)
        assert wire.minimum_tick_size == Decimal("0.01")
    elif "side" not in value:  # GET /price
        assert msgspec.json.decode(ex.raw, type=s.PriceWire).price == Decimal(value["price"])
    else:  # GET /last-trade-price
        last = p.parse_last_trade(msgspec.json.decode(ex.raw, type=s.LastTradePriceWire))
        assert last.price == Decimal(value["price"])
        assert last.side == (value.get("side") or None)


def check_token_map(ex: Example) -> None:
    raw = msgspec.json.decode(ex.raw, type=dict[str, msgspec.Raw])
    (value,) = ex.value.values()
    if isinstance(value, dict):
        batch = p.parse_prices(raw)
        assert batch.items[SAMPLE_TOKEN].buy == Decimal("0.018")
        assert batch.items[SAMPLE_TOKEN].sell == Decimal("0.03")
    else:
        assert p.parse_midpoints(raw).items == {SAMPLE_TOKEN: Decimal(value)}


def check_history(ex: Example) -> None:
    points, rejects = p.parse_prices_history(msgspec.json.decode(ex.raw, type=s.PricesHistoryWire))
    assert rejects == []
    assert len(points) == len(ex.value["history"])
    for point, raw in zip(points, ex.value["history"], strict=True):
        assert point.t == datetime.fromtimestamp(raw["t"], UTC)
        assert point.p == Decimal(str(raw["p"]))


def check_ws_operation(ex: Example) -> None:
    protocol = MarketProtocol([], ping_interval_s=10, counters=Counters())
    assets = ex.value["assets_ids"]
    if ex.value["operation"] == "subscribe":
        frame = protocol.subscribe(assets)
    else:
        protocol.subscribe(assets)
        frame = protocol.unsubscribe(assets)
    assert frame is not None
    assert orjson.loads(frame) == ex.value


def check_outcome_prices(ex: Example) -> None:
    prices = [Decimal(x) for x in ex.value]
    kind = p.infer_resolution(prices, closed=True, uma_status="resolved").kind
    expected = {
        ("0", "1"): ResolutionKind.WINNER,
        ("0.5", "0.5"): ResolutionKind.FIFTY_FIFTY,
        ("0", "0"): ResolutionKind.VOID,
    }
    assert kind is expected[tuple(ex.value)]


def check_market_fragment(ex: Example) -> None:
    """``feeSchedule``/``clobRewards`` are not modelled: a market carrying them still parses."""
    market = dict(EXAMPLES[0].value)
    market["feeSchedule" if isinstance(ex.value, dict) else "clobRewards"] = ex.value
    assert p.parse_gamma_market(orjson.dumps(market)).market_id == "1557558"


def not_a_client_payload(ex: Example) -> None:
    """Health checks, request bodies, endpoints the clients do not call, RTDS, geoblock."""


Route = tuple[str, Callable[[Any], bool], Callable[[Example], None]]


def _has(*keys: str) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, dict) and all(k in v for k in keys)


ROUTES: list[Route] = [
    ("ws", _has("event_type"), check_ws),
    ("gamma_keyset", _has("$schema", "markets"), check_gamma_keyset),
    ("gamma_event", _has("ticker", "markets"), check_gamma_event),
    ("gamma_market", _has("conditionId", "outcomes"), check_gamma_market),
    ("book", _has("asset_id", "bids", "asks"), check_book),
    ("clob_market", _has("condition_id", "tokens"), check_clob_market),
    (
        "data_v1",
        lambda v: isinstance(v, list) and bool(v) and _has("proxyWallet")(v[0]),
        check_data_v1,
    ),
    ("data_v2", _has("proxy_wallet"), check_data_v2),
    ("error", _has("error"), check_error_body),
    ("ws_operation", _has("assets_ids", "operation"), check_ws_operation),
    ("history", _has("history"), check_history),
    ("token_map", lambda v: isinstance(v, dict) and list(v) == [SAMPLE_TOKEN], check_token_map),
    (
        "price_like",
        lambda v: (
            isinstance(v, dict)
            and len(v) <= 2
            and bool({"price", "mid", "spread", "minimum_tick_size"} & set(v))
        ),
        check_price_like,
    ),
    (
        "outcome_prices",
        lambda v: isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v),
        check_outcome_prices,
    ),
    (
        "market_fragment",
        lambda v: (
            _has("exponent", "rate")(v)
            or (isinstance(v, list) and bool(v) and _has("rewardsDailyRate")(v[0]))
        ),
        check_market_fragment,
    ),
    (
        "skip",
        lambda v: (
            v in ({"data": "OK"}, [], {"neg_risk": True}, {"base_fee": 0})
            or _has("blocked")(v)
            or _has("action", "subscriptions")(v)
            or (isinstance(v, list) and bool(v) and (_has("token_id")(v[0]) or _has("value")(v[0])))
        ),
        not_a_client_payload,
    ),
]


def route_of(ex: Example) -> Route:
    matches = [route for route in ROUTES if route[1](ex.value)]
    assert matches, f"no parser route for reference example {ex.origin}: {ex.raw[:120]!r}"
    return matches[0]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.origin for e in EXAMPLES])
def test_reference_example_parses(example: Example) -> None:
    _name, _match, check = route_of(example)
    check(example)


def test_every_payload_kind_is_covered() -> None:
    routed = {route_of(e)[0] for e in EXAMPLES}
    assert routed >= {
        "ws",
        "gamma_keyset",
        "gamma_event",
        "gamma_market",
        "book",
        "clob_market",
        "data_v1",
        "data_v2",
        "error",
        "history",
        "token_map",
        "price_like",
        "ws_operation",
        "outcome_prices",
    }
    ws_types = {e.value["event_type"] for e in EXAMPLES if route_of(e)[0] == "ws"}
    assert ws_types == set(WS_TYPES)
    forms = [
        e.value
        for e in EXAMPLES
        if isinstance(e.value, dict) and e.value.get("event_type") == "price_change"
    ]
    assert {k for f in forms for k in ("price_changes", "changes", "price") if k in f} == {
        "price_changes",
        "changes",
        "price",
    }


def test_all_ws_examples_in_one_array_frame() -> None:
    """Frames may be JSON arrays of mixed event objects (initial dumps, bursts)."""
    messages = [e.value for e in EXAMPLES if isinstance(e.value, dict) and "event_type" in e.value]
    counters = Counters()
    result = decode_frame(orjson.dumps(messages), RECEIVED, counters)
    assert result.rejects == []
    assert len(result.messages) == len(messages)
    assert all(m.received_at == RECEIVED for m in result.messages)
    assert counters.get("ws_messages") == len(messages)
