"""A book change's number within its token's millisecond comes from the change, not from the
order of receipt: two collectors store it under one key."""

from __future__ import annotations

from polyfarm.store.rows import DELTA_SEQ_MASK, delta_seq


def test_the_same_change_gets_the_same_number_however_it_is_spelled() -> None:
    assert delta_seq("BUY", "0.480", "120.50") == delta_seq("buy", "0.48", "120.5")


def test_every_part_of_a_change_tells_it_apart() -> None:
    base = ("BUY", "0.48", "120.5")
    variants = [("SELL", "0.48", "120.5"), ("BUY", "0.49", "120.5"), ("BUY", "0.48", "0")]
    numbers = {delta_seq(*base), *(delta_seq(*v) for v in variants)}
    assert len(numbers) == 1 + len(variants)
    assert all(0 <= n <= DELTA_SEQ_MASK for n in numbers)  # fits the signed 32-bit column
