"""Days of disk left and the storage level, with fixed numbers."""

from __future__ import annotations

import math

import pytest

from polyfarm.settings import Settings, StorageSettings
from polyfarm.store.disk import (
    DiskPressure,
    GrowthWindow,
    PressureThresholds,
    TableGrowth,
    days_left,
    disk_outlook,
    next_pressure,
    retention_fit,
)

GB = 10**9
MB_PER_MIN = 10**6
THRESHOLDS = PressureThresholds(warn_days=7, stop_deltas_days=2, slow_snapshots_days=1)


def steady_window(minutes: int, start_bytes: int = 5 * GB) -> GrowthWindow:
    window = GrowthWindow(window_s=3600, min_span_s=600)
    for minute in range(minutes + 1):
        window.add(minute * 60.0, start_bytes + minute * MB_PER_MIN)
    return window


def test_no_rate_before_the_samples_span_the_minimum() -> None:
    assert steady_window(9).bytes_per_day() is None  # 540 s of samples
    assert steady_window(10).bytes_per_day() == pytest.approx(1440 * MB_PER_MIN)


def test_the_rate_is_the_slope_of_the_latest_window_only() -> None:
    window = GrowthWindow(window_s=3600, min_span_s=600)
    window.add(0.0, 0)
    window.add(60.0, 100 * GB)  # a burst long before the window: forgotten
    for minute in range(10, 71):
        window.add(minute * 60.0, 100 * GB + minute * MB_PER_MIN)
    assert window.bytes_per_day() == pytest.approx(1440 * MB_PER_MIN)


def test_one_drop_does_not_reverse_the_rate() -> None:
    """A vacuum's dip among rising samples: the least-squares slope stays positive."""
    window = GrowthWindow(window_s=3600, min_span_s=600)
    sizes = [100, 101, 102, 103, 80, 105, 106, 107, 108, 109, 110]
    for minute, size in enumerate(sizes):
        window.add(minute * 60.0, size * MB_PER_MIN)
    rate = window.bytes_per_day()
    assert rate is not None
    assert rate > 0


def test_a_clock_going_back_starts_the_window_again() -> None:
    window = steady_window(20)
    window.add(0.0, 5 * GB)
    assert window.bytes_per_day() is None


def test_days_left_from_the_budget_or_the_free_space_whichever_is_smaller() -> None:
    by_budget = disk_outlook(4 * GB, 10 * GB, 100 * GB, 1.0 * GB)
    assert (by_budget.headroom_bytes, by_budget.days_left) == (6 * GB, 6.0)
    by_disk = disk_outlook(4 * GB, 10 * GB, 3 * GB, 1.0 * GB)
    assert (by_disk.headroom_bytes, by_disk.days_left) == (3 * GB, 3.0)
    assert by_disk.budget_bytes == 10 * GB


def test_without_a_budget_the_disk_is_the_budget() -> None:
    outlook = disk_outlook(4 * GB, None, 12 * GB, 2.0 * GB)
    assert (outlook.budget_bytes, outlook.headroom_bytes, outlook.days_left) == (
        16 * GB,
        12 * GB,
        6.0,
    )


def test_an_external_server_without_a_budget_has_no_limit() -> None:
    outlook = disk_outlook(4 * GB, None, None, 2.0 * GB)
    assert (outlook.budget_bytes, outlook.headroom_bytes, outlook.days_left) == (None, None, None)


def test_days_left_edges() -> None:
    assert days_left(0, None) == 0.0  # used up: no rate needed
    assert days_left(-GB, 1.0) == 0.0
    assert days_left(GB, None) is None  # rate not known yet
    assert days_left(GB, 0.0) == math.inf
    assert days_left(GB, -5.0) == math.inf
    assert days_left(3 * GB, 2.0 * GB) == 1.5


