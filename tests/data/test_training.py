"""Training sets are point in time: each feature value checked against a brute-force oracle
that sees only the rows stamped at or before the row's time, and each label against the
first price at or after the horizon."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from polyfarm.data.training import training_set

T0 = datetime(2026, 3, 2, tzinfo=UTC)
MIN = timedelta(minutes=1)


def tape(seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two tokens: price snapshots at irregular minutes, feature snapshots at others."""
    rng = random.Random(seed)
    prices, features = [], []
    for token in ("a", "b"):
        for m in sorted(rng.sample(range(300), 120)):
            prices.append({"token_id": token, "ts": T0 + m * MIN, "price": rng.randint(1, 99) / 100,
                           "liquidity": float(rng.randint(0, 1000))})  # fmt: skip
        for m in sorted(rng.sample(range(300), 80)):
            features.append({"token_id": token, "ts": T0 + m * MIN + 30 * timedelta(seconds=1),
                             "momentum": rng.random()})  # fmt: skip
    return pl.DataFrame(features), pl.DataFrame(prices)


def oracle_price_at(prices: pl.DataFrame, token: str, at: datetime) -> float | None:
    seen = [r for r in prices.iter_rows(named=True) if r["token_id"] == token and r["ts"] <= at]
    return max(seen, key=lambda r: r["ts"])["price"] if seen else None


def oracle_label(prices: pl.DataFrame, token: str, due: datetime) -> tuple[datetime, float] | None:
    ahead = [r for r in prices.iter_rows(named=True) if r["token_id"] == token and r["ts"] >= due]
    first = min(ahead, key=lambda r: r["ts"]) if ahead else None
    return None if first is None else (first["ts"], first["price"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_price_features_are_as_of_the_row_and_labels_from_the_horizon(
    seed: int, capfd: pytest.CaptureFixture[str]
) -> None:
    features, prices = tape(seed)
    as_of = T0 + 250 * MIN
    horizon = 15 * MIN
    got = training_set(
        features, prices, label="price", horizon=horizon, as_of=as_of, price_features=("price",)
    )
    expected = []
    for row in features.sort("token_id", "ts").iter_rows(named=True):
        label = oracle_label(prices, row["token_id"], row["ts"] + horizon)
        if row["ts"] > as_of or label is None or label[0] > as_of:
            continue
        now = oracle_price_at(prices, row["token_id"], row["ts"])
        expected.append((row["token_id"], row["ts"], now, label[0], label[1]))
    assert got.select("token_id", "ts", "price_at_ts", "label_ts", "label_price").rows() == expected
    assert len(expected) > 50
    assert capfd.readouterr().err == ""  # nothing said to a notebook's stderr


def test_a_resolution_labels_only_what_came_before_it() -> None:
    features = pl.DataFrame(
        {
            "token_id": ["yes", "yes", "no", "void", "open"],
            "ts": [T0, T0 + 10 * MIN, T0, T0, T0],
            "momentum": [0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    tokens = pl.DataFrame(
        {
            "token_id": ["yes", "no", "void", "open"],
            "market_id": ["m1", "m1", "m2", "m3"],
        }
    )
    resolutions = pl.DataFrame(
        {
            "market_id": ["m1", "m2", "m3"],
            "resolved_at": [T0 + 5 * MIN, T0 + 5 * MIN, T0 + 90 * MIN],
            "outcome_kind": ["winner", "void", "winner"],
            "winning_token_id": ["yes", None, "open"],
        }
    )
    got = training_set(
        features,
        pl.DataFrame(
            {"token_id": [], "ts": [], "price": []},
            schema_overrides={"ts": pl.Datetime("us", "UTC")},
        ),
        label="resolution",
        as_of=T0 + 60 * MIN,
        resolutions=resolutions,
        tokens=tokens,
    )
    # "yes" at T0+10 is after the resolution; "void" has no label; "open" resolves after as_of.
    assert got.select("token_id", "label").rows() == [("no", 0.0), ("yes", 1.0)]
