"""Candles and custom bars from raw rows, pure polars: the same code for rows read from the
database and from the lake, so both give the same numbers.

- ``price_candles``: OHLC of the price snapshots (the midpoint, else the last trade) per token
  and interval, with the number of snapshots in each.
- ``trade_candles``: OHLCV of the trades: volume in shares and in USD (price x size), VWAP,
  trade count, and the buy / sell split of the volume.
- ``tick_bars``, ``volume_bars``, ``dollar_bars``: a bar closes every N trades, N shares or N
  USD (seed 003; López de Prado's information-driven bars). A trade is never split between
  bars: the bar that it fills closes with it.

Every function takes a frame with ``token_id``, ``ts`` and its value columns, in any order,
and returns one sorted by token and time. Buckets are left-closed and labelled by their start
(UTC), as the database's ``time_bucket`` does.
"""

from __future__ import annotations

import polars as pl

INTERVALS = {"1m": "1m", "5m": "5m", "15m": "15m", "1h": "1h", "4h": "4h", "1d": "1d"}


def _every(interval: str) -> str:
    try:
        return INTERVALS[interval]
    except KeyError:
        raise ValueError(f"interval must be one of {sorted(INTERVALS)}, not {interval!r}") from None


def price_candles(prices: pl.DataFrame, interval: str) -> pl.DataFrame:
    """OHLC and the number of snapshots per token and bucket, from ``price``."""
    every = _every(interval)
    return (
        prices.filter(pl.col("price").is_not_null())
        .sort("token_id", "ts")
        .group_by_dynamic("ts", every=every, group_by="token_id", label="left", closed="left")
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.len().alias("samples"),
        )
        .rename({"ts": "bucket"})
        .sort("token_id", "bucket")
    )


def trade_candles(trades: pl.DataFrame, interval: str) -> pl.DataFrame:
    """OHLCV, VWAP, trade count and the buy / sell split per token and bucket."""
    every = _every(interval)
    buy = pl.col("side") == "BUY"
    return (
        trades.sort("token_id", "ts")
        .group_by_dynamic("ts", every=every, group_by="token_id", label="left", closed="left")
        .agg(
            *_trade_aggregates(),
            pl.col("size").filter(buy).sum().alias("buy_volume"),
            pl.col("size").filter(~buy).sum().alias("sell_volume"),
        )
        .rename({"ts": "bucket"})
        .sort("token_id", "bucket")
    )


def tick_bars(trades: pl.DataFrame, ticks: int) -> pl.DataFrame:
    """A bar every ``ticks`` trades of a token."""
    if ticks < 1:
        raise ValueError("ticks must be at least 1")
    ordered = trades.sort("token_id", "ts")
    bar = (pl.int_range(pl.len()).over("token_id") // ticks).alias("bar")
    return _bars(ordered.with_columns(bar))


def volume_bars(trades: pl.DataFrame, shares: float) -> pl.DataFrame:
    """A bar each time a token's traded shares reach another ``shares``."""
    return _threshold_bars(trades, pl.col("size"), shares)


def dollar_bars(trades: pl.DataFrame, dollars: float) -> pl.DataFrame:
    """A bar each time a token's traded USD (price x size) reach another ``dollars``."""
    return _threshold_bars(trades, pl.col("price") * pl.col("size"), dollars)


def _threshold_bars(trades: pl.DataFrame, amount: pl.Expr, threshold: float) -> pl.DataFrame:
    if not threshold > 0:
        raise ValueError("the threshold must be positive")
    ordered = trades.sort("token_id", "ts")
    # The bar a trade belongs to: how many whole thresholds were done before it.
    before = (amount.cum_sum().over("token_id") - amount) // threshold
    return _bars(ordered.with_columns(before.cast(pl.Int64).alias("bar")))


def _bars(numbered: pl.DataFrame) -> pl.DataFrame:
    return (
        numbered.group_by("token_id", "bar", maintain_order=True)
        .agg(
            pl.col("ts").first().alias("start"),
            pl.col("ts").last().alias("end"),
            *_trade_aggregates(),
        )
        .drop("bar")
    )


def _trade_aggregates() -> list[pl.Expr]:
    """OHLC of the fill prices, volume in shares and USD, VWAP and the number of fills."""
    notional = pl.col("price") * pl.col("size")
    return [
        pl.col("price").first().alias("open"),
        pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"),
        pl.col("price").last().alias("close"),
        pl.col("size").sum().alias("volume"),
        notional.sum().alias("dollar_volume"),
        (notional.sum() / pl.col("size").sum()).alias("vwap"),
        pl.len().alias("trades"),
    ]
