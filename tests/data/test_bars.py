"""Candles and bars from raw rows (pure): checked against sums done by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from polyfarm.data.bars import dollar_bars, price_candles, tick_bars, trade_candles, volume_bars

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def trades(*rows: tuple[int, str, float, float, str]) -> pl.DataFrame:
    """(seconds after T0, token, price, size, side) per trade, in any order."""
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(seconds=s) for s, *_ in rows],
            "token_id": [r[1] for r in rows],
            "price": [r[2] for r in rows],
            "size": [r[3] for r in rows],
            "side": [r[4] for r in rows],
        }
    )


def test_price_candles_per_token_and_bucket() -> None:
    prices = pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=m) for m in (6, 0, 1, 4, 5, 0)],
            "token_id": ["a", "a", "a", "a", "a", "b"],
            "price": [0.7, 0.5, 0.6, None, 0.4, 0.9],
        }
    )
    got = price_candles(prices, "5m")
    assert got.to_dicts() == [
        {"token_id": "a", "bucket": T0, "open": 0.5, "high": 0.6, "low": 0.5, "close": 0.6,
         "samples": 2},
        {"token_id": "a", "bucket": T0 + timedelta(minutes=5), "open": 0.4, "high": 0.7,
         "low": 0.4, "close": 0.7, "samples": 2},
        {"token_id": "b", "bucket": T0, "open": 0.9, "high": 0.9, "low": 0.9, "close": 0.9,
         "samples": 1},
    ]  # fmt: skip
    with pytest.raises(ValueError, match="interval must be one of"):
        price_candles(prices, "7m")


def test_trade_candles_sum_volume_vwap_and_sides() -> None:
    got = trade_candles(
        trades((70, "a", 0.6, 10, "SELL"), (5, "a", 0.4, 30, "BUY"), (30, "a", 0.5, 10, "BUY")),
        "1m",
    )
    first, second = got.to_dicts()
    assert (first["open"], first["high"], first["low"], first["close"]) == (0.4, 0.5, 0.4, 0.5)
    assert (first["volume"], first["trades"], first["buy_volume"]) == (40, 2, 40)
    assert first["sell_volume"] == 0
    assert first["dollar_volume"] == pytest.approx(0.4 * 30 + 0.5 * 10)
    assert first["vwap"] == pytest.approx((0.4 * 30 + 0.5 * 10) / 40)
    assert (second["bucket"], second["sell_volume"], second["trades"]) == (
        T0 + timedelta(minutes=1),
        10,
        1,
    )


def test_bars_close_on_ticks_shares_and_dollars_without_splitting_a_trade() -> None:
    tape = trades(
        (1, "a", 0.5, 10, "BUY"),
        (2, "a", 0.5, 10, "BUY"),
        (3, "a", 0.5, 25, "SELL"),
        (4, "a", 0.5, 5, "BUY"),
        (1, "b", 0.2, 100, "BUY"),
    )
    assert tick_bars(tape, 2)["trades"].to_list() == [2, 2, 1]
    # 20 shares a bar: 10+10 | 25 (crosses 40 alone) | 5 — per token, b on its own.
    assert volume_bars(tape, 20)["volume"].to_list() == [20, 25, 5, 100]
    assert dollar_bars(tape, 10.0)["dollar_volume"].to_list() == pytest.approx(
        [10.0, 12.5, 2.5, 20.0]
    )
    with pytest.raises(ValueError, match="positive"):
        volume_bars(tape, 0)
