"""The pure planning of a backfill: windows left to do, the ladder of grains, holes."""

from __future__ import annotations

import random

import numpy as np

from polyfarm.backfill.plan import (
    DAY_S,
    Attempt,
    Route,
    RouteBalance,
    holes,
    holes_on_grid,
    ladder,
    life_span,
    subtract,
    todo_spans,
    worth_asking,
)

NOW = 1_000 * DAY_S


def test_windows_left_are_the_range_less_what_is_done_cut_to_15_days() -> None:
    assert subtract((0, 100), [(10, 20), (15, 30), (90, 200)]) == [(0, 10), (30, 90)]
    assert todo_spans((0, 40 * DAY_S), []) == [
        (0, 15 * DAY_S), (15 * DAY_S, 30 * DAY_S), (30 * DAY_S, 40 * DAY_S),
    ]  # fmt: skip
    assert todo_spans((0, DAY_S), [(0, DAY_S)]) == []


def test_a_markets_life_bounds_its_minutes() -> None:
    assert life_span((0, 3600), born_s=90, closed_s=1830, now_s=NOW) == (120, 1860)
    assert life_span((0, 3600), born_s=None, closed_s=None, now_s=1799) == (0, 1740)
    assert life_span((0, 3600), born_s=4000, closed_s=None, now_s=NOW) is None


def test_the_ladder_goes_coarser_and_skips_what_the_data_api_no_longer_keeps() -> None:
    steps = ladder(Route.CLOB)
    assert steps[:2] == [Attempt(Route.CLOB, 60), Attempt(Route.DATA_API, 60)]
    assert steps[2:4] == [Attempt(Route.DATA_API, 300), Attempt(Route.CLOB, 300)]
    assert steps[-1] == Attempt(Route.CLOB, 43_200)
    old = (NOW - 8 * DAY_S, NOW - 7 * DAY_S - 60)
    assert not worth_asking(Attempt(Route.DATA_API, 60), old, NOW)
    assert worth_asking(Attempt(Route.DATA_API, 300), old, NOW)
    assert worth_asking(Attempt(Route.CLOB, 60), old, NOW)
    ancient = (NOW - 400 * DAY_S, NOW - 399 * DAY_S)
    assert [s.bucket_s for s in ladder(Route.DATA_API) if worth_asking(s, ancient, NOW)] == [
        60, 300, 1_800, 10_800, 10_800, 43_200, 43_200,
    ]  # fmt: skip


def test_holes_are_the_whole_minutes_no_point_covers() -> None:
    points = [(0, 60), (60, 60), (300, 300)]  # a 5-minute bucket covers five minutes
    assert holes((0, 900), points) == [(120, 300), (600, 900)]
    assert holes((0, 600), [(0, 600)]) == []


def test_routes_share_the_work_by_what_a_window_costs_there() -> None:
    balance = RouteBalance()
    week = (NOW - 7 * DAY_S, NOW)  # 10,080 minutes: two Data API pages, one CLOB answer
    chosen = [balance.choose(week, NOW) for _ in range(30)]
    assert chosen.count(Route.CLOB) == 20
    assert (balance.clob_load, balance.data_api_load) == (20, 20)
    older = (NOW - 10 * DAY_S, NOW - 8 * DAY_S)
    assert balance.choose(older, NOW) is Route.CLOB


def test_a_whole_answer_on_the_grid_leaves_no_hole_and_a_gapped_one_does() -> None:
    assert holes_on_grid((60, 600), list(range(0, 600, 300)), 300) == []
    assert holes_on_grid((0, 300), [0, 60, 120, 180, 240], 60) == []
    assert holes_on_grid((0, 300), [0, 60, 180, 240], 60) == [(120, 180)]
    assert holes_on_grid((0, 300), [60, 120, 180, 240, 300], 60) == [(0, 60)]
    assert holes_on_grid((0, 300), [], 60) == [(0, 300)]


def test_holes_on_grid_are_the_holes_of_its_points() -> None:
    """Whatever the answer: gaps, points off the grid, before or after the span, touching."""
    rng = random.Random(11)
    for _ in range(2_000):
        bucket = rng.choice([60, 300, 1_800])
        span = (rng.randrange(0, 20_000), rng.randrange(20_000, 60_000))
        step = rng.choice([bucket, 60, 30, 7])
        grid = range(-2_000, 62_000, step)
        times = sorted(rng.sample(grid, rng.randrange(0, min(300, len(grid)))))
        want = holes(span, ((t, bucket) for t in times))
        assert holes_on_grid(span, times, bucket) == want
        assert holes_on_grid(span, np.array(times, np.int64), bucket) == want
