"""What a backfill asks the venue for, and what it still lacks (pure: no I/O, no clock).

Times are epoch seconds and spans are half-open ``[start, end)``.

* ``todo_spans``: the wanted range less the windows already done, cut into windows no longer
  than the venue's 15-day cap, so a resumed or repeated run asks only for what is missing.
* ``ladder``: the (route, bucket) attempts for a hole, finest first. At each grain
  the route preferred for this window goes first and the other follows; the Data API is
  skipped where its documented retention for that grain cannot reach (1-minute 7 days,
  5-minute 60, 30-minute 90, 3 h and 12 h forever, docs/polymarket-wire.md §11). The CLOB's
  retention is not documented, so it is always tried.
* ``holes``: the minutes of a span that no point covers (a point at ``t`` served at a bucket of
  ``b`` seconds covers ``[t, t + b)``), merged into spans.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from polyfarm.polymarket.clob import HISTORY_MAX_SPAN_S

MINUTE_S = 60
DAY_S = 86_400
Span = tuple[int, int]

#: Bucket widths the ladder walks, finest first: 1 minute, 5, 30, 3 hours, 12 hours.
GRAINS_S = (60, 300, 1_800, 10_800, 43_200)
#: How far back the Data API keeps each grain (None: since 2022-11-18, i.e. for good).
DATA_API_RETENTION_S: dict[int, int | None] = {
    60: 7 * DAY_S,
    300: 60 * DAY_S,
    1_800: 90 * DAY_S,
    10_800: None,
    43_200: None,
}


class Route(enum.Enum):
    DATA_API = "data_api"
    CLOB = "clob"

    @property
    def other(self) -> Route:
        return Route.CLOB if self is Route.DATA_API else Route.DATA_API


@dataclass(frozen=True)
class Attempt:
    route: Route
    bucket_s: int


def floor_to(moment: int, step: int) -> int:
    return moment // step * step


def ceil_to(moment: int, step: int) -> int:
    return -(-moment // step) * step


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, overlapping or touching spans joined."""
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract(wanted: Span, done: Iterable[Span]) -> list[Span]:
    """The parts of ``wanted`` that no span of ``done`` covers."""
    left: list[Span] = []
    cursor, end = wanted
    for d_start, d_end in merge(done):
        if d_end <= cursor or d_start >= end:
            continue
        if d_start > cursor:
            left.append((cursor, d_start))
        cursor = max(cursor, d_end)
    if cursor < end:
        left.append((cursor, end))
    return left


def cut(spans: Iterable[Span], max_span_s: int = HISTORY_MAX_SPAN_S) -> list[Span]:
    """Spans cut into windows of at most ``max_span_s``."""
    windows: list[Span] = []
    for start, end in spans:
        while start < end:
            upper = min(start + max_span_s, end)
            windows.append((start, upper))
            start = upper
    return windows


def todo_spans(
    wanted: Span, done: Iterable[Span], max_span_s: int = HISTORY_MAX_SPAN_S
) -> list[Span]:
    """Windows still to fetch: ``wanted`` less ``done``, cut to the venue's window cap."""
    return cut(subtract(wanted, done), max_span_s)


def life_span(wanted: Span, born_s: int | None, closed_s: int | None, now_s: int) -> Span | None:
    """The part of ``wanted`` in which the market existed and was trading, whole minutes
    (the minute it closed in included); None when nothing is left. The venue serves no
    history before a market's creation or after its close, so those minutes are not holes."""
    start = max(wanted[0], born_s if born_s is not None else wanted[0])
    closing = ceil_to(closed_s, MINUTE_S) if closed_s is not None else wanted[1]
    end = floor_to(min(wanted[1], closing, now_s), MINUTE_S)
    start = ceil_to(start, MINUTE_S)
    return (start, end) if end > start else None


def ladder(prefer: Route, grains: Sequence[int] = GRAINS_S) -> list[Attempt]:
    """The attempts for a hole, finest grain first: at the finest, the preferred route then
    the other; at coarser ones the Data API (whose coarse grains are kept longest) first."""
    steps: list[Attempt] = []
    for grain in grains:
        order = (prefer, prefer.other) if grain == grains[0] else (Route.DATA_API, Route.CLOB)
        steps.extend(Attempt(route, grain) for route in order)
    return steps


