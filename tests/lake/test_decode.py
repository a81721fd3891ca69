"""What a read of a table's rows asks the server for, and how the answer becomes the public
columns: pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from polyfarm.lake.decode import storage_read
from polyfarm.lake.layout import TABLES_BY_NAME

PRICES = TABLES_BY_NAME["price_snapshots"]
TRADES = TABLES_BY_NAME["trades"]
T = datetime(2026, 3, 2, tzinfo=UTC)


def stored_prices() -> pa.Table:
    return pa.table(
        {
            "ts": pa.array([T, T], pa.timestamp("us", "UTC")),
            "token_sid": pa.array([4, 4], pa.int32()),
            "price": pa.array([460_000, None], pa.int32()),
            "best_bid": pa.array([450_000, None], pa.int32()),
            "best_ask": pa.array([470_000, 520_000], pa.int32()),
            "last_trade_price": pa.array([None, 510_000], pa.int32()),
            "volume_24h": pa.array([1.5, 2.5]),
            "liquidity": pa.array([10.0, 20.0]),
        }
    )


def test_a_read_of_every_price_column_asks_for_every_stored_one() -> None:
    public = ["token_id", "market_id", "ts", "price", "best_bid", "best_ask", "spread"]
    read = storage_read(PRICES, [*public, "last_trade_price", "volume_24h", "liquidity"])
    assert read.relation == "price_points"
    assert sorted(read.columns) == sorted(stored_prices().column_names)
    assert read.decode is not None
    decoded = read.decode(stored_prices())
    assert decoded.column_names == [*public[2:], "last_trade_price", "volume_24h", "liquidity"]
    assert decoded.column("spread").to_pylist() == [pytest.approx(0.02), None]
    assert decoded.column("last_trade_price").to_pylist() == [None, 0.51]


def test_a_read_of_a_few_price_columns_asks_for_what_they_need_alone() -> None:
    read = storage_read(PRICES, ["token_id", "ts", "spread"])
    assert read.columns == ("ts", "best_bid", "best_ask", "token_sid")
    assert read.decode is not None
    decoded = read.decode(stored_prices().select(list(read.columns)))
    assert decoded.column_names == ["ts", "spread"]
    candles = storage_read(PRICES, ["token_id", "ts", "price"])
    assert candles.columns == ("ts", "price", "token_sid")


def test_a_column_the_table_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="no column 'mid'"):
        storage_read(PRICES, ["ts", "mid"])


def test_a_table_read_through_its_view_is_asked_for_the_columns_wanted() -> None:
    read = storage_read(TRADES, ["token_id", "market_id", "ts", "size"])
    assert read.relation == "trades"
    assert read.columns == ("ts", "size", "token_sid")
    assert read.decode is None
