"""A price history as columns, and the fast decode of a whole history page into them (pure).

A backfill stores millions of history points; one ``PricePoint`` (a Struct, a ``datetime`` and
a ``Decimal``) per point cost more CPU than everything else the backfill did. ``PriceSeries``
holds the same points as three numpy columns, and ``fast_series`` reads a page's records into
them with one typed decode. It serves a page only when that decode reads every record exactly
as the per-record parser would; any other page (a malformed record, a price written as a
string, a millisecond timestamp) is left to the per-record parser, which keeps the good records
and rejects only the bad ones, and its points become columns afterwards
(``PriceSeries.from_points``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from polyfarm.errors import PayloadError
from polyfarm.polymarket.domain import PricePoint

Int64s = npt.NDArray[np.int64]
Float64s = npt.NDArray[np.float64]

#: ``resolution_s`` where the venue gave none (the CLOB never does); a real one is never
#: negative (the parser rejects such a point).
NO_RESOLUTION = -1
US_PER_S = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# The per-record parser reads an epoch at or above this as milliseconds (``_convert.epoch``);
# the fast decode takes only seconds below it.
_MS_THRESHOLD = 100_000_000_000


@dataclass(frozen=True, eq=False)
class PriceSeries:
    """Price points as columns: ``ts_us`` microseconds since the Unix epoch (the instant the
    parser's ``datetime`` holds), ``price`` the double nearest the venue's decimal (what
    ``float(point.p)`` is), ``resolution_s`` the Data API's observation window
    (``NO_RESOLUTION`` where none was given)."""

    ts_us: Int64s
    price: Float64s
    resolution_s: Int64s

    def __len__(self) -> int:
        return len(self.ts_us)

    @classmethod
    def empty(cls) -> PriceSeries:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int64))

    @classmethod
    def from_points(cls, points: Sequence[PricePoint]) -> PriceSeries:
        return cls(
            np.array([(p.t - _EPOCH) // _MICROSECOND for p in points], np.int64),
            np.array([float(p.p) for p in points], np.float64),
            np.array(
                [NO_RESOLUTION if p.resolution_s is None else p.resolution_s for p in points],
                np.int64,
            ),
        )

    def seconds(self) -> Int64s:
        """Whole epoch seconds of each point (``int(t.timestamp())``: instants are positive)."""
        return self.ts_us // US_PER_S

    def take(self, which: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> PriceSeries:
        return PriceSeries(self.ts_us[which], self.price[which], self.resolution_s[which])

    def in_time_order(self) -> PriceSeries:
        """Sorted on the instant, points of one instant in the order they came (a stable sort,
        as the per-record parser sorts its points)."""
        ts = self.ts_us
        if len(ts) < 2 or bool(np.all(ts[1:] >= ts[:-1])):
            return self
        return self.take(np.argsort(ts, kind="stable"))

    def last_per_instant(self) -> PriceSeries:
        """Sorted, one point per instant: the last one that came (as a dict keyed on the
        instant keeps it)."""
        ordered = self.in_time_order()
        ts = ordered.ts_us
        if len(ts) < 2 or bool(np.all(ts[1:] > ts[:-1])):
            return ordered
        last = np.append(ts[1:] != ts[:-1], True)
        return ordered.take(last)

    def buckets_between(self, start_us: int, end_us: int) -> PriceSeries:
        """The points in ``[start, end)`` that are buckets: not the Data API's terminal tick
        (``resolution_s`` 0)."""
        ts = self.ts_us
        keep = (ts >= start_us) & (ts < end_us) & (self.resolution_s != 0)
        return self if bool(keep.all()) else self.take(keep)


def concat(parts: Sequence[PriceSeries]) -> PriceSeries:
    if not parts:
        return PriceSeries.empty()
    if len(parts) == 1:
        return parts[0]
    return PriceSeries(
        np.concatenate([p.ts_us for p in parts]),
        np.concatenate([p.price for p in parts]),
        np.concatenate([p.resolution_s for p in parts]),
    )


@dataclass(frozen=True)
class FastPage:
    """How one route's page is read fast: the typed decoder of its joined records, the columns
    of what it decoded, and the per-record parser that settles a price the double cannot (see
    ``fast_series``)."""

    decoder: msgspec.json.Decoder[list[Any]]
    # Epoch seconds in ``ts_us`` (``fast_series`` scales them); raises ``ValueError`` for a
    # value the per-record parser would reject and the typed decode cannot (a negative
    # ``resolution_seconds``).
    columns: Callable[[list[Any]], PriceSeries]
    parse_one: Callable[[msgspec.Raw], object]


def fast_series(records: Sequence[msgspec.Raw], page: FastPage) -> PriceSeries | None:
    """The page's points in time order, or None when only the per-record parser can read it.

    The typed decode reads a price as the nearest double where the parser reads the exact
    decimal (and converts it to that same double, msgspec rounding correctly). The two differ
    only on what they accept: a decimal just outside ``[0, 1]`` may round to 0.0 or 1.0, so a
    point whose double is 0.0 or 1.0 is checked by the per-record parser itself."""
    if not records:
        return PriceSeries.empty()
    try:
        series = page.columns(page.decoder.decode(b"[" + b",".join(records) + b"]"))
    except (msgspec.DecodeError, ValueError, OverflowError, TypeError):
        return None
    ts, price = series.ts_us, series.price
    readable = (ts > 0) & (ts < _MS_THRESHOLD) & (price >= 0.0) & (price <= 1.0)
    if not bool(readable.all()):  # NaN and infinities compare false
        return None
    edges = np.flatnonzero((price == 0.0) | (price == 1.0))
    if len(edges) and not _all_parse(records, edges.tolist(), page.parse_one):
        return None
    # Epoch seconds so far; microseconds as the parser's datetime holds them.
    timed = PriceSeries(ts * US_PER_S, price, series.resolution_s)
    return timed.in_time_order()


def _all_parse(
    records: Sequence[msgspec.Raw], which: list[int], parse_one: Callable[[msgspec.Raw], object]
) -> bool:
    try:
        for index in which:
            parse_one(records[index])
    except PayloadError:
        return False
    return True
