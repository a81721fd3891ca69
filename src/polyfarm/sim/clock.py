"""A simulated wall clock: a fixed starting epoch running at ``speed`` times real time.

The real-time source is injectable (``monotonic``) so tests can drive it; ``advance`` jumps
forward; ``set_speed`` re-anchors so the simulated time never jumps when the speed changes.

Speed and jumps are bounded: the world generates work in proportion to the simulated time that
passes (new markets, closes, resolutions), and all of it happens on the event loop, so an
unbounded jump would block the loop (and with it SIGTERM) and grow memory without limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

MAX_SPEED = 10_000.0  # simulated seconds per real second (about 2.8 hours each second)
MAX_ADVANCE_S = 7 * 86_400.0  # one jump of the clock: a week


def bounded_number(value: object, name: str, high: float) -> float:
    """``value`` as a float in [0, ``high``]; booleans, NaN, infinities, strings and other
    types are refused with a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ValueError(f"{name} must be a number from 0 to {high:g}, got {shown}")
    return float(value)


class SimClock:
    def __init__(
        self,
        start: float,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        speed = bounded_number(speed, "speed", MAX_SPEED)
        self._monotonic = monotonic
        self._start = start
        self._anchor_sim = start
        self._anchor_real = monotonic()
        self._speed = speed

    @property
    def start(self) -> float:
        return self._start

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self._anchor_sim + (self._monotonic() - self._anchor_real) * self._speed

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def advance(self, seconds: float) -> float:
        """Jump the simulated clock forward (at most ``MAX_ADVANCE_S``); returns the new time."""
        if isinstance(seconds, int | float) and seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        self._anchor_sim += bounded_number(seconds, "seconds", MAX_ADVANCE_S)
        return self.now()

    def set_speed(self, speed: float) -> None:
        speed = bounded_number(speed, "speed", MAX_SPEED)
        self._anchor_sim = self.now()
        self._anchor_real = self._monotonic()
        self._speed = speed

    def snapshot(self) -> dict[str, object]:
        now = self.now()
        return {
            "now": now,
            "now_iso": datetime.fromtimestamp(now, UTC).isoformat(),
            "start": self._start,
            "speed": self._speed,
            "elapsed_s": now - self._start,
        }
