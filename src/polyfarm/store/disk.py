"""Days of disk left at the current rate, and what the farm gives up as they run out (pure).

The database's size is sampled over time (``GrowthWindow``); its growth rate is the
least-squares slope of the samples of a sliding window, known only once they span a few
minutes, so a restart's first samples (or one vacuum's drop) do not decide anything. The room
left (``headroom``) is the smaller of the budget minus the size and the free space of the disk
the database lives on; either may be unknown (no budget set, an external server's disk).

``DiskPressure`` is what the disk watcher publishes and the stream reads, through the
read-only ``PressureReading``: it worsens at once when a threshold is crossed and eases only
once the days left are ``RECOVERY_MARGIN`` times that threshold, so that the relief of
stopping ``book_deltas`` does not restart them a minute later.

``retention_fit`` asks a longer question: can the budget hold the retention window at all, at
the rate each time series grows (its last whole day's partition, on plain PostgreSQL)?
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

DAY_S = 86_400.0
RECOVERY_MARGIN = 1.5


class DiskPressure(StrEnum):
    """Mildest first; each level keeps what the previous ones gave up."""

    OK = "ok"
    LOW = "low"  # below storage.warn_days: warnings, nothing given up yet
    DELTAS_STOPPED = "deltas_stopped"  # book_deltas are not stored (live books are kept)
    SNAPSHOTS_SLOWED = "snapshots_slowed"  # the far tiers' book and feature cadences too

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    @property
    def stores_book_deltas(self) -> bool:
        return self.rank < DiskPressure.DELTAS_STOPPED.rank

    @property
    def slows_far_snapshots(self) -> bool:
        return self.rank >= DiskPressure.SNAPSHOTS_SLOWED.rank

    @property
    def degraded(self) -> bool:
        """Something that would be stored is given up."""
        return not self.stores_book_deltas


_ORDER = tuple(DiskPressure)


class PressureReading(Protocol):
    """What the writers of optional data read before storing it."""

    def pressure(self) -> DiskPressure: ...


class NoPressure:
    """Nothing watches the disk (benchmarks, tools): store everything."""

    def pressure(self) -> DiskPressure:
        return DiskPressure.OK


@dataclass(frozen=True)
class PressureThresholds:
    """Days left below which each level applies (they descend: warn > stop > slow)."""

    warn_days: float
    stop_deltas_days: float
    slow_snapshots_days: float

    def level_at(self, days_left: float, margin: float = 1.0) -> DiskPressure:
        if days_left < self.slow_snapshots_days * margin:
            return DiskPressure.SNAPSHOTS_SLOWED
        if days_left < self.stop_deltas_days * margin:
            return DiskPressure.DELTAS_STOPPED
        if days_left < self.warn_days * margin:
            return DiskPressure.LOW
        return DiskPressure.OK


def next_pressure(
    current: DiskPressure, days_left: float | None, thresholds: PressureThresholds
) -> DiskPressure:
    """The level after a new estimate: worse at once, better only past the recovery margin;
    unchanged while the days left are unknown."""
    if days_left is None:
        return current
    wanted = thresholds.level_at(days_left)
    if wanted.rank >= current.rank:
        return wanted
    eased = thresholds.level_at(days_left, RECOVERY_MARGIN)
    return eased if eased.rank < current.rank else current


class GrowthWindow:
    """Database sizes over the latest ``window_s`` seconds; a rate once they span
    ``min_span_s``."""

    def __init__(self, window_s: float, min_span_s: float) -> None:
        self._window_s = window_s
        self._min_span_s = min_span_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at_s: float, used_bytes: int) -> None:
        samples = self._samples
        if samples and at_s <= samples[-1][0]:  # the clock went back: start again
            samples.clear()
        samples.append((at_s, used_bytes))
        while at_s - samples[0][0] > self._window_s:
            samples.popleft()

    def bytes_per_day(self) -> float | None:
        samples = self._samples
        if len(samples) < 2 or samples[-1][0] - samples[0][0] < self._min_span_s:
            return None
        return least_squares_slope(samples) * DAY_S


def least_squares_slope(points: deque[tuple[float, int]] | list[tuple[float, int]]) -> float:
    """Slope of the least-squares line through ``points`` (at least two distinct x)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance


@dataclass(frozen=True)
class DiskOutlook:
    used_bytes: int  # the database's size
    budget_bytes: int | None  # the setting, else size + free space; None: no limit known
    headroom_bytes: int | None  # what may still be added; None: no limit known
    growth_bytes_per_day: float | None  # None: samples too short yet
    days_left: float | None  # None: unknown; math.inf: not growing

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def disk_outlook(
    used_bytes: int,
    budget_bytes: int | None,
    free_bytes: int | None,
    growth_bytes_per_day: float | None,
) -> DiskOutlook:
    """Room and days left, from the database's size, the budget, the disk's free space (each
    limit optional) and the growth rate."""
    limits = [budget_bytes - used_bytes] if budget_bytes is not None else []
    if free_bytes is not None:
        limits.append(free_bytes)
    headroom = min(limits) if limits else None
    if budget_bytes is None and free_bytes is not None:
        budget_bytes = used_bytes + free_bytes
    return DiskOutlook(
        used_bytes=used_bytes,
        budget_bytes=budget_bytes,
        headroom_bytes=headroom,
        growth_bytes_per_day=growth_bytes_per_day,
        days_left=days_left(headroom, growth_bytes_per_day),
    )


def days_left(headroom_bytes: int | None, growth_bytes_per_day: float | None) -> float | None:
    """0 when the room is used up (whatever the rate); infinite when not growing."""
    if headroom_bytes is None:
        return None
    if headroom_bytes <= 0:
        return 0.0
    if growth_bytes_per_day is None:
        return None
    if growth_bytes_per_day <= 0:
        return math.inf
    return headroom_bytes / growth_bytes_per_day


@dataclass(frozen=True)
class TableGrowth:
    """One time series: what a day of its rows takes, and how many days retention keeps."""

    bytes_per_day: float
    keep_days: float


@dataclass(frozen=True)
class RetentionFit:
    days_configured: float  # the longest retention of a time series
    days_fit: float  # days of rows the budget holds at the current rates (inf: no growth)

    @property
    def fits(self) -> bool:
        return self.days_fit >= self.days_configured


def retention_fit(
    budget_bytes: int, other_bytes: int, tables: Sequence[TableGrowth]
) -> RetentionFit:
    """The days of rows ``budget_bytes`` holds, against the longest retention configured.

    With ``d`` days of rows the database takes ``other_bytes`` (all but the time series) and,
    per table, its bytes per day times ``min(d, its retention)``; the tables kept longest go
    on growing past their retention, so that a budget larger than needed says by how much.
    """
    longest = max(table.keep_days for table in tables)
    room = budget_bytes - other_bytes
    if room <= 0:
        return RetentionFit(longest, 0.0)
    days, used = 0.0, 0.0
    growing = sum(table.bytes_per_day for table in tables)
    for keep in sorted({table.keep_days for table in tables if table.keep_days < longest}):
        if used + (keep - days) * growing >= room:
            break
        used += (keep - days) * growing
        days = keep
        growing -= sum(table.bytes_per_day for table in tables if table.keep_days == keep)
    if growing <= 0:
        return RetentionFit(longest, math.inf)
    return RetentionFit(longest, days + (room - used) / growing)
