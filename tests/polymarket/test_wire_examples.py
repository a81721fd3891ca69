"""Every payload under ``tests/wire_examples`` goes through the client's parsers.

Each directory is a payload kind with one check here; a kind without a check (or a check
without examples) fails ``test_every_payload_kind_is_checked``, so a new example cannot be
silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import orjson
import pytest

from polyfarm.errors import PayloadError
from polyfarm.polymarket import parse as p
from polyfarm.polymarket import schemas as s
from polyfarm.polymarket.domain import (
    BestBidAsk,
    BookSnapshot,
    Counters,
    MarketResolved,
    NewMarket,
    PriceChange,
    ProtocolVersion,
    ResolutionKind,
    TickSizeChange,
    TradePrint,
    WsCount,
)
from polyfarm.polymarket.http import error_in_body
from polyfarm.polymarket.ws_protocol import MarketProtocol, decode_frame
from tests.wire_examples import WireExample, example, examples, of_kind

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
SAMPLE_TOKEN = "100621704916396384184205224105871827982844371725320616822883322969092312254616"


def test_there_are_examples_of_every_api() -> None:
    assert len(examples()) >= 60
    assert {"gamma_market", "clob_book", "ws_message", "data_trades_v2"} <= {
        e.kind for e in examples()
    }


# --- Gamma ----------------------------------------------------------------------------------


def check_gamma_market(ex: WireExample) -> None:
    market = p.parse_gamma_market(ex.raw)
    raw = ex.value
    ctf = orjson.loads(raw["clobTokenIds"]) if "clobTokenIds" in raw else None
    positions = raw.get("positionIds")
    # The trading ids are chosen by ``version``, even when both id fields are present.
    trading = positions if raw.get("version") == "v2" else ctf
    assert list(market.token_ids) == trading
    assert [t.ctf_token_id for t in market.tokens] == (ctf or [None, None])
    assert [t.position_id for t in market.tokens] == (positions or [None, None])
    assert market.protocol_version is ProtocolVersion(raw.get("version", "v1"))
    assert market.declared_version == raw.get("version")
    assert market.market_id == raw["id"]
    assert market.condition_id == raw["conditionId"]
    assert [t.outcome for t in market.tokens] == orjson.loads(raw["outcomes"])
    prices = [Decimal(x) for x in orjson.loads(raw["outcomePrices"])]
    assert list(market.outcome_prices) == prices
    assert market.updated_at is not None
    assert market.updated_at.tzinfo is UTC
    if ex.name == "open_updown_2026-03":
        assert market.start_date == datetime(2026, 3, 11, 9, 29, 1, 328428, tzinfo=UTC)
        assert market.end_date == datetime(2026, 3, 12, 9, 25, tzinfo=UTC)
        assert market.event_id == "260654"
        assert market.series_slug == "btc-up-or-down-5m"
        assert market.tick_size == Decimal("0.01")
        assert market.min_order_size == Decimal("5")
        assert market.uma_resolution_statuses == ()
        assert p.market_resolution(market).kind is ResolutionKind.UNRESOLVED
    if ex.name == "resolved_binary_2026-03":
        assert market.closed_time == datetime(2026, 3, 19, 23, 20, 15, tzinfo=UTC)
        assert market.uma_resolution_statuses == ("proposed",)
        assert market.neg_risk_request_id is None  # "" means unset
        resolution = p.market_resolution(market)
        assert resolution.kind is ResolutionKind.WINNER
        assert resolution.winner_outcome == "No"
        assert resolution.winner_token_id == market.tokens[1].token_id


REFUSALS = {
    "unknown_version_composite": "unknown protocol version 'v3'",
    "v2_id_count_mismatch_composite": "positionIds has 1 items, outcomes 2",
    "v2_non_decimal_id_composite": "positionIds: not a decimal token id string",
    "v2_without_position_ids_composite": "positionIds is missing",
}


def check_gamma_market_refused(ex: WireExample) -> None:
    """Refused with a reason, and kept with its raw payload for the quarantine."""
    with pytest.raises(PayloadError, match=REFUSALS[ex.name]):
        p.parse_gamma_market(ex.raw)
    good, rejects = p.parse_gamma_markets([msgspec.Raw(ex.raw)])
    assert good == []
    (reject,) = rejects
    assert reject.key == ex.value["id"]
    assert orjson.loads(reject.raw) == ex.value
    assert REFUSALS[ex.name] in reject.reason


def check_gamma_event(ex: WireExample) -> None:
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


def check_gamma_keyset(ex: WireExample) -> None:
    envelope = msgspec.json.decode(ex.raw, type=s.GammaMarketsEnvelope)
    page = p.parse_gamma_markets_page(envelope)
    assert page.next_cursor == ex.value["next_cursor"]
    # The recorded page is trimmed to ids; without a conditionId each is rejected (with its id
    # as key), which is what a collector would quarantine.
    assert [r.key for r in page.rejects] + [m.market_id for m in page.items] == ["12", "17", "18"]


def check_outcome_prices(ex: WireExample) -> None:
    prices = [Decimal(x) for x in ex.value]
    kind = p.infer_resolution(prices, closed=True, uma_status="resolved").kind
    expected = {
        ("0", "1"): ResolutionKind.WINNER,
        ("0.5", "0.5"): ResolutionKind.FIFTY_FIFTY,
        ("0", "0"): ResolutionKind.VOID,
    }
    assert kind is expected[tuple(ex.value)]


def check_market_fragment(ex: WireExample) -> None:
    """``feeSchedule``/``clobRewards`` are not modelled: a market carrying them still parses."""
    market = dict(example("gamma_market", "open_updown_2026-03").value)
    market["feeSchedule" if isinstance(ex.value, dict) else "clobRewards"] = ex.value
    assert p.parse_gamma_market(orjson.dumps(market)).market_id == "1557558"


# --- CLOB -----------------------------------------------------------------------------------


def check_book(ex: WireExample) -> None:
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


def check_clob_market(ex: WireExample) -> None:
    market = p.parse_clob_market(ex.raw)
    assert market.condition_id == ex.value["condition_id"]
    assert [t.token_id for t in market.tokens] == [t["token_id"] for t in ex.value["tokens"]]
    assert market.minimum_tick_size == Decimal("0.001")
    assert market.neg_risk is True
    assert p.clob_market_resolution(market).kind is ResolutionKind.UNRESOLVED


def check_clob_market_info(ex: WireExample) -> None:
    info = p.parse_clob_market_info(ex.raw)
    assert info.condition_id == ex.value["c"]
    assert [t.token_id for t in info.tokens] == [t["t"] for t in ex.value["t"]]
    assert [t.outcome for t in info.tokens] == ["Yes", "No"]
    assert info.min_tick_size == Decimal("0.001")
    assert info.min_order_size == Decimal(5)
    assert info.neg_risk is True
    assert (info.fee_rate, info.fee_exponent, info.fee_taker_only) == (Decimal("0.03"), 1, True)
    without_nr = {k: v for k, v in ex.value.items() if k != "nr"}
    assert p.parse_clob_market_info(orjson.dumps(without_nr)).neg_risk is False


def check_market_by_token(ex: WireExample) -> None:
    found = p.parse_market_by_token(ex.raw)
    assert found.condition_id == ex.value["condition_id"]
    assert (found.primary_token_id, found.secondary_token_id) == (
        ex.value["primary_token_id"],
        ex.value["secondary_token_id"],
    )


def check_clob_version(ex: WireExample) -> None:
    assert msgspec.json.decode(ex.raw, type=s.VersionWire).version == 2


def check_clob_ok(ex: WireExample) -> None:
    assert msgspec.json.decode(ex.raw, type=str) == "OK"


def check_price_like(ex: WireExample) -> None:
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


def check_token_map(ex: WireExample) -> None:
    raw = msgspec.json.decode(ex.raw, type=dict[str, msgspec.Raw])
    (value,) = ex.value.values()
    if isinstance(value, dict):
        batch = p.parse_prices(raw)
        assert batch.items[SAMPLE_TOKEN].buy == Decimal("0.018")
        assert batch.items[SAMPLE_TOKEN].sell == Decimal("0.03")
    else:
        assert p.parse_midpoints(raw).items == {SAMPLE_TOKEN: Decimal(value)}


def check_history(ex: WireExample) -> None:
    points, rejects = p.parse_prices_history(msgspec.json.decode(ex.raw, type=s.PricesHistoryWire))
    assert rejects == []
    assert len(points) == len(ex.value["history"])
    for point, raw in zip(points, ex.value["history"], strict=True):
        assert point.t == datetime.fromtimestamp(raw["t"], UTC)
        assert point.p == Decimal(str(raw["p"]))
        assert point.resolution_s is None


def not_read_by_the_client(ex: WireExample) -> None:
    """``/neg-risk`` and ``/fee-rate``: polyfarm reads neg risk from Gamma or ``/clob-markets``
    and fees from Gamma; the shapes are kept for the simulator's tests."""
    assert isinstance(ex.value, dict)


