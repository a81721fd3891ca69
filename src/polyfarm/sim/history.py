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

KEEP_MINUTES = 31 * 1440
HALF_SCALE = 2000  # midpoints are stored in units of 0.0005


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


def history_points(
    market: MarketState,
    is_yes: bool,
    window: tuple[float, float],
    fidelity_min: int,
    synthetic: SyntheticPath,
) -> list[dict[str, float | int]]:
    """Bucketed midpoints over ``window`` (epoch seconds, already clipped to now/close)."""
    step = fidelity_min * 60
    start, end = max(window[0], market.created_s), window[1]
    first = math.ceil(start / step) * step
    minutes, mids = market.hist_min, market.hist_mid
    points: list[dict[str, float | int]] = []
    for ts in range(first, int(end) + 1, step):
        idx = bisect_right(minutes, ts // 60) - 1
        half = mids[idx] if idx >= 0 else synthetic.mid_half(ts)
        if not is_yes:
            half = HALF_SCALE - half
        points.append({"t": ts, "p": round(half / HALF_SCALE, 4)})
    return points
