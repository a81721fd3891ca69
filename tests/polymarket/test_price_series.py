"""A history page read into columns (``parse_prices_history_series``,
``parse_data_prices_history_series``) equals the per-record parser's points, rejects and
cursor, whatever the page holds; a well-formed page takes the fast decode, any other falls back
and loses only its bad records."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyfarm.polymarket import parse as p
from polyfarm.polymarket import schemas as s
from polyfarm.polymarket._parse_clob import _FAST_HISTORY
from polyfarm.polymarket._parse_data import _FAST_PRICE_POINTS
from polyfarm.polymarket.domain import Reject
from polyfarm.polymarket.price_series import NO_RESOLUTION, PriceSeries, fast_series

PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Prices as the venue writes them (JSON numbers of up to five decimals, more from a midpoint
# of midpoints), and the texts a double cannot settle: decimals just outside [0, 1] that round
# to 0.0 or 1.0, and ones inside that round there too.
EDGE_PRICES = [
    "0", "1", "0.0", "1.0", "-0.0", "1E0", "0e5", "1.00000000000000000001",
    "0.99999999999999999999", "-1e-400", "1e-400", "-0.00000000000000000001", "0.5e-3",
]  # fmt: skip
prices = (
    st.decimals(min_value=0, max_value=1, places=5).map(str)
    | st.decimals(min_value=0, max_value=1, places=25).map(str)
    | st.sampled_from(EDGE_PRICES)
)
bad_prices = st.sampled_from(['"0.5"', "1.01", "-0.5", "null", "1e999", '"x"', "[]", "true"])
epochs = st.integers(min_value=1, max_value=4_000_000_000)
bad_epochs = st.sampled_from(
    ["0", "-60", '"1700000000"', "1700000000.5", "null", "1700000000000", "99999999999999999999"]
)
resolutions = st.sampled_from(
    ["", ',"resolution_seconds":60', ',"resolution_seconds":0', ',"resolution_seconds":null']
)
bad_resolutions = st.sampled_from(
    [',"resolution_seconds":-1', ',"resolution_seconds":"60"', ',"resolution_seconds":1.5']
)


Record = Callable[[str, str], bytes]


def clob_record(t: str, price: str, extra: str = "") -> bytes:
    return f'{{"t":{t},"p":{price}{extra}}}'.encode()


def data_record(t: str, price: str, extra: str = "") -> bytes:
    return f'{{"timestamp":{t},"price":{price}{extra}}}'.encode()


@st.composite
def clob_pages(draw: st.DrawFn, garbled: bool) -> list[bytes]:
    records = draw(
        st.lists(st.tuples(epochs.map(str), prices, st.sampled_from(["", ',"x":[1]'])), max_size=40)
    )
    page = [clob_record(*record) for record in records]
    if garbled:
        bad = draw(st.sampled_from(["price", "epoch", "shape"]))
        at = draw(st.integers(min_value=0, max_value=len(page)))
        page.insert(at, _bad_record(draw, bad, clob_record, "t", "p"))
    return page


@st.composite
def data_pages(draw: st.DrawFn, garbled: bool) -> list[bytes]:
    records = draw(st.lists(st.tuples(epochs.map(str), prices, resolutions), max_size=40))
    page = [data_record(*record) for record in records]
    if garbled:
        bad = draw(st.sampled_from(["price", "epoch", "shape", "resolution"]))
        at = draw(st.integers(min_value=0, max_value=len(page)))
        if bad == "resolution":
            page.insert(at, data_record("1700000000", "0.5", draw(bad_resolutions)))
        else:
            page.insert(at, _bad_record(draw, bad, data_record, "timestamp", "price"))
    return page


def _bad_record(draw: st.DrawFn, bad: str, make: Record, t_key: str, p_key: str) -> bytes:
    if bad == "price":
        return make("1700000000", draw(bad_prices))
    if bad == "epoch":
        return make(draw(bad_epochs), "0.5")
    return draw(st.sampled_from([b"[]", b"null", b"5", f'{{"{p_key}":0.5}}'.encode(),
                                 f'{{"{t_key}":1}}'.encode()]))  # fmt: skip


def clob_wire(records: list[bytes]) -> s.PricesHistoryWire:
    return s.PricesHistoryWire(history=[msgspec.Raw(r) for r in records])


def data_wire(records: list[bytes], cursor: str | None) -> s.DataPricesHistoryEnvelope:
    pagination = s.DataPaginationWire(has_more=cursor is not None, next_cursor=cursor)
    return s.DataPricesHistoryEnvelope(
        data=[msgspec.Raw(r) for r in records], pagination=pagination
    )


def same_columns(got: PriceSeries, want: PriceSeries) -> None:
    assert got.ts_us.tolist() == want.ts_us.tolist()
    assert got.price.tolist() == want.price.tolist()
    assert got.resolution_s.tolist() == want.resolution_s.tolist()


def same_rejects(got: Sequence[Reject], want: Sequence[Reject]) -> None:
    assert list(got) == list(want)


@PROFILE
@given(records=st.one_of(clob_pages(garbled=False), clob_pages(garbled=True)))
def test_a_clob_page_as_columns_equals_its_points(records: list[bytes]) -> None:
    series, rejects = p.parse_prices_history_series(clob_wire(records))
    points, want_rejects = p.parse_prices_history(clob_wire(records))
    same_columns(series, PriceSeries.from_points(points))
    same_rejects(rejects, want_rejects)


@PROFILE
@given(
    records=st.one_of(data_pages(garbled=False), data_pages(garbled=True)),
    cursor=st.none() | st.just("abc"),
)
def test_a_data_api_page_as_columns_equals_its_points(
    records: list[bytes], cursor: str | None
) -> None:
    page = p.parse_data_prices_history_series(data_wire(records, cursor))
    want = p.parse_data_prices_history_page(data_wire(records, cursor))
    same_columns(page.series, PriceSeries.from_points(want.items))
    same_rejects(page.rejects, want.rejects)
    assert page.next_cursor == want.next_cursor


@PROFILE
@given(records=st.lists(st.tuples(epochs.map(str), prices), max_size=40))
def test_a_well_formed_page_takes_the_fast_decode(records: list[tuple[str, str]]) -> None:
    """Unless one of its prices is outside [0, 1] by less than a double can tell: then the
    per-record parser has to reject that point."""
    clob = [msgspec.Raw(clob_record(t, price)) for t, price in records]
    data = [msgspec.Raw(data_record(t, price)) for t, price in records]
    readable = all(0 <= Decimal(price) <= 1 for _, price in records)
    assert (fast_series(clob, _FAST_HISTORY) is not None) == readable
    assert (fast_series(data, _FAST_PRICE_POINTS) is not None) == readable


def test_a_malformed_page_falls_back_and_rejects_only_its_bad_records() -> None:
    records = [
        clob_record("1700000120", "0.52"),
        clob_record("1700000000", "0.5"),
        clob_record("1700000060", '"0.51"'),  # a string: the parser reads it, the fast decode not
        clob_record("1700000180", "1.00000000000000000001"),  # rounds to 1.0, yet above 1
        b'{"t":"soon","p":0.5}',
    ]
    raws = [msgspec.Raw(r) for r in records]
    assert fast_series(raws, _FAST_HISTORY) is None
    series, rejects = p.parse_prices_history_series(clob_wire(records))
    assert series.ts_us.tolist() == [t * 1_000_000 for t in (1700000000, 1700000060, 1700000120)]
    assert series.price.tolist() == [0.5, 0.51, 0.52]
    assert [r.raw for r in rejects] == records[3:]


def test_data_api_resolutions_absent_null_and_terminal() -> None:
    records = [
        data_record("1700000000", "0.5"),
        data_record("1700000060", "0.5", ',"resolution_seconds":null'),
        data_record("1700000090", "0.6", ',"resolution_seconds":0'),
        data_record("1700000030", "0.4", ',"resolution_seconds":60'),
    ]
    assert fast_series([msgspec.Raw(r) for r in records], _FAST_PRICE_POINTS) is not None
    page = p.parse_data_prices_history_series(data_wire(records, None))
    assert page.series.resolution_s.tolist() == [NO_RESOLUTION, 60, NO_RESOLUTION, 0]
    assert page.series.buckets_between(0, 2**62).ts_us.tolist() == [
        t * 1_000_000 for t in (1700000000, 1700000030, 1700000060)
    ]


def test_last_per_instant_keeps_the_last_point_of_an_instant_as_a_dict_does() -> None:
    points = [(30, 0.3), (10, 0.1), (30, 0.33), (20, 0.2), (10, 0.11)]
    series = PriceSeries(
        np.array([t for t, _ in points], np.int64),
        np.array([price for _, price in points], np.float64),
        np.full(len(points), NO_RESOLUTION, np.int64),
    )
    kept = dict(points)
    last = series.last_per_instant()
    assert last.ts_us.tolist() == sorted(kept)
    assert last.price.tolist() == [kept[t] for t in sorted(kept)]


def test_json_numbers_become_the_doubles_the_parser_makes() -> None:
    texts = ["0.1", "0.30000000000000004", "0.123456789012345678901234567890", "1e-7"]
    records = [clob_record(str(1700000000 + i), text) for i, text in enumerate(texts)]
    series, _ = p.parse_prices_history_series(clob_wire(records))
    assert series.price.tolist() == [float(Decimal(text)) for text in texts]
    assert json.loads(b"[" + b",".join(records) + b"]")[0]["p"] == 0.1
