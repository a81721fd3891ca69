"""The lake's names and manifest entries (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from polyfarm.lake.layout import (
    GapRecord,
    LakeError,
    ManifestEntry,
    day_bounds,
    day_of_partition,
    decode_entry,
    encode_entry,
    manifest_file,
    partition_file,
    sealed_days,
)

DAY = date(2026, 3, 2)


def test_a_partition_is_a_hive_folder_per_table_and_day() -> None:
    assert partition_file("trades", DAY) == "trades/date=2026-03-02/part-0.parquet"
    assert manifest_file("trades", DAY) == "_manifest/trades/date=2026-03-02.json"
    assert day_of_partition("date=2026-03-02") == DAY
    assert day_of_partition("date=2026-03-02.json") == DAY
    for bad in ("2026-03-02", "date=2026-13-02", "date=", "day=2026-03-02"):
        with pytest.raises(LakeError, match="not a lake partition name"):
            day_of_partition(bad)


def test_a_day_is_sealed_once_late_rows_have_had_their_time() -> None:
    first = date(2026, 2, 27)
    hour = timedelta(hours=1)
    # 03-02 01:00 with two hours to wait: 03-01 ended only an hour ago.
    assert sealed_days(first, datetime(2026, 3, 2, 1, tzinfo=UTC), 2 * hour) == [
        date(2026, 2, 27),
        date(2026, 2, 28),
    ]
    assert sealed_days(first, datetime(2026, 3, 2, 2, tzinfo=UTC), 2 * hour)[-1] == date(2026, 3, 1)
    assert sealed_days(date(2026, 3, 5), datetime(2026, 3, 2, tzinfo=UTC), hour) == []
    start, end = day_bounds(DAY)
    assert (start, end - start) == (datetime(2026, 3, 2, tzinfo=UTC), timedelta(days=1))


def test_an_entry_survives_the_round_trip_and_a_damaged_one_is_named() -> None:
    at = datetime(2026, 3, 3, 2, tzinfo=UTC)
    gap = GapRecord("ws_trades", at - timedelta(days=1), at - timedelta(hours=23), "ws_closed")
    entry = ManifestEntry(
        table="trades",
        day=DAY,
        rows=12,
        first_ts=at - timedelta(hours=25),
        last_ts=at - timedelta(hours=3),
        bytes=4096,
        sha256="ab" * 32,
        source="7312/polyfarm",
        written_at=at,
        gaps=(gap,),
    )
    assert decode_entry(encode_entry(entry), "x") == entry
    for damaged in (b"{", b'{"table": "trades"}', encode_entry(entry).replace(b"12", b'"12"')):
        with pytest.raises(LakeError, match=r"_manifest/trades/date=2026-03-02\.json: not a"):
            decode_entry(damaged, manifest_file("trades", DAY))
