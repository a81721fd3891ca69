"""Property tests: arbitrary or garbled input never makes a parser raise anything but
``PayloadError`` (and the frame decoder never raises at all)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyfarm.errors import PayloadError
from polyfarm.polymarket import parse as p
from polyfarm.polymarket import schemas as s
from polyfarm.polymarket.domain import Counters, WsCount
from polyfarm.polymarket.ws_protocol import decode_frame
from tests.polymarket.test_parse import book, market
from tests.polymarket.test_ws_protocol import trade, ws_book


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
def test_valid_records_with_one_field_garbled(name: str, data: st.DataObject) -> None:
    record = dict(VALID[name])
    key = data.draw(st.sampled_from(sorted(record)))
    record[key] = data.draw(json_values)
    only_payload_errors(PARSERS[name], record)


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