# --- WebSocket ------------------------------------------------------------------------------

WS_TYPES = {
    "book": BookSnapshot,
    "price_change": PriceChange,
    "last_trade_price": TradePrint,
    "tick_size_change": TickSizeChange,
    "best_bid_ask": BestBidAsk,
    "new_market": NewMarket,
    "market_resolved": MarketResolved,
}


def check_ws(ex: WireExample) -> None:
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
        assert message.asset_ids == tuple(ex.value["assets_ids"])
        assert message.clob_token_ids == tuple(ex.value["clob_token_ids"])
        assert message.event_slug == "nvda-above-in-january-2026"
    if isinstance(message, BookSnapshot) and "tick_size" in ex.value:
        # The 2026 form: the hash inputs it lacks stay unknown (seeded from metadata later).
        assert message.book.min_order_size is None
        assert message.book.neg_risk is None
        assert message.book.tick_size == Decimal(ex.value["tick_size"])


def check_ws_request(ex: WireExample) -> None:
    protocol = MarketProtocol([], ping_interval_s=5, counters=Counters())
    assets = ex.value["assets_ids"]
    if ex.value["operation"] == "subscribe":
        frame = protocol.subscribe(assets)
    else:
        protocol.subscribe(assets)
        frame = protocol.unsubscribe(assets)
    assert frame is not None
    assert orjson.loads(frame) == ex.value


