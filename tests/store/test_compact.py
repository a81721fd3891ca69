"""The compact encoding loses nothing the venue can send (polyfarm.store.compact)."""

from __future__ import annotations

import random
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfarm.store.compact import (
    SIDE_CODES,
    SOURCE_CODES,
    Side,
    Source,
    exact_midpoint,
    exact_spread,
    from_micros,
    to_micros,
    transaction_hash_bytes,
)
from polyfarm.store.compact_snapshots import pack_levels, unpack_levels
from polyfarm.store.rejection import RejectionKind
from polyfarm.store.rows import PRICE_SNAPSHOTS, TRADES
from polyfarm.store.writer import BulkWriter

from .factories import T0, price_row, trade_row

# Venue decimals: prices with 4 decimals (ticks 0.0001 to 0.01, V2's 0.0025 among them),
# midpoints with 5, sizes with 6 (up to a billion shares).
prices = st.integers(0, 10_000).map(lambda n: Decimal(n).scaleb(-4))
midpoints = st.integers(0, 100_000).map(lambda n: Decimal(n).scaleb(-5))
sizes = st.integers(0, 10**15).map(lambda n: Decimal(n).scaleb(-6))


@settings(max_examples=3_000)
@given(value=st.one_of(prices, midpoints, sizes))
def test_a_venue_decimal_decodes_to_the_double_it_was_parsed_as(value: Decimal) -> None:
    parsed = float(value)  # what a producer holds: the double nearest to the decimal
    assert to_micros(parsed) == int(value * 1_000_000)
    assert from_micros(to_micros(parsed)) == parsed


def test_many_random_venue_decimals_round_trip_bit_for_bit() -> None:
    rng = random.Random(14)
    for _ in range(200_000):
        digits = rng.choice((4, 5, 6))
        value = Decimal(rng.randrange(10 ** (digits + rng.choice((0, 0, 3, 6))))).scaleb(-digits)
        parsed = float(value)
        assert from_micros(to_micros(parsed)) == parsed, value


@settings(max_examples=2_000)
@given(bid=prices, ask=prices)
def test_spread_and_midpoint_are_the_doubles_nearest_to_the_decimals(
    bid: Decimal, ask: Decimal
) -> None:
    assert exact_spread(float(bid), float(ask)) == float(ask - bid)
    assert exact_midpoint(float(bid), float(ask)) == float((bid + ask) / 2)


async def test_sql_decodes_as_python_does(pool: asyncpg.Pool) -> None:
    rng = random.Random(5)
    micros = [rng.randrange(10 ** rng.choice((6, 9, 15))) for _ in range(20_000)]
    decoded = await pool.fetchval(
        "SELECT array_agg(from_micros(v)) FROM unnest($1::int8[]) v", micros
    )
    assert decoded == [from_micros(v) for v in micros]
    values = [from_micros(v) for v in micros]
    encoded = await pool.fetchval(
        "SELECT array_agg(to_micros(v)) FROM unnest($1::float8[]) v", values
    )
    assert encoded == micros == [to_micros(v) for v in values]


async def test_codes_mean_the_same_in_sql_and_python(pool: asyncpg.Pool) -> None:
    for side in Side:
        assert await pool.fetchval("SELECT side_name($1::smallint)", side.value) == side.name
        assert await pool.fetchval("SELECT side_code($1)", side.name) == side.value
    for source in Source:
        name = source.name.lower()
        assert await pool.fetchval("SELECT source_name($1::smallint)", source.value) == name
        assert await pool.fetchval("SELECT source_code($1)", name) == source.value
    assert SIDE_CODES == {"BUY": 1, "SELL": 2}
    assert SOURCE_CODES == {"rest": 1, "ws": 2, "data_api": 3}


@pytest.mark.parametrize(
    ("text", "stored_as_bytes"),
    [
        ("0x" + "ab" * 32, True),
        ("0x" + "AB" * 32, False),  # another spelling: kept as text, as given
        ("0x" + "ab" * 31, False),
        ("0xdef", False),
        ("0x" + "ab" * 31 + " a", False),
        ("", False),
    ],
)
async def test_every_transaction_hash_reads_back_as_given(
    pool: asyncpg.Pool, text: str, stored_as_bytes: bool
) -> None:
    assert (transaction_hash_bytes(text) is not None) == stored_as_bytes
    row = trade_row(0)._replace(transaction_hash=text)
    writer = BulkWriter(pool, max_future_skew_s=3600, clock=lambda: T0)
    assert (await writer.write(TRADES, [row])).inserted == 1
    assert await pool.fetchval("SELECT transaction_hash FROM trades") == text
    stored = await pool.fetchrow("SELECT transaction_hash, transaction_text FROM trade_fills")
    assert (stored["transaction_hash"] is not None) == stored_as_bytes
    assert (stored["transaction_text"] is not None) == (not stored_as_bytes)


@pytest.mark.parametrize(
    "change",
    [
        {"spread": 0.03},  # not best_ask - best_bid (0.02)
        {"spread": None},
        {"best_bid": None},  # a spread without both sides
    ],
)
async def test_a_spread_that_is_not_ask_minus_bid_is_refused(
    pool: asyncpg.Pool, change: dict[str, object]
) -> None:
    writer = BulkWriter(pool, max_future_skew_s=3600, clock=lambda: T0)
    result = await writer.write(PRICE_SNAPSHOTS, [price_row(0)._replace(**change), price_row(1)])
    assert result.inserted == 1
    (rejected,) = result.rejected
    assert (rejected.kind, rejected.problem.column) == (RejectionKind.VALUE, "spread")


async def test_a_spread_off_by_a_double_rounding_is_stored_as_the_exact_difference(
    pool: asyncpg.Pool,
) -> None:
    row = price_row(0)._replace(best_bid=0.49, best_ask=0.51, spread=0.51 - 0.49)
    assert row.spread != 0.02  # 0.020000000000000018
    writer = BulkWriter(pool, max_future_skew_s=3600, clock=lambda: T0)
    assert (await writer.write(PRICE_SNAPSHOTS, [row])).inserted == 1
    assert await pool.fetchval("SELECT spread FROM price_snapshots") == 0.02


async def test_packed_levels_decode_alike_in_python_and_sql(pool: asyncpg.Pool) -> None:
    levels = [(0.4825, 1234.567891), (0.48, 0.000001), (0.0001, 999_999_999.5), (1.0, 0.0)]
    packed = pack_levels(levels)
    assert len(packed) == 12 * len(levels)
    assert unpack_levels(packed) == levels
    assert await pool.fetchval("SELECT book_levels($1::bytea)", packed) == [list(v) for v in levels]
    assert await pool.fetchval("SELECT top_price($1::bytea)", packed) == 482_500
    assert await pool.fetchval("SELECT top_price(''::bytea)") is None
    assert await pool.fetchval("SELECT book_levels(''::bytea)") == []
    again = await pool.fetchval("SELECT pack_levels($1::jsonb)", [list(v) for v in levels])
    assert again == packed