@pytest.mark.parametrize(
    ("days", "level"),
    [
        (30.0, DiskPressure.OK),
        (7.0, DiskPressure.OK),
        (6.9, DiskPressure.LOW),
        (1.9, DiskPressure.DELTAS_STOPPED),
        (0.9, DiskPressure.SNAPSHOTS_SLOWED),
        (0.0, DiskPressure.SNAPSHOTS_SLOWED),
        (math.inf, DiskPressure.OK),
    ],
)
def test_each_threshold_applies_at_once(days: float, level: DiskPressure) -> None:
    assert next_pressure(DiskPressure.OK, days, THRESHOLDS) is level


def test_levels_ease_only_past_the_recovery_margin() -> None:
    slowed = DiskPressure.SNAPSHOTS_SLOWED
    assert next_pressure(slowed, 1.2, THRESHOLDS) is slowed  # above 1, below 1.5
    assert next_pressure(slowed, 1.6, THRESHOLDS) is DiskPressure.DELTAS_STOPPED
    stopped = DiskPressure.DELTAS_STOPPED
    assert next_pressure(stopped, 2.5, THRESHOLDS) is stopped  # above 2, below 3
    assert next_pressure(stopped, 3.5, THRESHOLDS) is DiskPressure.LOW
    assert next_pressure(slowed, 20.0, THRESHOLDS) is DiskPressure.OK
    assert next_pressure(stopped, None, THRESHOLDS) is stopped  # unknown: unchanged


def test_what_each_level_gives_up() -> None:
    given_up = {
        level: (level.stores_book_deltas, level.slows_far_snapshots, level.degraded)
        for level in DiskPressure
    }
    assert given_up == {
        DiskPressure.OK: (True, False, False),
        DiskPressure.LOW: (True, False, False),
        DiskPressure.DELTAS_STOPPED: (False, False, True),
        DiskPressure.SNAPSHOTS_SLOWED: (False, True, True),
    }


def test_settings_thresholds_must_descend() -> None:
    assert StorageSettings().budget_bytes() is None
    assert StorageSettings(disk_budget_gb=1.5).budget_bytes() == 1_500_000_000
    with pytest.raises(ValueError, match="warn_days > stop_deltas_days"):
        StorageSettings(warn_days=2, stop_deltas_days=2)
    with pytest.raises(ValueError, match="min_rate_span_s"):
        StorageSettings(rate_window_s=600, min_rate_span_s=900)
    with pytest.raises(ValueError, match="sample_interval_s"):
        Settings(storage={"sample_interval_s": 5})  # type: ignore[arg-type]


def test_the_retention_window_weighs_each_table_for_its_own_days() -> None:
    # 10 GB a day kept 183 days (prices, books...), 20 GB a day kept 14 (book deltas).
    tables = [TableGrowth(10 * GB, 183), TableGrowth(20 * GB, 14)]
    need = 10 * GB * 183 + 20 * GB * 14
    exact = retention_fit(need + 5 * GB, 5 * GB, tables)
    assert (exact.days_fit, exact.days_configured, exact.fits) == (183, 183, True)
    # 1,000 GB of room: 14 days at 30 GB, then 580 GB at 10 GB a day.
    short = retention_fit(1_005 * GB, 5 * GB, tables)
    assert (short.days_fit, short.fits) == (14 + 58, False)
    assert retention_fit(305 * GB, 5 * GB, tables).days_fit == 10  # out before the deltas
    roomy = retention_fit(3_005 * GB, 5 * GB, tables)  # past the window: by how much
    assert (roomy.days_fit, roomy.fits) == (14 + 258, True)


def test_retention_fit_edges() -> None:
    tables = [TableGrowth(GB, 30)]
    assert retention_fit(5 * GB, 6 * GB, tables).days_fit == 0  # the rest fills the budget
    assert retention_fit(5 * GB, 0, [TableGrowth(0, 30)]).days_fit == math.inf
    assert retention_fit(5 * GB, 0, tables).days_fit == 5
