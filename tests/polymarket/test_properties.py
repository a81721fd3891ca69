"""Property tests: arbitrary or garbled input never makes a parser raise anything but
``PayloadError`` (and the frame decoder never raises at all); a garbled strict field is
rejected, and kept whole for quarantine, while a garbled statistic costs only itself."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from polyfarm.errors import PayloadError
from polyfarm.polymarket import parse as p
from polyfarm.polymarket import schemas as s
from polyfarm.polymarket.domain import Counters, Page, Reject, WsCount
from polyfarm.polymarket.ws_protocol import decode_frame
from tests.polymarket.rest_payloads import TOK_A, TOK_B, book, market
from tests.polymarket.ws_payloads import trade, ws_book


def dumps(value: object) -> bytes:
    """stdlib json: unlike orjson it encodes integers beyond 64 bits, which hypothesis loves."""
    return json.dumps(value).encode()


PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["0.5", ".48", "0.430", "NaN", "1e999", "", "[]", '["a"]', "0x" + "a" * 64]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)

PARSERS: dict[str, Callable[[Any], object]] = {
    "gamma_market": p.parse_gamma_market,
    "gamma_event": p.parse_gamma_event,
    "book": p.parse_book,
    "clob_market": p.parse_clob_market,
    "data_v1": p.parse_data_trade_v1,
    "data_v2": p.parse_data_trade_v2,
}
VALID = {
    "gamma_market": market(),
    "gamma_event": {"id": "1", "markets": [market()]},
    "book": book(),
    "clob_market": {"condition_id": "0x" + "ab" * 32, "tokens": [{"token_id": "1"}]},
    "data_v1": {
        "conditionId": "0x" + "ab" * 32,
        "asset": "1",
        "side": "BUY",
        "price": 0.5,
        "size": 1,
        "timestamp": 1780533322,
    },
    "data_v2": {
        "condition_id": "0x" + "ab" * 32,
        "token_id": "1",
        "side": "BUY",
        "price": 0.5,
        "size": 1,
        "timestamp": 1780533322,
    },
}


def only_payload_errors(parser: Callable[[Any], object], value: object) -> None:
    with contextlib.suppress(PayloadError):  # anything else fails the property
        parser(value)


@PROFILE
@given(name=st.sampled_from(sorted(PARSERS)), value=json_values)
def test_arbitrary_json_values(name: str, value: Any) -> None:
    only_payload_errors(PARSERS[name], value)
    only_payload_errors(PARSERS[name], dumps(value))


@PROFILE
@given(name=st.sampled_from(sorted(PARSERS)), data=st.binary(max_size=200))
def test_arbitrary_bytes(name: str, data: bytes) -> None:
    only_payload_errors(PARSERS[name], data)


@PROFILE
@given(name=st.sampled_from(sorted(PARSERS)), data=st.data())
def test_any_field_garbled_raises_nothing_but_payload_error(name: str, data: st.DataObject) -> None:
    record = dict(VALID[name])
    key = data.draw(st.sampled_from(sorted(record)))
    record[key] = data.draw(json_values)
    only_payload_errors(PARSERS[name], record)


# The parsers' contract (``parse``, ``_convert``): a field that identifies, prices or dates a
# record is strict, so a value it cannot read rejects the whole record with ``PayloadError``,
# which the list parsers turn into a ``Reject`` for quarantine. The strategies below draw only
# values that are wrong for their field.
structure = (
    st.booleans()
    | st.lists(json_values, max_size=3)
    | st.dictionaries(st.text(max_size=8), json_values, max_size=3)
)


def text_not_matching(pattern: str) -> st.SearchStrategy[str]:
    return st.text(max_size=80).filter(lambda text: re.fullmatch(pattern, text) is None)


bad_condition_id = (
    st.none()
    | st.integers()
    | structure
    | text_not_matching(r"0x[0-9a-fA-F]{64}")
    | st.sampled_from(["0x" + "a" * 63, "0x" + "g" * 64, "ab" * 33, "0x" + "a" * 65])
)
bad_token_id = (  # token ids exceed 2**64, so a JSON number is wrong too
    st.none()
    | st.integers()
    | structure
    | text_not_matching(r"[0-9]{1,100}")
    | st.sampled_from(["1" * 101, "-1", "1.0", " 1", "1e5"])
)
bad_numeric_id = (
    st.none()
    | st.integers(max_value=-1)
    | st.integers(min_value=10**20)
    | st.floats()
    | structure
    | text_not_matching(r"[0-9]{1,20}")
)
bad_epoch = (
    st.none()
    | st.integers(max_value=0)
    | st.integers(min_value=10**19)
    | st.floats()
    | structure
    | text_not_matching(r"[0-9]{1,20}")
)
bad_price = (
    st.none()
    | st.floats(min_value=1, exclude_min=True, allow_infinity=False)
    | st.floats(max_value=-1e-6, allow_infinity=False)
    | st.integers(min_value=2)
    | st.integers(max_value=-1)
    | structure
    | st.sampled_from(["1.01", "-0.5", "NaN", "Infinity", "1e999", "", "abc", "0.5.0", "1,5"])
)
bad_size = (
    st.none()
    | st.floats(max_value=-1e-6, allow_infinity=False)
    | st.integers(max_value=-1)
    | structure
    | st.sampled_from(["-1", "NaN", "Infinity", "", "abc", "1,5"])
)
bad_side = (
    st.none()
    | st.integers()
    | structure
    | st.text(max_size=10).filter(lambda text: text.upper() not in ("BUY", "SELL"))
)
bad_levels = (  # a missing side is damage, not an empty one
    st.none()
    | st.text(max_size=10)
    | st.lists(st.fixed_dictionaries({"price": bad_price, "size": st.just("1")}), min_size=1)
    | st.lists(st.fixed_dictionaries({"price": st.just("0.5"), "size": bad_size}), min_size=1)
)
# Gamma's stringified arrays, as long as ``outcomes`` (two) and holding readable items.
bad_token_ids = st.tuples(bad_token_id, st.just(TOK_B)).map(
    lambda ids: json.dumps(list(ids))
) | st.sampled_from([json.dumps([TOK_A]), json.dumps([TOK_A, TOK_B, TOK_B]), "[", "{}", "1"])
bad_outcome_prices = st.tuples(bad_price, st.just("0.4")).map(
    lambda prices: json.dumps(list(prices))
) | st.sampled_from(['["0.6"]', '["0.6", "0.4", "0"]', "[", '{"a": 1}'])
bad_outcomes = st.sampled_from(['["Yes"]', "[1, 2]", '["Yes", null]', "[", '"Yes"', "[]"])
bad_clob_tokens = (
    st.lists(
        st.fixed_dictionaries({"token_id": bad_token_id.filter(lambda v: v != "")}), min_size=1
    )
    | st.lists(
        st.fixed_dictionaries(
            {"token_id": st.just("1"), "price": bad_price.filter(lambda v: v is not None)}
        ),
        min_size=1,
    )
    | st.text(max_size=10)
    | st.integers()
)

STRICT: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "gamma_market": {
        "id": bad_numeric_id,
        "conditionId": bad_condition_id,
        "clobTokenIds": bad_token_ids,
        "outcomePrices": bad_outcome_prices,
        "outcomes": bad_outcomes,
    },
    "gamma_event": {"id": bad_numeric_id},
    "book": {
        "market": bad_condition_id,
        "asset_id": bad_token_id,
        "timestamp": bad_epoch,
        "bids": bad_levels,
        "asks": bad_levels,
    },
    "clob_market": {"condition_id": bad_condition_id, "tokens": bad_clob_tokens},
    "data_v1": {
        "conditionId": bad_condition_id,
        "asset": bad_token_id,
        "side": bad_side,
        "price": bad_price,
        "size": bad_size,
        "timestamp": bad_epoch,
    },
    "data_v2": {
        "condition_id": bad_condition_id,
        "token_id": bad_token_id,
        "side": bad_side,
        "price": bad_price,
        "size": bad_size,
        "timestamp": bad_epoch,
    },
}
STRICT_FIELDS = sorted((name, key) for name, fields in STRICT.items() for key in fields)


@PROFILE
@given(field=st.sampled_from(STRICT_FIELDS), data=st.data())
def test_a_garbled_strict_field_rejects_the_record(
    field: tuple[str, str], data: st.DataObject
) -> None:
    name, key = field
    record = {**VALID[name], key: data.draw(STRICT[name][key], label=key)}
    with pytest.raises(PayloadError):
        PARSERS[name](record)
    with pytest.raises(PayloadError):
        PARSERS[name](dumps(record))


ListParser = Callable[[list[bytes]], tuple[list[Any], list[Reject]]]


def page_of(envelope: type[Any], parse_page: Callable[[Any], Page[Any]]) -> ListParser:
    """A ``*_page`` parser fed the records as the ``data`` array of its envelope."""

    def parse(records: list[bytes]) -> tuple[list[Any], list[Reject]]:
        body = b'{"data":[' + b",".join(records) + b"]}"
        page = parse_page(msgspec.json.decode(body, type=envelope))
        return list(page.items), list(page.rejects)

    return parse


ENVELOPED = {"clob_market", "data_v2"}  # parsed from one page document, not record by record


def is_strict_json(text: bytes) -> bool:
    def refuse(constant: str) -> None:
        raise ValueError(constant)

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError:
        return False
    return True


LIST_PARSERS: dict[str, ListParser] = {
    "gamma_market": p.parse_gamma_markets,
    "gamma_event": p.parse_gamma_events,
    "book": p.parse_books,
    "clob_market": page_of(s.ClobMarketsEnvelope, p.parse_clob_markets_page),
    "data_v1": p.parse_data_trades_v1,
    "data_v2": page_of(s.DataTradesV2Envelope, p.parse_data_trades_v2_page),
}


@PROFILE
@given(field=st.sampled_from(STRICT_FIELDS), data=st.data())
def test_a_rejected_record_is_kept_whole_for_quarantine_and_spares_its_neighbours(
    field: tuple[str, str], data: st.DataObject
) -> None:
    name, key = field
    valid = dumps(VALID[name])
    garbled = dumps({**VALID[name], key: data.draw(STRICT[name][key], label=key)})
    # A page arrives as one JSON document: a record that is not JSON at all (a float drawn
    # as inf or nan becomes a bare Infinity) makes the whole page malformed, not one record.
    assume(name not in ENVELOPED or is_strict_json(garbled))
    good, rejects = LIST_PARSERS[name]([valid, garbled, valid])
    assert good == [PARSERS[name](valid)] * 2
    assert [reject.raw for reject in rejects] == [garbled]
    assert rejects[0].reason


# Auxiliary statistics are loose: a garbled one becomes None and costs nothing else.
LOOSE_GAMMA = {
    "volume24hr": "volume_24hr",
    "volume1wk": "volume_1wk",
    "liquidity": "liquidity",
    "bestBid": "best_bid",
    "spread": "spread",
    "orderPriceMinTickSize": "tick_size",
    "orderMinSize": "min_order_size",
}
WITH_STATISTICS = market(
    volume24hr="1234.5",
    volume1wk=99.5,
    liquidity="10.25",
    bestBid=0.48,
    spread="0.02",
    orderPriceMinTickSize=0.01,
    orderMinSize=5,
)
unreadable_number = st.text(
    alphabet=st.characters(whitelist_categories=("L",)), min_size=1, max_size=12
) | st.sampled_from(["", "1,5", "--1", "1.2.3", "0x10", "NaN", "Infinity", "-inf"])


@PROFILE
@given(key=st.sampled_from(sorted(LOOSE_GAMMA)), value=unreadable_number)
def test_a_garbled_statistic_becomes_none_and_keeps_the_market(key: str, value: str) -> None:
    baseline = p.parse_gamma_market(WITH_STATISTICS)
    assert getattr(baseline, LOOSE_GAMMA[key]) is not None
    parsed = p.parse_gamma_market({**WITH_STATISTICS, key: value})
    assert parsed == msgspec.structs.replace(baseline, **{LOOSE_GAMMA[key]: None})


@PROFILE
@given(name=st.sampled_from(sorted(PARSERS)), cut=st.integers(min_value=0, max_value=400))
def test_truncated_records(name: str, cut: int) -> None:
    raw = dumps(VALID[name])
    only_payload_errors(PARSERS[name], raw[: min(cut, len(raw) - 1)])


@PROFILE
@given(value=json_values)
def test_page_and_batch_parsers_never_raise_per_item(value: Any) -> None:
    items = dumps([value, market()])
    envelope = msgspec.json.decode(b'{"markets":' + items + b"}", type=s.GammaMarketsEnvelope)
    page = p.parse_gamma_markets_page(envelope)
    assert len(page.items) + len(page.rejects) == 2
    raw_map = msgspec.json.decode(dumps({"k": value}), type=dict[str, msgspec.Raw])
    assert len(p.parse_midpoints(raw_map).rejects) == 1  # "k" is no token id


@PROFILE
@given(
    value=json_values
    | st.lists(st.sampled_from([ws_book(), trade()]) | json_values, max_size=4)
    | st.text(max_size=40)
)
def test_ws_frames_never_raise(value: Any) -> None:
    counters = Counters()
    text = value if isinstance(value, str) else dumps(value).decode()
    result = decode_frame(text, datetime(2026, 1, 1, tzinfo=UTC), counters)
    accounted = (
        len(result.messages) + len(result.rejects) + counters.get(WsCount.UNKNOWN_EVENT_TYPE)
    )
    assert accounted >= 1 or result.control is not None or is_empty_array(text)


def is_empty_array(text: str) -> bool:
    try:
        return bool(json.loads(text) == [])
    except ValueError:
        return False


@PROFILE
@given(data=st.binary(max_size=200))
def test_ws_binary_frames_never_raise(data: bytes) -> None:
    decode_frame(data, datetime(2026, 1, 1, tzinfo=UTC), Counters())
