"""A book change's number within its token's millisecond comes from the change, not from the
order of receipt: two collectors store it under one key."""

from __future__ import annotations

from polyfarm.store.rows import DELTA_SEQ_MASK, delta_seq


def test_the_same_change_gets_the_same_number_however_it_is_spelled() -> None:
    assert delta_seq("ab12", "BUY", "0.480", "120.50") == delta_seq("ab12", "buy", "0.48", "120.5")


def test_every_part_of_a_change_tells_it_apart() -> None:
    base = ("ab12", "BUY", "0.48", "120.5")
    variants = [
        ("ab13", "BUY", "0.48", "120.5"),
        ("ab12", "SELL", "0.48", "120.5"),
        ("ab12", "BUY", "0.49", "120.5"),
        ("ab12", "BUY", "0.48", "0"),
        (None, "BUY", "0.48", "120.5"),
    ]
    numbers = {delta_seq(*base), *(delta_seq(*v) for v in variants)}
    assert len(numbers) == 1 + len(variants)
    assert all(0 <= n <= DELTA_SEQ_MASK for n in numbers)  # fits the signed 32-bit column
