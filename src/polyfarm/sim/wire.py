"""Wire formatting shared by every renderer: decimal strings, timestamps and identifiers.

Prices are integers in ten-thousandths (1 = 0.0001: ticks of 0.01, 0.001 and 0.0025 all fall on
the grid) and sizes integers in hundredths of a share, so the simulator never formats a binary
float where the wire carries a decimal string.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

PRICE_SCALE = 10_000
HALF_SCALE = 2 * PRICE_SCALE  # midpoints are kept in half units (0.00005)
SIZE_SCALE = 100
TICK_CENT = 100  # 0.01
TICK_MILLI = 10  # 0.001, near 0 and 1
TICK_QUARTER = 25  # 0.0025 (World Cup markets since 2026-07)


def _price_text(units: int) -> str:
    whole, frac = divmod(units, PRICE_SCALE)
    if frac == 0:
        return str(whole)
    return f"{whole}.{frac:04d}".rstrip("0")


PRICE_STR: tuple[str, ...] = tuple(_price_text(units) for units in range(PRICE_SCALE + 1))


def price_str(units: int) -> str:
    """Ten-thousandths → ``"0.51"``, ``"0.001"``, ``"0.5025"``, ``"1"``."""
    return PRICE_STR[units]


def size_str(hundredths: int) -> str:
    """Hundredths of a share → ``"1250"``, ``"310.5"``, ``"12848.17"``."""
    whole, frac = divmod(hundredths, SIZE_SCALE)
    if frac == 0:
        return str(whole)
    if frac % 10 == 0:
        return f"{whole}.{frac // 10}"
    return f"{whole}.{frac:02d}"


def decimal_str(value: float, places: int = 6) -> str:
    """A float as a short decimal string without trailing zeros (``9.999997``)."""
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return text or "0"


def half_units_str(half_units: int) -> str:
    """A midpoint kept in units of 0.00005 → ``"0.4255"``, ``"0.50125"``."""
    whole, frac = divmod(half_units * 5, 100_000)
    if frac == 0:
        return str(whole)
    return f"{whole}.{frac:05d}".rstrip("0")


def iso_z(ts: float, *, micros: bool = False) -> str:
    """``2026-03-11T09:29:01.328428Z`` (micros) or ``2026-03-12T09:25:00Z``."""
    moment = datetime.fromtimestamp(ts, UTC)
    if micros:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def pg_time(ts: float) -> str:
    """Postgres text style used by Gamma ``closedTime``: ``2026-03-19 23:20:15+00``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def hex256(rng: random.Random) -> str:
    """``0x`` + 64 lowercase hex digits (condition ids, question ids, tx hashes)."""
    return f"0x{rng.getrandbits(256):064x}"


def token_id(rng: random.Random) -> str:
    """An ERC-1155 position id as a 76-78 digit decimal string."""
    return str(rng.randrange(10**75, 2**256))


def address(rng: random.Random) -> str:
    return f"0x{rng.getrandbits(160):040x}"
