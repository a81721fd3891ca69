"""Clock features stored as the instants they count from (pure; migration 0022).

``hours_to_close``, ``hours_since_open``, ``seconds_since_trade`` and ``time_since_whale_s``
change on every feature row while the close, the open, the last trade and the last whale stay
put, so a row stores that instant (its *anchor*) and the ``market_features`` view computes the
feature from it and the row's ``ts``. An anchor is kept only where that computation gives the
feature back to the bit; otherwise the value is stored, as before migration 0022.

The functions below compute a feature from its anchor exactly as the view does (and as the
producers do, ``polyfarm.markets.tiers.hours_to_close`` and ``polyfarm.stream.features``):
a datetime difference is whole microseconds, ``timedelta.total_seconds()`` and
``datetime.timestamp()`` divide it by 10^6 correctly rounded, as SQL's exact ``extract(epoch
…)`` cast to ``float8`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from polyfarm.store.compact import same_double

# Beyond this many hours (about 114 years) a value is stored as it is: no venue date is that far.
_MAX_HOURS = 1e6
_MICROS_PER_HOUR = 3_600_000_000


class Anchor(Enum):
    """How a clock feature counts from its instant: hours up to it, hours after it (both
    anchored on a datetime), or seconds after it (on epoch seconds, as the producers keep
    trade times)."""

    HOURS_UNTIL = "hours until"
    HOURS_AFTER = "hours after"
    SECONDS_AFTER = "seconds after"


@dataclass(frozen=True)
class ClockFeature:
    feature: str
    anchor_column: str
    anchor: Anchor


CLOCK_FEATURES = (
    ClockFeature("hours_to_close", "close_at", Anchor.HOURS_UNTIL),
    ClockFeature("hours_since_open", "open_at", Anchor.HOURS_AFTER),
    ClockFeature("seconds_since_trade", "last_trade_at", Anchor.SECONDS_AFTER),
    ClockFeature("time_since_whale_s", "last_whale_at", Anchor.SECONDS_AFTER),
)
ANCHOR_COLUMNS = tuple(clock.anchor_column for clock in CLOCK_FEATURES)

AnchorValue = datetime | float


def hours_between(since: datetime, until: datetime) -> float:
    """SQL's ``hours_between``: ``(until - since).total_seconds() / 3600.0``."""
    return (until - since).total_seconds() / 3600.0


def seconds_since(anchor: float, ts: datetime) -> float:
    """SQL's ``seconds_since``: ``ts.timestamp() - anchor``."""
    return ts.timestamp() - anchor


def anchor_of(value: float | None, ts: datetime, anchor: Anchor) -> AnchorValue | None:
    """The instant ``value`` counts from at ``ts``, when the view gives ``value`` back from it
    to the bit; None when it would not (the value is then stored)."""
    if value is None or ts.tzinfo is None or not math.isfinite(value):
        return None  # a naive ts has no epoch that SQL and Python agree on
    if anchor is Anchor.SECONDS_AFTER:
        since = ts.timestamp() - value
        return since if same_double(seconds_since(since, ts), value) else None
    if abs(value) >= _MAX_HOURS:
        return None
    offset = timedelta(microseconds=round(value * _MICROS_PER_HOUR))
    if anchor is Anchor.HOURS_UNTIL:
        instant = ts + offset
        computed = hours_between(ts, instant)
    else:
        instant = ts - offset
        computed = hours_between(instant, ts)
    return instant if same_double(computed, value) else None


def anchored(
    values: Sequence[float | None], ts: datetime
) -> tuple[list[float | None], list[AnchorValue | None]]:
    """The four clock features of a row (``CLOCK_FEATURES`` order) as stored: each either
    its value (anchor None) or None beside its anchor."""
    stored: list[float | None] = []
    anchors: list[AnchorValue | None] = []
    for value, clock in zip(values, CLOCK_FEATURES, strict=True):
        instant = anchor_of(value, ts, clock.anchor)
        stored.append(value if instant is None else None)
        anchors.append(instant)
    return stored, anchors
