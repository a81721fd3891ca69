"""Order-book statistics, pure: depth at 5/10/20/50 levels, imbalance, walls, microprice.

Input levels are ``(price, size)`` floats sorted best first (bids descending, asks ascending);
the wire's best-last order is turned around by the parsers before this point.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from polyfarm.store.compact import MICROS, exact_midpoint, exact_spread, to_micros
from polyfarm.store.compact_snapshots import DEPTH_LEVELS, depth_imbalance

Level = tuple[float, float]
IMBALANCE_LEVELS = 10
WALL_WINDOW = 20


@dataclass(frozen=True)
class Wall:
    price: float
    size: float


@dataclass(frozen=True)
class BookStats:
    best_bid: float | None
    best_ask: float | None
    spread: float | None
    midpoint: float | None
    microprice: float | None
    bid_levels: int
    ask_levels: int
    bid_depth: tuple[float, float, float, float]  # shares within best 5/10/20/50 levels
    ask_depth: tuple[float, float, float, float]
    bid_depth_usd: float  # whole side, price x size
    ask_depth_usd: float
    imbalance: float | None  # (bid - ask) / (bid + ask) over the best 10 levels, in shares
    bid_wall: Wall | None
    ask_wall: Wall | None


def depth(levels: Sequence[Level], count: int) -> float:
    """Shares within the best ``count`` levels: the exact decimal sum (sizes have at most six
    decimals, so a sum of micro-units) as the double nearest to it. A float sum is off by an
    ulp now and then, and differently under Python 3.12's compensated ``sum``; this is what
    SQL's ``levels_depth`` computes from the stored levels (migration 0023)."""
    return _running_depths(levels[:count])[-1]


def depths(levels: Sequence[Level]) -> tuple[float, float, float, float]:
    """``depth`` at each of ``DEPTH_LEVELS``, each size converted once."""
    running = _running_depths(levels[: DEPTH_LEVELS[-1]])
    five, ten, twenty, fifty = (running[min(n, len(running) - 1)] for n in DEPTH_LEVELS)
    return five, ten, twenty, fifty


def _running_depths(levels: Sequence[Level]) -> list[float]:
    """The depth within the best 0, 1, 2 … of ``levels``."""
    sizes = [size for _, size in levels]
    if not all(map(math.isfinite, sizes)):
        return list(itertools.accumulate(sizes, initial=0.0))  # refused downstream as bad
    totals = itertools.accumulate((to_micros(size) for size in sizes), initial=0)
    return [total / MICROS for total in totals]


def notional(levels: Sequence[Level]) -> float:
    return sum(price * size for price, size in levels)


def imbalance(bids: Sequence[Level], asks: Sequence[Level], count: int) -> float | None:
    return depth_imbalance(depth(bids, count), depth(asks, count))


def find_wall(levels: Sequence[Level], multiple: float, window: int = WALL_WINDOW) -> Wall | None:
    """The largest level near the touch when it is ``multiple`` times the window's mean size."""
    near = levels[:window]
    if len(near) < 2:
        return None
    mean = sum(size for _, size in near) / len(near)
    price, size = max(near, key=lambda level: level[1])
    return Wall(price, size) if mean > 0 and size >= multiple * mean else None


def microprice(bids: Sequence[Level], asks: Sequence[Level]) -> float | None:
    """The touch prices weighted by the opposite side's size: leans toward the thinner side."""
    if not bids or not asks:
        return None
    (bid, bid_size), (ask, ask_size) = bids[0], asks[0]
    total = bid_size + ask_size
    return None if total <= 0 else (bid * ask_size + ask * bid_size) / total


def book_stats(bids: Sequence[Level], asks: Sequence[Level], wall_multiple: float) -> BookStats:
    best_bid = bids[0][0] if bids else None
    best_ask = asks[0][0] if asks else None
    both = best_bid is not None and best_ask is not None
    bid_depth, ask_depth = depths(bids), depths(asks)
    ten = DEPTH_LEVELS.index(IMBALANCE_LEVELS)
    return BookStats(
        best_bid=best_bid,
        best_ask=best_ask,
        # Exact in micro-units: the doubles nearest to the decimal spread and midpoint.
        spread=exact_spread(best_bid, best_ask) if both else None,  # type: ignore[arg-type]
        midpoint=exact_midpoint(best_bid, best_ask) if both else None,  # type: ignore[arg-type]
        microprice=microprice(bids, asks),
        bid_levels=len(bids),
        ask_levels=len(asks),
        bid_depth=bid_depth,
        ask_depth=ask_depth,
        bid_depth_usd=notional(bids),
        ask_depth_usd=notional(asks),
        imbalance=depth_imbalance(bid_depth[ten], ask_depth[ten]),
        bid_wall=find_wall(bids, wall_multiple),
        ask_wall=find_wall(asks, wall_multiple),
    )