def worth_asking(attempt: Attempt, hole: Span, now_s: int) -> bool:
    """Not the Data API for a grain whose documented retention ends before the hole does."""
    return attempt.route is Route.CLOB or data_api_reaches(hole, now_s, attempt.bucket_s)


def data_api_reaches(hole: Span, now_s: int, grain: int) -> bool:
    keep = DATA_API_RETENTION_S.get(grain)
    return keep is None or hole[1] > now_s - keep


#: Points per page of the Data API's history (its largest ``limit``); the CLOB answers a whole
#: window in one response.
DATA_API_PAGE_POINTS = 10_000


def requests_for(route: Route, window: Span, bucket_s: int = MINUTE_S) -> int:
    """Requests one window costs on a route: the CLOB answers a window at once, the Data API
    pages it."""
    if route is Route.CLOB:
        return 1
    points = max(1, (window[1] - window[0]) // bucket_s)
    return -(-points // DATA_API_PAGE_POINTS)


@dataclass
class RouteBalance:
    """Which route a window is asked from first at 1 minute. The two routes have budgets of
    their own (documented alike: 1,000 requests per 10 s), so windows go to the route with the
    fewer requests planned so far, counting what a window costs there; where the Data API no
    longer keeps 1-minute points the CLOB goes first. ``data_api_load`` starts at the
    requests already planned on the Data API's budget (the trade tape)."""

    clob_load: int = 0
    data_api_load: int = 0

    def choose(self, window: Span, now_s: int) -> Route:
        if not data_api_reaches(window, now_s, MINUTE_S):
            route = Route.CLOB
        else:
            clob = self.clob_load + requests_for(Route.CLOB, window)
            data = self.data_api_load + requests_for(Route.DATA_API, window)
            route = Route.CLOB if clob <= data else Route.DATA_API
        if route is Route.CLOB:
            self.clob_load += requests_for(route, window)
        else:
            self.data_api_load += requests_for(route, window)
        return route


def covered(points: Iterable[tuple[int, int]]) -> list[Span]:
    """What points of (t, bucket seconds) cover."""
    return merge((t, t + bucket) for t, bucket in points)


def holes(span: Span, points: Iterable[tuple[int, int]]) -> list[Span]:
    """Whole minutes of ``span`` no point covers."""
    return _whole_minutes(subtract(span, covered(points)))


def _whole_minutes(spans: Iterable[Span]) -> list[Span]:
    minutes = ((ceil_to(s, MINUTE_S), floor_to(e, MINUTE_S)) for s, e in spans)
    return [(s, e) for s, e in minutes if e > s]


def holes_on_grid(
    span: Span, times: Sequence[int] | npt.NDArray[np.int64], bucket_s: int
) -> list[Span]:
    """``holes`` for the sorted, distinct bucket starts (epoch seconds) of one answer: one
    point per bucket from the bucket ``span`` begins in (the usual answer) leaves nothing to
    merge; any other answer (up to 21,600 points) is merged into runs with numpy."""
    first = floor_to(span[0], bucket_s)
    count = len(times)
    if count and times[0] == first and count == ceil_to(span[1] - first, bucket_s) // bucket_s:
        return []
    return _whole_minutes(subtract(span, runs(np.asarray(times, np.int64), bucket_s)))


def runs(starts: npt.NDArray[np.int64], bucket_s: int) -> list[Span]:
    """``covered`` for points all ``bucket_s`` wide: a run ends where the next point starts
    after the bucket before it ends (touching buckets join, as ``merge`` joins them)."""
    starts = np.unique(starts)
    if not len(starts):
        return []
    breaks = np.flatnonzero(starts[1:] > starts[:-1] + bucket_s) + 1
    first = starts[np.concatenate(([0], breaks))]
    last = starts[np.concatenate((breaks - 1, [len(starts) - 1]))]
    return list(zip(first.tolist(), (last + bucket_s).tolist(), strict=True))


def minutes_in(spans: Iterable[Span]) -> int:
    return sum((end - start) // MINUTE_S for start, end in spans)