# --- Data API -------------------------------------------------------------------------------


def check_data_v1(ex: WireExample) -> None:
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


def check_data_v2_row(ex: WireExample) -> None:
    trade = p.parse_data_trade_v2(ex.raw)
    assert trade.token_id == ex.value["token_id"]
    assert trade.outcome_index is None  # 999: unknown
    assert trade.timestamp == datetime.fromtimestamp(ex.value["timestamp"], UTC)
    assert trade.event_slug is None  # "": unknown
    assert trade.price == Decimal("0.62")


def check_data_v2_page(ex: WireExample) -> None:
    page = p.parse_data_trades_v2_page(msgspec.json.decode(ex.raw, type=s.DataTradesV2Envelope))
    assert page.rejects == ()
    assert [t.token_id for t in page.items] == [row["token_id"] for row in ex.value["data"]]
    assert all(t.outcome_index is None and t.event_slug is None for t in page.items)
    assert page.next_cursor == ex.value["pagination"]["next_cursor"]


def check_data_prices_history(ex: WireExample) -> None:
    envelope = msgspec.json.decode(ex.raw, type=s.DataPricesHistoryEnvelope)
    page = p.parse_data_prices_history_page(envelope)
    assert page.rejects == ()
    assert page.next_cursor is None
    rows = ex.value["data"]
    assert [(int(pt.t.timestamp()), pt.p, pt.resolution_s) for pt in page.items] == [
        (r["timestamp"], Decimal(str(r["price"])), r["resolution_seconds"]) for r in rows
    ]


def check_data_root(ex: WireExample) -> None:
    """A healthy answer carries no ``error`` key and must not read as one."""
    assert error_in_body(ex.raw) is None


def check_error_body(ex: WireExample) -> None:
    assert error_in_body(ex.raw) == ex.value["error"]


CHECKS: dict[str, Callable[[WireExample], None]] = {
    "gamma_market": check_gamma_market,
    "gamma_market_refused": check_gamma_market_refused,
    "gamma_event": check_gamma_event,
    "gamma_keyset": check_gamma_keyset,
    "gamma_outcome_prices": check_outcome_prices,
    "gamma_market_fragment": check_market_fragment,
    "clob_book": check_book,
    "clob_market": check_clob_market,
    "clob_market_info": check_clob_market_info,
    "clob_market_by_token": check_market_by_token,
    "clob_version": check_clob_version,
    "clob_ok": check_clob_ok,
    "clob_price": check_price_like,
    "clob_token_map": check_token_map,
    "clob_prices_history": check_history,
    "clob_flag": not_read_by_the_client,
    "ws_message": check_ws,
    "ws_request": check_ws_request,
    "data_trades_v1": check_data_v1,
    "data_trade_v2": check_data_v2_row,
    "data_trades_v2": check_data_v2_page,
    "data_prices_history_v2": check_data_prices_history,
    "data_root": check_data_root,
    "error_body": check_error_body,
}


@pytest.mark.parametrize("ex", examples(), ids=[e.origin for e in examples()])
def test_wire_example_parses(ex: WireExample) -> None:
    CHECKS[ex.kind](ex)


def test_every_payload_kind_is_checked() -> None:
    assert {e.kind for e in examples()} == set(CHECKS)


def test_every_ws_message_type_and_price_change_form_has_an_example() -> None:
    messages = [e.value for e in of_kind("ws_message")]
    assert {m["event_type"] for m in messages} == set(WS_TYPES)
    forms = {k for m in messages if m["event_type"] == "price_change" for k in m}
    assert {"price_changes", "changes", "price"} <= forms


def test_all_ws_examples_in_one_array_frame() -> None:
    """Frames may be JSON arrays of mixed event objects (initial dumps, bursts)."""
    messages = [e.value for e in of_kind("ws_message")]
    counters = Counters()
    result = decode_frame(orjson.dumps(messages), RECEIVED, counters)
    assert result.rejects == []
    assert len(result.messages) == len(messages)
    assert all(m.received_at == RECEIVED for m in result.messages)
    assert counters.get(WsCount.MESSAGES) == len(messages)
