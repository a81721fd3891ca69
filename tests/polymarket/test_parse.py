"""Pure-parser unit tests with hand-made payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import orjson
import pytest

from polyfarm.errors import PayloadError
from polyfarm.polymarket import _convert as cv
from polyfarm.polymarket import parse as p
from polyfarm.polymarket import schemas as s
from polyfarm.polymarket.domain import ResolutionKind
from tests.polymarket.rest_payloads import COND, TOK_A, TOK_B, book, market

# --- primitives ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-11T09:29:01.328428Z", datetime(2026, 3, 11, 9, 29, 1, 328428, tzinfo=UTC)),
        ("2026-03-11T09:29:01.3Z", datetime(2026, 3, 11, 9, 29, 1, 300000, tzinfo=UTC)),
        ("2026-03-12T09:25:00Z", datetime(2026, 3, 12, 9, 25, tzinfo=UTC)),
        ("2026-03-19 23:20:15+00", datetime(2026, 3, 19, 23, 20, 15, tzinfo=UTC)),
        ("2023-10-25 18:55:50.674+00", datetime(2023, 10, 25, 18, 55, 50, 674000, tzinfo=UTC)),
        ("2026-03-12", datetime(2026, 3, 12, tzinfo=UTC)),
        ("2026-03-12T02:00:00+02:00", datetime(2026, 3, 12, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_gamma_time_formats(text: str | None, expected: datetime | None) -> None:
    assert cv.gamma_time(text, "t") == expected


def test_gamma_time_rejects_garbage() -> None:
    with pytest.raises(PayloadError, match="endDate"):
        cv.gamma_time("next tuesday", "endDate")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1728799418260", datetime(2024, 10, 13, 6, 3, 38, 260000, tzinfo=UTC)),  # ms string
        (1728799418, datetime(2024, 10, 13, 6, 3, 38, tzinfo=UTC)),  # seconds number
        (1728799418260, datetime(2024, 10, 13, 6, 3, 38, 260000, tzinfo=UTC)),
    ],
)
def test_epoch_seconds_and_milliseconds(value: object, expected: datetime) -> None:
    assert cv.epoch(value) == expected


@pytest.mark.parametrize("value", ["", "-5", "1.5", "abc", 0, -1, True, None, 10**30])
def test_epoch_rejects(value: object) -> None:
    with pytest.raises(PayloadError):
        cv.epoch(value)


@pytest.mark.parametrize("value", [".48", "0.430", "1", "0", 0.5])
def test_decimal_text_accepts(value: object) -> None:
    assert cv.decimal_text(value, "x") == Decimal(str(value))


@pytest.mark.parametrize("value", ["NaN", "Infinity", "", "1,5", None, True, [1]])
def test_decimal_text_rejects(value: object) -> None:
    with pytest.raises(PayloadError):
        cv.decimal_text(value, "x")


def test_ids_are_strict() -> None:
    assert cv.token_id(TOK_A) == TOK_A
    with pytest.raises(PayloadError):
        cv.token_id(int(TOK_A))  # a JSON number would have lost precision
    with pytest.raises(PayloadError):
        cv.condition_id("0x1234")
    assert cv.condition_id(COND.upper().replace("0X", "0x")) == COND
    assert cv.numeric_id(17) == "17"
    with pytest.raises(PayloadError):
        cv.numeric_id("12a")


# --- Gamma ---------------------------------------------------------------------------------


def test_gamma_market_zips_outcomes_prices_and_tokens() -> None:
    m = p.parse_gamma_market(market())
    assert [(t.index, t.outcome, t.token_id, t.price) for t in m.tokens] == [
        (0, "Yes", TOK_A, Decimal("0.6")),
        (1, "No", TOK_B, Decimal("0.4")),
    ]


def test_gamma_market_accepts_real_arrays_and_int_id() -> None:
    m = p.parse_gamma_market(market(id=42, outcomes=["Yes", "No"], clobTokenIds=[TOK_A, TOK_B]))
    assert m.market_id == "42"
    assert m.token_ids == (TOK_A, TOK_B)


def test_gamma_market_without_clob_tokens_keeps_outcomes() -> None:
    m = p.parse_gamma_market(market(clobTokenIds=None, outcomePrices=None))
    assert [(t.outcome, t.token_id, t.price) for t in m.tokens] == [
        ("Yes", None, None),
        ("No", None, None),
    ]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"clobTokenIds": orjson.dumps([TOK_A]).decode()}, "clobTokenIds"),
        ({"outcomePrices": '["0.5"]'}, "outcomePrices"),
        ({"outcomePrices": '["1.5", "0"]'}, "outcomePrices"),
        ({"outcomes": "[Yes, No]"}, "outcomes"),
        ({"outcomes": '{"a": 1}'}, "outcomes"),
        ({"conditionId": None}, "conditionId"),
        ({"id": "abc"}, "id"),
        ({"clobTokenIds": "[1, 2]"}, "clobTokenIds"),
        ({"endDate": "soon"}, "endDate"),
    ],
)
def test_gamma_market_rejects(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        p.parse_gamma_market(market(**overrides))


def test_gamma_market_tolerates_unknown_and_odd_auxiliary_fields() -> None:
    m = p.parse_gamma_market(
        market(brandNewField={"x": 1}, volume24hr="n/a", liquidity="", bestBid=None)
    )
    assert m.volume_24hr is None
    assert m.liquidity is None
    assert m.best_bid is None


def test_gamma_markets_list_parser_isolates_bad_records() -> None:
    good, rejects = p.parse_gamma_markets([market(), market(id="x"), market(id="43")])
    assert [m.market_id for m in good] == ["42", "43"]
    assert len(rejects) == 1
    assert rejects[0].key == "x"
    assert b'"x"' in rejects[0].raw


def test_gamma_event_keeps_good_markets_and_rejects_bad() -> None:
    event = {"id": "7", "slug": "ev", "markets": [market(), market(conditionId="0x1")]}
    parsed = p.parse_gamma_event(event)
    assert [m.market_id for m in parsed.markets] == ["42"]
    assert parsed.markets[0].event_id == "7"
    assert parsed.markets[0].event_slug == "ev"
    assert len(parsed.market_rejects) == 1


def test_keyset_page_treats_empty_cursor_as_end() -> None:
    body = orjson.dumps({"markets": [market()], "next_cursor": ""})
    page = p.parse_gamma_markets_page(msgspec.json.decode(body, type=s.GammaMarketsEnvelope))
    assert page.next_cursor is None
    assert len(page.items) == 1


# --- books ---------------------------------------------------------------------------------


def test_book_sorted_so_best_is_last_whatever_the_wire_order() -> None:
    b = p.parse_book(book())
    assert [lv.price for lv in b.bids] == [Decimal("0.48"), Decimal("0.5")]
    assert [lv.price for lv in b.asks] == [Decimal("0.6"), Decimal("0.430")]
    assert b.best_bid is not None
    assert b.best_bid.price == Decimal("0.5")
    assert b.best_ask is not None
    assert b.best_ask.price == Decimal("0.43")
    assert b.spread == Decimal("-0.07")  # crossed on purpose: the parser does not judge


def test_book_accepts_buys_sells_and_empty_sides() -> None:
    b = p.parse_book(book(bids=None, asks=None, buys=[{"price": "0.1", "size": "1"}], sells=[]))
    assert b.best_bid is not None
    assert b.best_ask is None
    assert b.midpoint is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"bids": None, "asks": None},
        {"asks": None},
        {"asset_id": 123},
        {"market": "0xnope"},
        {"timestamp": "yesterday"},
        {"bids": [{"price": "2", "size": "1"}]},
        {"bids": [{"price": "0.5", "size": "-1"}]},
        {"bids": [{"price": "NaN", "size": "1"}]},
        {"bids": [{"price": "0.5"}]},
        {"last_trade_price": "abc"},
    ],
)
def test_book_rejects(overrides: dict[str, Any]) -> None:
    with pytest.raises(PayloadError):
        p.parse_book(book(**overrides))


def test_book_optional_fields() -> None:
    b = p.parse_book(
        book(tick_size="0.001", min_order_size="5", last_trade_price="", neg_risk=True)
    )
    assert b.tick_size == Decimal("0.001")
    assert b.min_order_size == 5
    assert b.last_trade_price is None


# --- CLOB batches and history -------------------------------------------------------------


def test_price_batches_reject_per_entry() -> None:
    raw = msgspec.json.decode(
        orjson.dumps({TOK_A: {"BUY": "0.4", "SELL": "0.5"}, TOK_B: {"BUY": "x"}, "bad": {}}),
        type=dict[str, msgspec.Raw],
    )
    batch = p.parse_prices(raw)
    assert list(batch.items) == [TOK_A]
    assert {r.key for r in batch.rejects} == {TOK_B, "bad"}


def test_last_trade_prices_with_empty_side() -> None:
    batch = p.parse_last_trade_prices(
        [
            {"token_id": TOK_A, "price": "0.5", "side": ""},
            {"token_id": TOK_B, "price": "0.43", "side": "buy"},
        ]
    )
    assert batch.items[TOK_A].side is None
    assert batch.items[TOK_B].side == "BUY"


def test_history_is_sorted_and_bad_points_rejected() -> None:
    wire = msgspec.json.decode(
        orjson.dumps({"history": [{"t": 20, "p": 0.2}, {"t": 10, "p": 0.1}, {"t": 30, "p": 7}]}),
        type=s.PricesHistoryWire,
    )
    points, rejects = p.parse_prices_history(wire)
    assert [pt.p for pt in points] == [Decimal("0.1"), Decimal("0.2")]
    assert len(rejects) == 1


def test_clob_market_resolution_uses_winner_flags() -> None:
    raw = {
        "condition_id": COND,
        "closed": True,
        "tokens": [
            {"token_id": TOK_A, "outcome": "Yes", "price": 0, "winner": False},
            {"token_id": TOK_B, "outcome": "No", "price": 1, "winner": True},
        ],
    }
    resolution = p.clob_market_resolution(p.parse_clob_market(raw))
    assert resolution.kind is ResolutionKind.WINNER
    assert resolution.winner_token_id == TOK_B
    fifty = p.parse_clob_market({**raw, "is_50_50_outcome": True})
    assert p.clob_market_resolution(fifty).kind is ResolutionKind.FIFTY_FIFTY


# --- Data API ------------------------------------------------------------------------------


def test_data_v1_and_v2_rows_become_one_type() -> None:
    v1 = {
        "conditionId": COND,
        "asset": TOK_A,
        "side": "SELL",
        "price": 0.25,
        "size": 4,
        "timestamp": 1780533322,
        "proxyWallet": "0xabc",
        "transactionHash": "0xdef",
    }
    v2 = {
        "condition_id": COND,
        "token_id": TOK_A,
        "side": "SELL",
        "price": 0.25,
        "size": 4,
        "timestamp": 1780533322,
        "proxy_wallet": "0xabc",
        "transaction_hash": "0xdef",
    }
    a, b = p.parse_data_trade_v1(v1), p.parse_data_trade_v2(v2)
    assert a == b
    assert a.notional == Decimal("1.00")
    assert a.dedupe_key == b.dedupe_key


@pytest.mark.parametrize(
    "overrides",
    [
        {"asset": 5},
        {"side": "HOLD"},
        {"price": 1.2},
        {"size": -3},
        {"timestamp": "x"},
        {"conditionId": ""},
    ],
)
def test_data_v1_rejects(overrides: dict[str, Any]) -> None:
    row = {
        "conditionId": COND,
        "asset": TOK_A,
        "side": "BUY",
        "price": 0.5,
        "size": 1,
        "timestamp": 1780533322,
    }
    with pytest.raises(PayloadError):
        p.parse_data_trade_v1({**row, **overrides})


# --- resolution ----------------------------------------------------------------------------


D = Decimal


@pytest.mark.parametrize(
    ("prices", "closed", "uma", "kind", "winner"),
    [
        ([D("1"), D("0")], True, "resolved", ResolutionKind.WINNER, 0),
        ([D("0.001"), D("0.999")], True, None, ResolutionKind.WINNER, 1),  # seed: > 0.95
        ([D("0.96"), D("0.04")], True, None, ResolutionKind.WINNER, 0),
        ([D("0.95"), D("0.05")], True, None, ResolutionKind.UNRESOLVED, None),  # not > 0.95
        ([D("1"), D("0")], False, "resolved", ResolutionKind.UNRESOLVED, None),  # open market
        ([D("1"), D("0")], True, "disputed", ResolutionKind.UNRESOLVED, None),  # not final
        ([D("1"), D("0")], True, "proposed", ResolutionKind.UNRESOLVED, None),
        ([D("0.5"), D("0.5")], True, "resolved", ResolutionKind.FIFTY_FIFTY, None),
        ([D("0"), D("0")], True, "resolved", ResolutionKind.VOID, None),
        ([D("0.3452"), D("0.6548")], True, "resolved", ResolutionKind.UNRESOLVED, None),  # scalar
        ([D("0.97"), D("0.98")], True, None, ResolutionKind.UNRESOLVED, None),  # two "winners"
        ([], True, "resolved", ResolutionKind.UNRESOLVED, None),
        ([D("1"), None], True, "resolved", ResolutionKind.UNRESOLVED, None),
    ],
)
def test_infer_resolution(
    prices: list[Decimal | None],
    closed: bool,
    uma: str | None,
    kind: ResolutionKind,
    winner: int | None,
) -> None:
    result = p.infer_resolution(prices, closed, uma)
    assert (result.kind, result.winner_index) == (kind, winner)


def test_market_resolution_names_the_winner() -> None:
    m = p.parse_gamma_market(
        market(closed=True, outcomePrices='["0", "1"]', umaResolutionStatus="resolved")
    )
    r = p.market_resolution(m)
    assert (r.kind, r.winner_token_id, r.winner_outcome) == (ResolutionKind.WINNER, TOK_B, "No")
