"""Tiers by hours to close (seed 004): the nearer a market is to closing, the faster it is
sampled. Pure functions: the current time is always an argument."""

from __future__ import annotations

from datetime import datetime

from polyfarm.settings import StorageSettings, TierSettings

TIERS = (0, 1, 2, 3, 4)


def hours_to_close(end_date: datetime | None, now: datetime) -> float | None:
    if end_date is None:
        return None
    return (end_date - now).total_seconds() / 3600.0


def tier_for(
    end_date: datetime | None, closed: bool, now: datetime, settings: TierSettings
) -> int | None:
    """T0 > 48 h … T4 < 1 h; None for a closed market. A market past its end date that has
    not closed yet stays in T4: resolution often lags the nominal end."""
    if closed:
        return None
    hours = hours_to_close(end_date, now)
    if hours is None:
        return 0
    for tier, threshold in enumerate(settings.thresholds()):
        if hours > threshold:
            return tier
    return 4


def cadence_s(tier: int, settings: TierSettings) -> float:
    return settings.intervals()[tier]


def aligned(now: datetime, cadence: float) -> datetime:
    """The start of the cadence slot ``now`` falls in, so rows of one tick share a timestamp."""
    epoch = now.timestamp()
    return datetime.fromtimestamp(epoch - epoch % cadence, tz=now.tzinfo)


def book_cadence_s(tier: int | None, tiers: TierSettings, rest_s: float) -> float:
    """How often a market's books are snapshotted: every ``rest_s`` (the REST collector's
    interval), faster in the tiers that ask for it."""
    if tier is not None and tier in tiers.orderbook_tiers:
        return min(cadence_s(tier, tiers), rest_s)
    return rest_s


def slowed_cadence_s(cadence: float, tier: int | None, storage: StorageSettings) -> float:
    """A cadence under disk pressure: ``storage.slow_factor`` times longer in the tiers of
    ``storage.slowed_tiers`` (far from close), unchanged elsewhere."""
    if tier in storage.slowed_tiers:
        return cadence * storage.slow_factor
    return cadence
