"""Point-in-time training sets, pure polars: every value in a row was known at the row's time.

A row is a feature snapshot (``market_features``: one token at one time ``ts``). To it come:

- **features**: the snapshot's own columns (computed by the collector from what it had seen by
  ``ts``), and any column of the price snapshots as of ``ts``: the newest one stamped at or
  before ``ts`` (a backward as-of join, never a later one);
- **the label**, which is the future by design and is the only thing taken from after ``ts``:
  - ``"price"``: the token's price ``horizon`` later (the first price snapshot at or after
    ``ts + horizon``), and its change from the price as of ``ts``; a row whose label time is
    past ``as_of`` has no known label yet and is left out;
  - ``"resolution"``: 1 if the token won, 0 if it lost, 0.5 for a 50-50 market; only markets
    resolved by ``as_of``, and only rows from before the resolution (a snapshot taken after it
    already shows the outcome). Void and unknown outcomes are left out.

Rows stamped after ``as_of`` are left out too: the set is what one could have built at
``as_of``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

LABELS = ("price", "resolution")
_PRICE_COLUMNS = ("price", "best_bid", "best_ask", "spread", "last_trade_price", "volume_24h",
                  "liquidity")  # fmt: skip


def training_set(
    features: pl.DataFrame,
    prices: pl.DataFrame,
    *,
    label: str,
    as_of: datetime,
    horizon: timedelta | None = None,
    price_features: tuple[str, ...] = (),
    resolutions: pl.DataFrame | None = None,
    tokens: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``features`` (market_features rows) joined point in time with ``prices`` (price
    snapshots of the same tokens) and labelled; one row per feature snapshot that has a
    known label, sorted by token and time."""
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, not {label!r}")
    unknown = set(price_features) - set(_PRICE_COLUMNS)
    if unknown:
        raise ValueError(f"not price snapshot columns: {sorted(unknown)}")
    # Both sorted here, so the as-of joins need not check (polars cannot check within groups,
    # and says so on stderr at every join).
    rows = features.filter(pl.col("ts") <= as_of).sort("token_id", "ts")
    known_prices = prices.filter(pl.col("ts") <= as_of).sort("token_id", "ts")
    if price_features:
        as_of_row = known_prices.select(
            "token_id", "ts", *(pl.col(c).alias(f"{c}_at_ts") for c in price_features)
        )
        rows = rows.join_asof(
            as_of_row, on="ts", by="token_id", strategy="backward", check_sortedness=False
        )
    if label == "price":
        if horizon is None or horizon <= timedelta(0):
            raise ValueError("a price label needs a positive horizon")
        return _price_label(rows, known_prices, horizon, as_of)
    if resolutions is None or tokens is None:
        raise ValueError("a resolution label needs the resolutions and the tokens")
    return _resolution_label(rows, resolutions, tokens, as_of)


def _price_label(
    rows: pl.DataFrame, prices: pl.DataFrame, horizon: timedelta, as_of: datetime
) -> pl.DataFrame:
    now = prices.select("token_id", "ts", pl.col("price").alias("_price_now"))
    later = prices.select(
        "token_id",
        pl.col("ts").alias("label_ts"),
        pl.col("price").alias("label_price"),
    )
    labelled = (
        rows.join_asof(now, on="ts", by="token_id", strategy="backward", check_sortedness=False)
        .with_columns((pl.col("ts") + horizon).alias("_due"))
        .sort("token_id", "_due")
        .join_asof(
            later,
            left_on="_due",
            right_on="label_ts",
            by="token_id",
            strategy="forward",
            check_sortedness=False,
        )
        .filter(pl.col("label_ts").is_not_null() & (pl.col("label_ts") <= as_of))
        .with_columns((pl.col("label_price") - pl.col("_price_now")).alias("label_change"))
        .drop("_due", "_price_now")
    )
    return labelled.sort("token_id", "ts")


def _resolution_label(
    rows: pl.DataFrame, resolutions: pl.DataFrame, tokens: pl.DataFrame, as_of: datetime
) -> pl.DataFrame:
    outcome = (
        pl.when(pl.col("outcome_kind") == "fifty_fifty")
        .then(0.5)
        .when(pl.col("outcome_kind") != "winner")
        .then(None)
        .when(pl.col("winning_token_id") == pl.col("token_id"))
        .then(1.0)
        .otherwise(0.0)
    )
    labels = (
        tokens.select("token_id", "market_id")
        .join(
            resolutions.filter(pl.col("resolved_at") <= as_of).select(
                "market_id", "resolved_at", "outcome_kind", "winning_token_id"
            ),
            on="market_id",
        )
        .with_columns(outcome.alias("label"))
        .filter(pl.col("label").is_not_null())
        .select("token_id", "resolved_at", "label")
    )
    return (
        rows.join(labels, on="token_id")
        .filter(pl.col("ts") < pl.col("resolved_at"))
        .sort("token_id", "ts")
    )
