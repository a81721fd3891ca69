"""Rows equal to the token's previous one are skipped (pure): the memory, and what counts as
equal for a book snapshot and for a feature row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from polyfarm.markets.snapshots import book_digest
from polyfarm.markets.unchanged import LastWritten
from polyfarm.store.rows import FEATURE_COLUMNS, FeatureRow, OrderBookSnapshotRow
from polyfarm.stream.features import feature_digest

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # on a 6-hour boundary
MINUTE = timedelta(minutes=1)
KEYFRAME_S = 6 * 3600.0


def book(ts: datetime, token: str = "t1", **changes: object) -> OrderBookSnapshotRow:
    row = OrderBookSnapshotRow(
        ts, token, "m1", "ws", "[[0.5,100.0]]", "[[0.52,20.0]]", 0.5, 0.52, 0.02, 0.51,
        50.0, 10.4, 1, 1, 100.0, 100.0, 100.0, 100.0, 20.0, 20.0, 20.0, 20.0, 0.67,
        None, None, None, None, "hash-at-" + ts.isoformat(), ts,
    )  # fmt: skip
    return row._replace(**changes)


def memory(skip: bool = True) -> LastWritten[OrderBookSnapshotRow]:
    return LastWritten(book_digest, skip=skip, keyframe_s=KEYFRAME_S)


def written(last: LastWritten[OrderBookSnapshotRow], row: OrderBookSnapshotRow) -> bool:
    """As the writers do: test, write, then remember."""
    due = last.due(row)
    if due:
        last.remember([row])
    return due


def test_a_repeated_book_is_skipped_until_it_changes() -> None:
    last = memory()
    assert written(last, book(T0)), "the first row of a token is always written"
    # Same levels and statistics; the slot, the venue's timestamp and hash all moved on.
    assert not written(last, book(T0 + MINUTE))
    assert not written(last, book(T0 + 2 * MINUTE))
    assert written(last, book(T0 + 3 * MINUTE, bids="[[0.5,90.0]]", bid_depth_usd=45.0))
    assert not written(last, book(T0 + 4 * MINUTE, bids="[[0.5,90.0]]", bid_depth_usd=45.0))
    assert written(last, book(T0 + 5 * MINUTE)), "back to an earlier state is a change"
    assert written(last, book(T0 + 6 * MINUTE, source="rest"))
    assert last.skipped == 3


def test_every_column_a_reader_sees_counts_except_the_times_and_hash() -> None:
    base = book(T0)
    for field in OrderBookSnapshotRow._fields:
        if field in ("ts", "token_id", "book_hash", "book_ts"):
            continue
        value = getattr(base, field)
        other = value + 1 if isinstance(value, float | int) else f"{value}!"
        if value is None:
            other = 1.0
        changed = base._replace(**{field: other})
        assert book_digest(changed) != book_digest(base), field


def test_a_keyframe_in_every_window_even_unchanged() -> None:
    last = memory()
    slots = [T0 + i * timedelta(minutes=30) for i in range(25)]  # 12 hours and a half
    kept = [slot for slot in slots if written(last, book(slot))]
    assert kept == [T0, T0 + timedelta(hours=6), T0 + timedelta(hours=12)]


def test_the_row_is_remembered_only_once_written() -> None:
    last = memory()
    assert last.due(book(T0))  # the write failed: nothing remembered
    assert last.due(book(T0 + MINUTE))


def test_forgotten_tokens_are_written_again() -> None:
    last = memory()
    for token in ("t1", "t2", "t3"):
        written(last, book(T0, token))
    last.forget("t1")
    last.keep_only({"t1", "t2"})
    assert len(last) == 1
    assert written(last, book(T0 + MINUTE, "t1"))
    assert not written(last, book(T0 + MINUTE, "t2"))
    assert written(last, book(T0 + MINUTE, "t3"))


def test_turned_off_every_row_is_written_and_nothing_kept() -> None:
    last = memory(skip=False)
    assert all(written(last, book(T0 + i * MINUTE)) for i in range(5))
    assert len(last) == 0


def features(ts: datetime, **values: float | int | bool | None) -> FeatureRow:
    """A quiet market seen at ``ts``: last trade at 11:00, closes 18:00, opened 00:00."""
    state: dict[str, float | int | bool | None] = dict.fromkeys(FEATURE_COLUMNS, 0.5)
    state.update(
        seconds_since_trade=(ts - T0.replace(hour=11)).total_seconds(),
        time_since_whale_s=None,
        hours_to_close=(T0.replace(hour=18) - ts).total_seconds() / 3600,
        hours_since_open=(ts - T0.replace(hour=0)).total_seconds() / 3600,
        day_of_week=ts.weekday(),
        hour_of_day=ts.hour,
    )
    state.update(values)
    return FeatureRow(ts, "t1", "m1", 3, tuple(state[name] for name in FEATURE_COLUMNS))


def test_features_moving_with_the_clock_alone_are_unchanged() -> None:
    then = features(T0)
    later = features(T0 + timedelta(hours=1, seconds=15))  # another hour of the day, too
    assert then.values != later.values
    assert feature_digest(later) == feature_digest(then)


def test_a_new_trade_or_any_state_value_is_a_change() -> None:
    then = features(T0)
    later = T0 + MINUTE
    assert feature_digest(features(later, seconds_since_trade=5.0)) != feature_digest(then)
    assert feature_digest(features(later, time_since_whale_s=5.0)) != feature_digest(then)
    assert feature_digest(features(later, trade_count_1h=3)) != feature_digest(then)
    assert feature_digest(features(later, best_bid=0.49)) != feature_digest(then)
    assert feature_digest(features(later)._replace(tier=4)) != feature_digest(then)
