"""Research access to what polyfarm collected: polars DataFrames of candles, trades, books,
features, custom bars and point-in-time training sets, from the database and the Parquet lake
alike (``.to_pandas()`` on any of them gives pandas, with pandas installed).

One call each, on the database and lake that polyfarm's settings name (``POLYFARM_*``, or a
``Settings``)::

    import polyfarm.data as pf
    df = pf.candles("0x5f…", "1h", "2026-03-01", "2026-04-01")   # a market id: all its tokens
    tape = pf.trades("7132…", "2026-03-01", "2026-03-02")

Several reads in a row share one connection through a ``Farm``::

    with pf.Farm.from_settings() as farm:
        df = farm.training_set(tokens, start, end, label="price", horizon=timedelta(hours=1))
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import polars as pl

from polyfarm.data.farm import Farm, HoleWarning, TimeLike
from polyfarm.settings import Settings

__all__ = [
    "Farm",
    "HoleWarning",
    "bars",
    "books",
    "candles",
    "features",
    "markets",
    "prices",
    "resolutions",
    "trades",
    "training_set",
]

Tokens = str | Sequence[str]


def candles(
    tokens: Tokens,
    interval: str,
    start: TimeLike,
    end: TimeLike,
    *,
    source: str = "prices",
    settings: Settings | None = None,
) -> pl.DataFrame:
    """OHLC of price snapshots, or OHLCV with VWAP and the buy / sell split of trades
    (``source="trades"``), per token, for ``interval`` 1m, 5m, 15m, 1h, 4h or 1d."""
    with Farm.from_settings(settings) as farm:
        return farm.candles(tokens, interval, start, end, source=source)


def prices(
    tokens: Tokens, start: TimeLike, end: TimeLike, *, settings: Settings | None = None
) -> pl.DataFrame:
    with Farm.from_settings(settings) as farm:
        return farm.prices(tokens, start, end)


def trades(
    tokens: Tokens, start: TimeLike, end: TimeLike, *, settings: Settings | None = None
) -> pl.DataFrame:
    with Farm.from_settings(settings) as farm:
        return farm.trades(tokens, start, end)


def books(
    tokens: Tokens, start: TimeLike, end: TimeLike, *, settings: Settings | None = None
) -> pl.DataFrame:
    with Farm.from_settings(settings) as farm:
        return farm.books(tokens, start, end)


def features(
    tokens: Tokens, start: TimeLike, end: TimeLike, *, settings: Settings | None = None
) -> pl.DataFrame:
    with Farm.from_settings(settings) as farm:
        return farm.features(tokens, start, end)


def bars(
    tokens: Tokens,
    kind: str,
    size: float,
    start: TimeLike,
    end: TimeLike,
    *,
    settings: Settings | None = None,
) -> pl.DataFrame:
    """Tick, volume or dollar bars of the trades (``kind``), closing every ``size``."""
    with Farm.from_settings(settings) as farm:
        return farm.bars(tokens, kind, size, start, end)


def markets(*, settings: Settings | None = None) -> pl.DataFrame:
    with Farm.from_settings(settings) as farm:
        return farm.markets()


def resolutions(*, settings: Settings | None = None) -> pl.DataFrame:
    with Farm.from_settings(settings) as farm:
        return farm.resolutions()


def training_set(
    tokens: Tokens,
    start: TimeLike,
    end: TimeLike,
    *,
    label: str,
    as_of: TimeLike | None = None,
    horizon: timedelta | None = None,
    settings: Settings | None = None,
) -> pl.DataFrame:
    """Point-in-time feature rows with a ``"price"`` (``horizon`` later) or ``"resolution"``
    label: see ``polyfarm.data.training``."""
    with Farm.from_settings(settings) as farm:
        return farm.training_set(tokens, start, end, label=label, as_of=as_of, horizon=horizon)
