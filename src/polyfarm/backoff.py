"""One retry backoff for every retry loop (jobs, services, HTTP, WebSocket, gap repair)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential steps with "equal jitter": the ``attempt``-th retry (from 1) waits half of
    ``min(max_s, base_s * 2**(attempt - 1))`` for certain and up to the other half at random,
    so retries spread out but never come faster than half a step (no busy loop). ``jitter``
    is a number in [0, 1) from the caller's random source, which tests fix."""

    base_s: float = 1.0
    max_s: float = 300.0

    def step(self, attempt: int) -> float:
        return min(self.max_s, self.base_s * 2.0 ** max(0, attempt - 1))

    def delay(self, attempt: int, jitter: float) -> float:
        step = self.step(attempt)
        return step / 2 + step / 2 * jitter
