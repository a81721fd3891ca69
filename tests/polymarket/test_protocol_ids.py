"""Protocol V2 outcome ids and the new Data API / CLOB parsers, as properties.

Whatever Gamma publishes, a market either parses with its trading ids taken from the field its
``version`` names (``positionIds`` for v2, ``clobTokenIds`` otherwise) or is refused with a
reason; it is never parsed with the other field's ids.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from polyfarm.errors import PayloadError
from polyfarm.polymarket import parse as p
from polyfarm.polymarket import schemas as s
from polyfarm.polymarket.domain import ProtocolVersion
from tests.polymarket.rest_payloads import market

PROFILE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ids = st.integers(min_value=0, max_value=2**256).map(str)
outcomes = st.integers(min_value=1, max_value=4)
versions = st.sampled_from([None, "v1", "v2"])


def gamma(
    count: int, version: str | None, ctf: list[str] | None, positions: list[str] | None
) -> dict[str, Any]:
    record = market(
        outcomes=orjson.dumps([f"Outcome {i}" for i in range(count)]).decode(),
        outcomePrices=orjson.dumps(["0.5"] * count).decode(),
        clobTokenIds=None if ctf is None else orjson.dumps(ctf).decode(),
    )
    if ctf is None:
        del record["clobTokenIds"]
    if version is not None:
        record["version"] = version
    if positions is not None:
        record["positionIds"] = positions
    return record


@PROFILE
@given(data=st.data(), count=outcomes, version=versions)
def test_trading_ids_follow_the_version_never_field_presence(
    data: st.DataObject, count: int, version: str | None
) -> None:
    ctf = data.draw(st.none() | st.lists(ids, min_size=count, max_size=count))
    positions = data.draw(st.none() | st.lists(ids, min_size=count, max_size=count))
    record = gamma(count, version, ctf, positions)
    chosen = positions if version == "v2" else ctf
    if chosen is None and version is not None:
        with pytest.raises(PayloadError, match="is missing, and the market's version names it"):
            p.parse_gamma_market(record)
        return
    parsed = p.parse_gamma_market(record)
    assert list(parsed.token_ids) == (chosen or [])
    assert parsed.protocol_version is (
        ProtocolVersion.V2 if version == "v2" else ProtocolVersion.V1
    )
    assert parsed.declared_version == version
    assert [t.ctf_token_id for t in parsed.tokens] == (ctf or [None] * count)
    assert [t.position_id for t in parsed.tokens] == (positions or [None] * count)


@PROFILE
@given(version=st.text(max_size=8), count=outcomes, data=st.data())
def test_an_unknown_version_is_refused(version: str, count: int, data: st.DataObject) -> None:
    assume(version not in ("v1", "v2"))
    same = data.draw(st.lists(ids, min_size=count, max_size=count))
    record = gamma(count, version, same, same)
    with pytest.raises(PayloadError, match="unknown protocol version"):
        p.parse_gamma_market(record)


@PROFILE
@given(
    count=outcomes,
    version=st.sampled_from(["v1", "v2"]),
    data=st.data(),
)
def test_a_wrong_count_or_a_non_decimal_id_in_the_chosen_field_is_refused(
    count: int, version: str, data: st.DataObject
) -> None:
    good = data.draw(st.lists(ids, min_size=count, max_size=count))
    length = data.draw(st.integers(min_value=0, max_value=6).filter(lambda n: n not in (count,)))
    wrong_count = data.draw(st.lists(ids, min_size=length, max_size=length))
    junk = data.draw(st.sampled_from(["0x1f", "-5", "1.5", " 12", "", "12a"]))
    for bad, reason in ((wrong_count, "items, outcomes"), ([junk, *good[1:]], "decimal")):
        if not bad and version == "v1":
            continue  # an empty list reads as absent; covered above
        record = gamma(
            count, version, bad if version == "v1" else good, bad if version == "v2" else good
        )
        with pytest.raises(PayloadError, match=reason if bad else "missing"):
            p.parse_gamma_market(record)


@PROFILE
@given(count=outcomes, version=st.sampled_from(["v1", "v2"]), data=st.data())
def test_the_other_field_may_be_garbled_without_costing_the_market(
    count: int, version: str, data: st.DataObject
) -> None:
    good = data.draw(st.lists(ids, min_size=count, max_size=count))
    garbled = data.draw(st.lists(st.sampled_from(["x", "0x12", "1.5"]), max_size=5))
    ctf, positions = (good, garbled) if version == "v1" else (garbled, good)
    parsed = p.parse_gamma_market(gamma(count, version, ctf, positions))
    assert list(parsed.token_ids) == good


# --- Data API /v2/prices-history -------------------------------------------------------------

point = st.fixed_dictionaries(
    {
        "timestamp": st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
        "price": st.decimals(min_value=0, max_value=1, places=4).map(float),
        "resolution_seconds": st.sampled_from([0, 60, 300, 1800, 10_800, 43_200]),
    }
)
garbage = st.sampled_from(
    [
        {"timestamp": "soon", "price": 0.5},
        {"timestamp": 1_788_800_640, "price": 1.5},
        {"timestamp": 1_788_800_640, "price": 0.5, "resolution_seconds": -60},
        {"price": 0.5},
        [],
        "x",
    ]
)


def is_good_point(row: Any) -> bool:
    return (
        isinstance(row, dict)
        and set(row) == {"timestamp", "price", "resolution_seconds"}
        and row["resolution_seconds"] >= 0
    )


@PROFILE
@given(
    rows=st.lists(point | garbage, max_size=12),
    cursor=st.none() | st.text(max_size=12),
    more=st.none() | st.booleans(),
)
def test_price_history_pages_keep_every_good_point_in_time_order(
    rows: list[Any], cursor: str | None, more: bool | None
) -> None:
    body = orjson.dumps({"data": rows, "pagination": {"has_more": more, "next_cursor": cursor}})
    page = p.parse_data_prices_history_page(
        msgspec.json.decode(body, type=s.DataPricesHistoryEnvelope)
    )
    good = [r for r in rows if is_good_point(r)]
    assert len(page.items) == len(good)
    assert len(page.items) + len(page.rejects) == len(rows)
    assert [pt.t for pt in page.items] == sorted(pt.t for pt in page.items)
    assert sorted((int(pt.t.timestamp()), pt.p, pt.resolution_s) for pt in page.items) == sorted(
        (r["timestamp"], Decimal(str(r["price"])), r["resolution_seconds"]) for r in good
    )
    assert page.next_cursor == (None if more is False else cursor or None)


# --- CLOB compact market info --------------------------------------------------------------


@PROFILE
@given(
    tokens=st.lists(st.none() | st.fixed_dictionaries({"t": ids, "o": st.text(max_size=5)})),
    tick=st.sampled_from(["0.01", "0.001", "0.0025", 0.01]),
    size=st.sampled_from([1, 5, "15", 5.0]),
    neg_risk=st.none() | st.booleans(),
)
def test_compact_market_info(
    tokens: list[Any], tick: object, size: object, neg_risk: bool | None
) -> None:
    body: dict[str, Any] = {"c": "0x" + "ab" * 32, "t": tokens, "mts": tick, "mos": size}
    if neg_risk is not None:
        body["nr"] = neg_risk
    info = p.parse_clob_market_info(orjson.dumps(body))
    assert [t.token_id for t in info.tokens] == [t["t"] for t in tokens if t is not None]
    assert info.min_tick_size == Decimal(str(tick))
    assert info.min_order_size == Decimal(str(size))
    assert info.neg_risk is bool(neg_risk)
