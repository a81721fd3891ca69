from __future__ import annotations

import pytest

from polyfarm.backoff import Backoff


def test_steps_double_up_to_the_cap() -> None:
    backoff = Backoff(base_s=1, max_s=8)
    assert [backoff.step(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_equal_jitter_keeps_half_a_step_certain_and_randomises_the_rest() -> None:
    backoff = Backoff(base_s=1, max_s=8)
    assert [backoff.delay(n, 0.0) for n in range(1, 6)] == [0.5, 1, 2, 4, 4]
    assert backoff.delay(3, 0.5) == 3.0
    assert backoff.delay(3, 0.999) == pytest.approx(3.998)


def test_never_a_busy_loop() -> None:
    backoff = Backoff(base_s=2, max_s=60)
    assert min(backoff.delay(n, 0.0) for n in range(-3, 20)) == 1.0
