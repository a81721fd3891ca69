"""Values the compact tables do not store, because a view computes them from others (pure).

A spread is ``best_ask - best_bid``, a midpoint ``(best_bid + best_ask) / 2``, a book's best bid
and ask its first levels, a feature row's price its midpoint or else its last trade price: the
views of migrations 0011 to 0013 compute each exactly, in micro-units, from the columns kept.
The producers compute them the same way (``polyfarm.store.compact.exact_spread`` and
``exact_midpoint``); a row whose derived value says something else is refused here rather than
stored as something it did not say. Values are compared to the micro-unit they are kept in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from polyfarm.store.compact import MICROS, SOURCE_CODES
from polyfarm.store.compact_snapshots import DEPTH_LEVELS, depth_imbalance, parse_levels
from polyfarm.store.rejection import Problem, bad_value

HALF_MICRO = 0.5 / MICROS
SMALLINT_MAX = 32_767


def same_micros(stored: float | None, derived: float | None) -> bool:
    """Whether a stored value is the derived one, to the micro-unit both are kept in."""
    if stored is None or derived is None:
        return stored is derived
    return abs(stored - derived) < HALF_MICRO


def spread_of(bid: float | None, ask: float | None) -> float | None:
    return None if bid is None or ask is None else ask - bid


def midpoint_of(bid: float | None, ask: float | None) -> float | None:
    return None if bid is None or ask is None else (bid + ask) / 2


def spread_problem(bid: float | None, ask: float | None, spread: float | None) -> Problem | None:
    if same_micros(spread, spread_of(bid, ask)):
        return None
    return bad_value("spread", f"spread {spread!r} is not best_ask - best_bid ({bid!r}, {ask!r})")


def _derived_problem(row: Mapping[str, Any], derived: Mapping[str, float | None]) -> Problem | None:
    for name, value in derived.items():
        if not same_micros(row[name], value):
            return bad_value(name, f"{name} {row[name]!r} is not {value!r}, what it follows from")
    return None


def _smallint_problem(row: Mapping[str, Any], names: tuple[str, ...]) -> Problem | None:
    for name in names:
        if (row[name] or 0) > SMALLINT_MAX:
            return bad_value(name, f"{name} {row[name]!r} is over {SMALLINT_MAX}")
    return None


def book_shape_problem(row: Any) -> Problem | None:
    """An order-book snapshot row: the levels are [price, size] pairs, the best bid and ask are
    the first levels, the spread and midpoint follow from them, the level counts fit a
    smallint, the source has a code."""
    if row.source not in SOURCE_CODES:
        return bad_value("source", f"source {row.source!r} is none of {sorted(SOURCE_CODES)}")
    tops = []
    for name in ("bids", "asks"):
        try:
            levels = parse_levels(getattr(row, name))
        except (ValueError, TypeError) as exc:
            return bad_value(name, f"{name} are not [price, size] pairs: {exc}")
        if any(not 0.0 <= p <= 1.0 or not 0.0 <= q < math.inf for p, q in levels):
            return bad_value(name, f"{name} hold a price outside [0, 1] or a bad size")
        tops.append(levels[0][0] if levels else None)
    bid, ask = tops
    fields = row._asdict()
    derived = {
        "best_bid": bid,
        "best_ask": ask,
        "spread": spread_of(bid, ask),
        "midpoint": midpoint_of(bid, ask),
    }
    return (
        _derived_problem(fields, derived)
        or _smallint_problem(fields, ("bid_levels", "ask_levels"))
        or _imbalance_problem(fields, "imbalance")
        or _missing_depth_problem(fields)
    )


_BOOK_DEPTHS = tuple(f"{side}_depth_{n}" for side in ("bid", "ask") for n in DEPTH_LEVELS)


def _missing_depth_problem(values: Mapping[str, Any]) -> Problem | None:
    """A depth is stored only where the levels stored beside it do not give it back (NULL
    stands for the one they give), so a missing depth cannot be stored as itself."""
    for name in _BOOK_DEPTHS:
        if values[name] is None:
            return bad_value(name, f"{name} is missing where the stored levels give one")
    return None


def _imbalance_problem(values: Mapping[str, Any], name: str) -> Problem | None:
    """An imbalance is stored only where it differs from what its 10-level depths give (NULL
    stands for that one), so a missing imbalance beside depths that give one cannot be
    stored as itself."""
    derived = depth_imbalance(values["bid_depth_10"], values["ask_depth_10"])
    if values[name] is None and derived is not None:
        return bad_value(name, f"{name} is missing where the 10-level depths give {derived!r}")
    return None


def feature_shape_problem(values: Mapping[str, Any]) -> Problem | None:
    """A feature row, by feature name: the spread and midpoint follow from the best bid and
    ask, the price is the midpoint or else the last trade price, level counts fit a
    smallint."""
    bid, ask = values["best_bid"], values["best_ask"]
    midpoint = midpoint_of(bid, ask)
    derived = {
        "spread": spread_of(bid, ask),
        "midpoint": midpoint,
        "price": midpoint if midpoint is not None else values["last_trade_price"],
    }
    return (
        _derived_problem(values, derived)
        or _smallint_problem(values, ("bid_levels", "ask_levels"))
        or _imbalance_problem(values, "book_imbalance")
    )
