"""Clock features stored as the instants they count from (migration 0022)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import asyncpg

from polyfarm.markets.tiers import hours_to_close
from polyfarm.store.clock_anchors import (
    CLOCK_FEATURES,
    Anchor,
    anchor_of,
    anchored,
    hours_between,
    seconds_since,
)
from polyfarm.store.rows import FEATURE_COLUMNS, MARKET_FEATURES, FeatureRow
from polyfarm.store.writer import BulkWriter

from .factories import T0, feature_row

NOW = T0 + timedelta(days=2)
CLOCKS = [clock.feature for clock in CLOCK_FEATURES]


def random_instant(rng: random.Random) -> datetime:
    """Within 30 days of T0, to the second, the millisecond or the microsecond."""
    unit = rng.choice((1_000_000, 1_000, 1))
    steps = rng.randint(0, 60 * 86_400 * 1_000_000 // unit)
    return T0 - timedelta(days=30) + timedelta(microseconds=unit * steps)


def produced(rng: random.Random, ts: datetime) -> tuple[float | None, ...]:
    """The four clock features as ``polyfarm.stream.features`` computes them at ``ts``."""
    close = ts + timedelta(seconds=rng.randint(-3600, 400 * 86400), microseconds=rng.choice((0, 1)))
    opened = random_instant(rng)
    last_trade = ts.timestamp() - rng.choice((0.0, rng.uniform(0, 86400), rng.random()))
    last_whale = round(ts.timestamp() - rng.uniform(0, 7 * 86400), 3)
    return (
        hours_to_close(close, ts),
        (ts - opened).total_seconds() / 3600.0,
        max(0.0, ts.timestamp() - last_trade),
        max(0.0, ts.timestamp() - last_whale),
    )


def test_the_producers_values_are_anchored_and_given_back_to_the_bit() -> None:
    rng = random.Random(11)
    for n in range(5_000):
        ts = T0 + timedelta(
            seconds=rng.randint(0, 86400 * 60), microseconds=rng.randint(0, 10**6 - 1) * (n % 2)
        )
        values = produced(rng, ts)
        stored, anchors = anchored(values, ts)
        assert stored == [None] * 4, (ts, values)
        close, opened, trade, whale = anchors
        assert isinstance(close, datetime)
        assert isinstance(opened, datetime)
        assert isinstance(trade, float)
        assert isinstance(whale, float)
        back = (
            hours_between(ts, close),
            hours_between(opened, ts),
            seconds_since(trade, ts),
            seconds_since(whale, ts),
        )
        assert [v.hex() for v in back] == [v.hex() for v in values]  # type: ignore[union-attr]


def test_one_instant_serves_every_row_that_counts_from_it() -> None:
    """What makes the anchors cheap: the same close, row after row, compresses to nothing."""
    close = datetime(2027, 3, 1, 17, 0, tzinfo=UTC)
    last_trade = T0.timestamp() - 12.345
    slots = [T0 + timedelta(minutes=m, seconds=0.5 * (m % 3)) for m in range(600)]
    assert {anchor_of(hours_to_close(close, ts), ts, Anchor.HOURS_UNTIL) for ts in slots} == {close}
    trades = {anchor_of(ts.timestamp() - last_trade, ts, Anchor.SECONDS_AFTER) for ts in slots}
    assert trades == {last_trade}


def test_a_value_no_instant_gives_back_is_stored_as_it_is() -> None:
    ts = T0 + timedelta(minutes=7)
    assert anchor_of(math.pi, ts, Anchor.HOURS_UNTIL) is None  # not whole microseconds
    assert anchor_of(0.1, ts, Anchor.SECONDS_AFTER) is None  # not a difference of two epochs
    assert anchor_of(-0.0, ts, Anchor.HOURS_AFTER) is None  # 0.0 would come back
    assert anchor_of(float("nan"), ts, Anchor.SECONDS_AFTER) is None
    assert anchor_of(1e12, ts, Anchor.HOURS_UNTIL) is None
    assert anchor_of(2.0, ts.replace(tzinfo=None), Anchor.HOURS_UNTIL) is None
    assert anchored([None, math.pi, 2.0, None], ts) == (
        [None, math.pi, None, None],
        [None, None, ts.timestamp() - 2.0, None],
    )


def writer(pool: asyncpg.Pool) -> BulkWriter:
    return BulkWriter(pool, max_future_skew_s=3600, clock=lambda: NOW)


def with_clocks(row: FeatureRow, values: tuple[float | None, ...]) -> FeatureRow:
    named = dict(zip(FEATURE_COLUMNS, row.values, strict=True))
    named.update(zip(CLOCKS, values, strict=True))
    return row._replace(values=tuple(named.values()))


async def test_the_view_gives_back_every_clock_feature_anchored_or_not(pool: asyncpg.Pool) -> None:
    rng = random.Random(5)
    rows = []
    for i in range(400):
        base = feature_row(i, tok=f"{7000 + i % 4}")
        values = produced(rng, base.ts) if i % 5 else (math.pi, 7.25, 0.1, None)
        rows.append(with_clocks(base, values))
    assert (await writer(pool).write(MARKET_FEATURES, rows)).inserted == len(rows)
    stored = await pool.fetch(
        "SELECT count(*) FILTER (WHERE close_at IS NOT NULL) AS close_at,"
        " count(*) FILTER (WHERE hours_to_close IS NOT NULL) AS hours_to_close"
        " FROM feature_samples"
    )
    assert (stored[0]["close_at"], stored[0]["hours_to_close"]) == (320, 80)
    read = await pool.fetch(
        f"SELECT token_id, ts, {', '.join(CLOCKS)} FROM market_features ORDER BY ts, token_id"
    )
    expected = sorted(rows, key=lambda row: (row.ts, row.token_id))
    for record, row in zip(read, expected, strict=True):
        want = [row.values[FEATURE_COLUMNS.index(name)] for name in CLOCKS]
        got = [record[name] for name in CLOCKS]
        assert [None if v is None else float(v).hex() for v in got] == [
            None if v is None else float(v).hex() for v in want
        ], (row.ts, want, got)


async def test_sql_counts_from_an_instant_as_python_does(pool: asyncpg.Pool) -> None:
    rng = random.Random(3)
    pairs = [(random_instant(rng), random_instant(rng)) for _ in range(2_000)]
    anchors = [
        rng.uniform(0, 2e9) if n % 2 else round(rng.uniform(0, 2e9), 3) for n in range(2_000)
    ]
    records = await pool.fetch(
        "SELECT hours_between(a, b) AS hours, seconds_since(s, a) AS seconds"
        " FROM unnest($1::timestamptz[], $2::timestamptz[], $3::float8[]) AS u(a, b, s)",
        [a for a, _ in pairs],
        [b for _, b in pairs],
        anchors,
    )
    for record, (a, b), anchor in zip(records, pairs, anchors, strict=True):
        assert record["hours"].hex() == hours_between(a, b).hex()
        assert record["seconds"].hex() == seconds_since(anchor, a).hex()


async def test_a_feature_that_is_not_a_number_is_refused_and_the_rest_stored(
    pool: asyncpg.Pool,
) -> None:
    """Not a crash of the whole write (the anchors, or asyncpg's encoder, would raise)."""
    bad = with_clocks(feature_row(0), ("3.5", None, None, None))  # type: ignore[arg-type]
    good = with_clocks(feature_row(1), (3.5, None, None, None))
    result = await writer(pool).write(MARKET_FEATURES, [bad, good])
    assert result.inserted == 1
    (rejected,) = result.rejected
    assert rejected.reason == "hours_to_close '3.5' is not a number"
    assert await pool.fetchval("SELECT hours_to_close FROM market_features") == 3.5
