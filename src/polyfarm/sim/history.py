"""Per-minute midpoint history behind ``/prices-history`` (pure).

After the simulation starts every book change records the YES midpoint for its minute (compact
``array`` storage, trimmed to ~31 days). Before the start a smooth deterministic path ending at
the market's opening price stands in, so long windows are never empty. ``p`` is the midpoint
forward-filled into each bucket; the NO token reads ``1 - p``.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right

from polyfarm.sim.model import MarketState
from polyfarm.sim.wire import HALF_SCALE

KEEP_MINUTES = 31 * 1440


def record_mid(market: MarketState, ts_s: float, mid_half: int) -> None:
    minute = int(ts_s // 60)
    minutes, mids = market.hist_min, market.hist_mid
    if minutes and minutes[-1] >= minute:
        mids[-1] = mid_half
        return
    minutes.append(minute)
    mids.append(mid_half)
    if len(minutes) > 2 * KEEP_MINUTES:
        del minutes[:KEEP_MINUTES]
        del mids[:KEEP_MINUTES]


class SyntheticPath:
    """A smooth, seeded pre-start price path that reaches ``p0`` at the start time."""

    def __init__(self, seed: int, market: MarketState, start_s: float) -> None:
        rng = random.Random(seed * 1_000_003 + market.idx)
        self.p0 = 1.0 / (1.0 + math.exp(-market.anchor_x))
        scale = max(4.0 * self.p0 * (1.0 - self.p0), 0.1)
        self.start_s = start_s
        self.waves = [
            (rng.uniform(0.02, 0.07) * scale, 2 * math.pi / math.exp(rng.uniform(10.0, 14.4)))
            for _ in range(3)
        ]

    def mid_half(self, ts: float) -> int:
        age = self.start_s - ts
        price = self.p0 + sum(amp * math.sin(omega * age) for amp, omega in self.waves)
        return min(max(round(price * HALF_SCALE), 2), HALF_SCALE - 2)


def mid_at(market: MarketState, is_yes: bool, ts: int, synthetic: SyntheticPath) -> int:
    """The token's midpoint (half units) in force at ``ts``: the last recorded minute at or
    before it, else the synthetic pre-start path."""
    idx = bisect_right(market.hist_min, ts // 60) - 1
    half = market.hist_mid[idx] if idx >= 0 else synthetic.mid_half(ts)
    return half if is_yes else HALF_SCALE - half


def bucket_mids(
    market: MarketState,
    is_yes: bool,
    window: tuple[float, float],
    step_s: int,
    synthetic: SyntheticPath,
) -> list[tuple[int, int]]:
    """(bucket start, midpoint in half units) every ``step_s`` over ``window`` (epoch seconds,
    already clipped to now/close), the midpoint carried forward into each bucket."""
    start, end = max(window[0], market.created_s), window[1]
    first = math.ceil(start / step_s) * step_s
    return [
        (ts, mid_at(market, is_yes, ts, synthetic)) for ts in range(first, int(end) + 1, step_s)
    ]


def price_of(half: int) -> float:
    return round(half / HALF_SCALE, 5)


def history_points(
    market: MarketState,
    is_yes: bool,
    window: tuple[float, float],
    fidelity_min: int,
    synthetic: SyntheticPath,
) -> list[dict[str, float | int]]:
    """CLOB ``/prices-history`` points (``t``, ``p``) every ``fidelity_min`` minutes."""
    buckets = bucket_mids(market, is_yes, window, fidelity_min * 60, synthetic)
    return [{"t": ts, "p": price_of(half)} for ts, half in buckets]
