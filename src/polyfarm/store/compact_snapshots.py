"""How the two snapshot tables are stored: order books and feature rows (pure: no I/O).

The units and codes are those of ``polyfarm.store.compact``; ``polyfarm.store.derived`` holds
the checks that make leaving out derived values safe.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from typing import Any

import orjson

from polyfarm.store.clock_anchors import ANCHOR_COLUMNS, CLOCK_FEATURES, anchored
from polyfarm.store.compact import (
    MICROS,
    SOURCE_CODES,
    SidMap,
    Storage,
    book_hash_bytes,
    from_micros,
    optional_micros,
    same_double,
    to_micros,
)

# -- order-book snapshots ---------------------------------------------------------------------
# The top levels of each side, best first, packed: per level a big-endian int4 price and int8
# size, in micro-units (12 bytes; JSONB took about 37 a level, and an int4[] and an int8[] per
# side add about 40 bytes a side to their data). SQL decodes them with book_levels(); the best
# bid and ask are the first levels, and the spread and midpoint follow from them, so none of
# the four is stored.

Level = tuple[float, float]
_LEVEL = struct.Struct(">iq")


def parse_levels(value: str | bytes | Sequence[Sequence[float]]) -> list[Level]:
    """A side of a book as the row carries it (JSON text ``[[price, size], ...]``, or the
    list itself) as ``(price, size)`` pairs; ValueError when it is anything else."""
    levels = orjson.loads(value) if isinstance(value, str | bytes) else value
    if not isinstance(levels, list):
        raise ValueError("levels are not a list")
    pairs = []
    for level in levels:
        if not isinstance(level, list | tuple) or len(level) != 2:
            raise ValueError(f"level {level!r} is not a [price, size] pair")
        price, size = (float(v) for v in level)
        pairs.append((price, size))
    return pairs


def pack_levels(levels: Sequence[Level]) -> bytes:
    return pack_micro_levels(micro_levels(levels))


def micro_levels(levels: Sequence[Level]) -> list[tuple[int, int]]:
    return [(to_micros(price), to_micros(size)) for price, size in levels]


def pack_micro_levels(levels: Sequence[tuple[int, int]]) -> bytes:
    return b"".join(_LEVEL.pack(price, size) for price, size in levels)


def unpack_levels(packed: bytes) -> list[Level]:
    return [(from_micros(p), from_micros(s)) for p, s in _LEVEL.iter_unpack(packed)]


def depth_imbalance(bid: float | None, ask: float | None) -> float | None:
    """``(bid - ask) / (bid + ask)`` of two depths, None when the sum is not positive: how
    ``polyfarm.markets.book_stats`` computes an imbalance, and SQL's ``depth_imbalance``
    (migration 0021) the very same way."""
    if bid is None or ask is None:
        return None
    total = bid + ask
    return (bid - ask) / total if total > 0 else None


def stored_imbalance(imbalance: float | None, bid: float | None, ask: float | None) -> float | None:
    """What is stored of an imbalance beside its depths: nothing (NULL: the view computes it)
    when it is the one they give, else the value itself. Validation refuses a missing
    imbalance where the depths give one (``polyfarm.store.derived``)."""
    return None if imbalance == depth_imbalance(bid, ask) else imbalance


# A side's depth within the best 5 to 50 levels is the sum of the sizes, in micro-units, over
# 10^6 (``polyfarm.markets.book_stats.depth``); where the stored levels give it back to the bit
# (always for 5 levels at the default ``orderbook.depth``, for every depth of a thin side) it is
# left to the view (SQL's ``levels_depth``, migration 0023). Validation refuses a missing depth.
DEPTH_LEVELS = (5, 10, 20, 50)


def stored_depths(
    depths: Sequence[float | None], levels: Sequence[tuple[int, int]]
) -> list[float | None]:
    """A side's depths (``DEPTH_LEVELS`` order) as stored beside its levels: None where the
    levels give the value back."""
    running = [0, *itertools.accumulate(size for _, size in levels[: DEPTH_LEVELS[-1]])]
    stored = []
    for value, count in zip(depths, DEPTH_LEVELS, strict=True):
        # As SQL computes it: the sum rounded to a double, then divided (exact below 2^53).
        derived = float(running[min(count, len(running) - 1)]) / MICROS
        stored.append(None if value is not None and same_double(value, derived) else value)
    return stored


BOOK_SAMPLE_COLUMNS = (
    "token_sid", "ts", "source", "bids", "asks", "bid_depth_usd", "ask_depth_usd", "bid_levels",
    "ask_levels", "bid_depth_5", "bid_depth_10", "bid_depth_20", "bid_depth_50", "ask_depth_5",
    "ask_depth_10", "ask_depth_20", "ask_depth_50", "imbalance", "bid_wall_price",
    "bid_wall_size", "ask_wall_price", "ask_wall_size", "book_hash", "book_hash_text", "book_ts",
)  # fmt: skip


def encode_book_samples(records: Sequence[Sequence[Any]], sids: SidMap) -> list[tuple[Any, ...]]:
    """OrderBookSnapshotRow records as ``BOOK_SAMPLE_COLUMNS`` records. Validation made sure
    the best bid and ask are the first levels and the spread and midpoint follow from them."""
    encoded = []
    for record in records:
        ts, token_id, _, source, bids, asks, _, _, _, _, bid_usd, ask_usd = record[:12]
        bid_levels, ask_levels, *depths, imbalance = record[12:23]
        imbalance = stored_imbalance(imbalance, depths[1], depths[5])  # the 10-level depths
        bid_wall, bid_wall_size, ask_wall, ask_wall_size, book_hash, book_ts = record[23:]
        raw_hash = None if book_hash is None else book_hash_bytes(book_hash)
        bid_side, ask_side = micro_levels(parse_levels(bids)), micro_levels(parse_levels(asks))
        sides = (*stored_depths(depths[:4], bid_side), *stored_depths(depths[4:], ask_side))
        encoded.append(
            (
                sids[token_id], ts, SOURCE_CODES[source], pack_micro_levels(bid_side),
                pack_micro_levels(ask_side), bid_usd, ask_usd, bid_levels, ask_levels,
                *sides, imbalance, optional_micros(bid_wall), optional_micros(bid_wall_size),
                optional_micros(ask_wall), optional_micros(ask_wall_size), raw_hash,
                book_hash if raw_hash is None else None, book_ts,
            )
        )  # fmt: skip
    return encoded


BOOK_SAMPLES = Storage("book_samples", BOOK_SAMPLE_COLUMNS, encode=encode_book_samples)


# -- feature rows -----------------------------------------------------------------------------
# One column per feature, not an array: a float8[] of the 67 values measured 6 % larger (its
# own header and NULL bitmap), and TimescaleDB compresses columns one by one. Prices quoted by
# the venue are micro-units; the price, spread and midpoint follow from the best bid and ask
# and the last trade price, so they are not stored. The four clock features are stored as the
# instants they count from where that is exact (``polyfarm.store.clock_anchors``).

DERIVED_FEATURES = frozenset({"price", "spread", "midpoint"})
MICRO_FEATURES = frozenset(
    {"best_bid", "best_ask", "last_trade_price", "bid_wall_price", "ask_wall_price", "tick_size"}
)


def feature_storage(feature_columns: Sequence[str]) -> Storage:
    """How feature records (``ts, token_id, market_id, tier, *feature_columns``) are stored."""
    kept = [name for name in feature_columns if name not in DERIVED_FEATURES]
    plan = [(4 + feature_columns.index(name), name in MICRO_FEATURES) for name in kept]
    imbalance, bid, ask = (
        4 + feature_columns.index(name)
        for name in ("book_imbalance", "bid_depth_10", "ask_depth_10")
    )
    at = 3 + kept.index("book_imbalance")  # in the stored record
    clocks = [4 + feature_columns.index(clock.feature) for clock in CLOCK_FEATURES]
    clocks_at = [3 + kept.index(clock.feature) for clock in CLOCK_FEATURES]

    def encode(records: Sequence[Sequence[Any]], sids: SidMap) -> list[tuple[Any, ...]]:
        encoded = []
        for record in records:
            row = [
                sids[record[1]],
                record[0],
                record[3],
                *[optional_micros(record[i]) if micro else record[i] for i, micro in plan],
            ]
            row[at] = stored_imbalance(record[imbalance], record[bid], record[ask])
            values, anchors = anchored([record[i] for i in clocks], record[0])
            for i, value in zip(clocks_at, values, strict=True):
                row[i] = value
            encoded.append((*row, *anchors))
        return encoded

    columns = ("token_sid", "ts", "tier", *kept, *ANCHOR_COLUMNS)
    return Storage("feature_samples", columns, encode=encode)
