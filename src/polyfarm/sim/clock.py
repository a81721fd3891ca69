"""A simulated wall clock: a fixed starting epoch running at ``speed`` times real time.

The real-time source is injectable (``monotonic``) so tests can drive it; ``advance`` jumps
forward; ``set_speed`` re-anchors so the simulated time never jumps when the speed changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class SimClock:
    def __init__(
        self,
        start: float,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
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
        """Jump the simulated clock forward; returns the new time."""
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        self._anchor_sim += seconds
        return self.now()

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
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
