"""The sans-I/O market-channel core, driven without any socket."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from polyfarm.polymarket.domain import BookSnapshot, Counters, PriceChange, TradePrint, WsCount
from polyfarm.polymarket.ws_protocol import MarketProtocol, decode_frame
from tests.polymarket.ws_payloads import AT, COND, TOK_A, TOK_B, trade, ws_book


def frame(value: Any) -> bytes:
    return orjson.dumps(value)


def test_single_object_and_array_frames() -> None:
    counters = Counters()
    one = decode_frame(frame(trade()), AT, counters)
    many = decode_frame(frame([ws_book(), trade(), trade(size="4")]), AT, counters)
    assert [type(m) for m in one.messages] == [TradePrint]
    assert [type(m) for m in many.messages] == [BookSnapshot, TradePrint, TradePrint]
    assert counters.get(WsCount.MESSAGES) == 4


def test_book_without_event_type_is_detected_by_its_sides() -> None:
    raw = ws_book()
    del raw["event_type"]
    (message,) = decode_frame(frame(raw), AT, Counters()).messages
    assert isinstance(message, BookSnapshot)
    assert message.book.asset_id == TOK_A


def test_book_with_buys_and_sells_aliases() -> None:
    raw = ws_book(buys=[{"price": "0.3", "size": "2"}], sells=[{"price": "0.7", "size": "2"}])
    del raw["bids"], raw["asks"]
    (message,) = decode_frame(frame(raw), AT, Counters()).messages
    assert isinstance(message, BookSnapshot)
    assert message.book.best_bid is not None
    assert message.book.best_bid.price == Decimal("0.3")


def test_unknown_event_types_are_ignored_and_counted() -> None:
    counters = Counters()
    result = decode_frame(frame([{"event_type": "shiny_new_thing", "x": 1}, trade()]), AT, counters)
    assert len(result.messages) == 1
    assert result.rejects == []
    assert counters.get(WsCount.UNKNOWN_EVENT_TYPE) == 1


@pytest.mark.parametrize("text", ["PONG", "PING", "NO NEW ASSETS", " PONG\n"])
def test_control_text_is_not_json_and_not_an_error(text: str) -> None:
    counters = Counters()
    result = decode_frame(text, AT, counters)
    assert result.messages == []
    assert result.rejects == []
    assert result.control == text.strip()
    assert counters.get(WsCount.BAD_FRAME) == 0


@pytest.mark.parametrize("text", ["{not json", "", "42", '"a string"', "[1, 2]", "nul", "[{]"])
def test_garbage_is_rejected_not_raised(text: str) -> None:
    counters = Counters()
    result = decode_frame(text, AT, counters)
    assert result.messages == []
    assert len(result.rejects) >= 1
    assert counters.get(WsCount.BAD_FRAME) + counters.get(WsCount.BAD_MESSAGE) >= 1


def test_bad_element_does_not_cost_its_neighbours() -> None:
    counters = Counters()
    bad = trade(price="1.7")
    result = decode_frame(frame([trade(), bad, ws_book(asset_id=99)]), AT, counters)
    assert len(result.messages) == 1
    assert len(result.rejects) == 2
    assert counters.get(WsCount.BAD_MESSAGE) == 2
    assert b"1.7" in result.rejects[0].raw


def test_price_change_forms() -> None:
    current = {
        "event_type": "price_change",
        "market": COND,
        "timestamp": "1757908892351",
        "price_changes": [
            {
                "asset_id": TOK_A,
                "price": "0.5",
                "size": "0",
                "side": "BUY",
                "hash": "h1",
                "best_bid": "0.49",
                "best_ask": "",
            },
            {"asset_id": TOK_B, "price": ".5", "size": "200", "side": "SELL"},
        ],
    }
    legacy = {
        "event_type": "price_change",
        "market": COND,
        "timestamp": "1729084877448",
        "asset_id": TOK_A,
        "hash": "h",
        "changes": [{"price": "0.4", "side": "SELL", "size": "3300"}],
    }
    flat = {
        "event_type": "price_change",
        "market": COND,
        "timestamp": "1723967931411",
        "asset_id": TOK_B,
        "price": "0.514",
        "side": "SELL",
        "size": "21574.08",
        "hash": "f",
    }
    result = decode_frame(frame([current, legacy, flat]), AT, Counters())
    assert result.rejects == []
    a, b, c = (m for m in result.messages if isinstance(m, PriceChange))
    assert [(i.asset_id, i.size, i.best_bid, i.best_ask) for i in a.items] == [
        (TOK_A, Decimal("0"), Decimal("0.49"), None),
        (TOK_B, Decimal("200"), None, None),
    ]
    assert [(i.asset_id, i.price, i.hash) for i in b.items] == [(TOK_A, Decimal("0.4"), "h")]
    assert [(i.asset_id, i.side) for i in c.items] == [(TOK_B, "SELL")]


def test_price_change_without_levels_is_rejected() -> None:
    bare = {"event_type": "price_change", "market": COND, "timestamp": "1"}
    assert len(decode_frame(frame(bare), AT, Counters()).rejects) == 1


def test_protocol_subscribe_first_then_ping_schedule() -> None:
    protocol = MarketProtocol([TOK_A, TOK_B, TOK_A], ping_interval_s=10, counters=Counters())
    assert not protocol.ping_due(10**9)  # never PING before the subscription went out
    first = orjson.loads(protocol.connection_opened(now=100.0))
    assert first == {"assets_ids": [TOK_A, TOK_B], "type": "market", "custom_feature_enabled": True}
    assert not protocol.ping_due(109.9)
    assert protocol.ping_due(110.0)
    assert protocol.ping_sent(110.0) == "PING"
    assert protocol.next_ping_at == 120.0


def test_protocol_dynamic_subscriptions() -> None:
    protocol = MarketProtocol([TOK_A], ping_interval_s=10, counters=Counters())
    assert protocol.subscribe([TOK_A]) is None  # already subscribed: nothing to send
    sub = orjson.loads(protocol.subscribe([TOK_A, TOK_B]) or "")
    assert sub == {"assets_ids": [TOK_B], "operation": "subscribe", "custom_feature_enabled": True}
    unsub = orjson.loads(protocol.unsubscribe([TOK_A, "5"]) or "")
    assert unsub == {"assets_ids": [TOK_A], "operation": "unsubscribe"}
    assert protocol.asset_ids == (TOK_B,)
    # A reconnect re-sends the full current subscription.
    assert orjson.loads(protocol.connection_opened(0.0))["assets_ids"] == [TOK_B]


def test_last_data_at_ignores_control_and_garbage() -> None:
    protocol = MarketProtocol([TOK_A], ping_interval_s=10, counters=Counters())
    protocol.receive("PONG", received_at=AT, now=1.0)
    protocol.receive("garbage", received_at=AT, now=2.0)
    assert protocol.last_data_at is None
    protocol.receive(frame(trade()), received_at=AT, now=3.0)
    protocol.receive("NO NEW ASSETS", received_at=AT, now=4.0)
    assert protocol.last_data_at == 3.0
