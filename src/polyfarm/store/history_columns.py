"""The venue's price history as a backfill stores it: columns per answer, and the binary
``COPY`` of ``history_points`` built from them in one pass (pure: no I/O).

A backfill stores millions of points; a tuple, a ``datetime`` and asyncpg's per-value
encoders per point cost more CPU than the rest of the backfill. Here a whole batch becomes
the bytes of a binary ``COPY`` through a numpy structured array laid out as the ``COPY``
tuples themselves. The values are those the per-row path stored: a bucket's start to the
microsecond, the price in micro-units rounded as ``compact.to_micros`` rounds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from polyfarm.store.compact import COPY_BINARY_HEADER, COPY_BINARY_TRAILER, MICROS

Int64s = npt.NDArray[np.int64]
Float64s = npt.NDArray[np.float64]

#: ``history_points``' columns in the order of the encoded tuples.
HISTORY_COLUMNS = ("ts", "token_sid", "price", "fidelity_s", "route")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# timestamptz travels as microseconds since 2000-01-01 UTC.
_PG_EPOCH_US = (datetime(2000, 1, 1, tzinfo=UTC) - _EPOCH) // _MICROSECOND
# One tuple: its field count, then each field's length and big-endian value.
_TUPLE = np.dtype(
    [
        ("fields", ">i2"),
        ("ts_len", ">i4"), ("ts", ">i8"),
        ("sid_len", ">i4"), ("sid", ">i4"),
        ("price_len", ">i4"), ("price", ">i4"),
        ("fidelity_len", ">i4"), ("fidelity", ">i4"),
        ("route_len", ">i4"), ("route", ">i2"),
    ]
)  # fmt: skip


class HistoryRouteCode(enum.IntEnum):
    """``history_points.route``: which venue route served a point."""

    DATA_API = 1
    CLOB = 2


@dataclass(frozen=True, eq=False)
class HistoryBatch:
    """The points one answer served for one token at one grain, at distinct instants in time
    order: ``ts_us`` each bucket's start in microseconds since the Unix epoch, ``price`` the
    venue's price as a double."""

    token_id: str
    market_id: str
    fidelity_s: int
    route: HistoryRouteCode
    ts_us: Int64s
    price: Float64s

    def __len__(self) -> int:
        return len(self.ts_us)


def point_count(batches: Sequence[HistoryBatch]) -> int:
    return sum(len(batch) for batch in batches)


def micros(price: Float64s) -> npt.NDArray[np.int64]:
    """``compact.to_micros`` of every price: the same double operations, so the same integers."""
    return np.floor(price * float(MICROS) + 0.5).astype(np.int64)


def encode_history_copy(batches: Sequence[HistoryBatch], sids: Mapping[str, int]) -> memoryview:
    """The batches' points as one binary ``COPY`` of ``HISTORY_COLUMNS``: batch after batch in
    the order given (of two points of one token and instant, the earlier batch's is the one a
    merge keeps), each batch newest first. That is the order of the unique index (token_sid,
    ts DESC): each point goes into the index just after the one before it rather than just
    before it, which cost the server about an eighth less CPU in ``bench/backfill.py``
    (BENCHMARKS.md, "Backfill")."""
    count = point_count(batches)
    payload = bytearray(len(COPY_BINARY_HEADER) + count * _TUPLE.itemsize + 2)
    payload[: len(COPY_BINARY_HEADER)] = COPY_BINARY_HEADER
    payload[-2:] = COPY_BINARY_TRAILER
    tuples = np.frombuffer(payload, _TUPLE, count, len(COPY_BINARY_HEADER))
    sizes = [len(batch) for batch in batches]
    tuples["fields"] = len(HISTORY_COLUMNS)
    tuples["ts_len"], tuples["sid_len"], tuples["price_len"] = 8, 4, 4
    tuples["fidelity_len"], tuples["route_len"] = 4, 2
    tuples["ts"] = np.concatenate([b.ts_us[::-1] for b in batches]) - _PG_EPOCH_US  # newest first
    tuples["sid"] = np.repeat([sids[batch.token_id] for batch in batches], sizes)
    tuples["price"] = micros(np.concatenate([b.price[::-1] for b in batches]))
    tuples["fidelity"] = np.repeat([batch.fidelity_s for batch in batches], sizes)
    tuples["route"] = np.repeat([int(batch.route) for batch in batches], sizes)
    return memoryview(payload)


def span_starts(batches: Sequence[HistoryBatch], span: timedelta) -> list[datetime]:
    """The start of every span (counted from the Unix epoch) that holds a point."""
    span_us = span // _MICROSECOND
    spans = np.unique(np.concatenate([batch.ts_us for batch in batches]) // span_us)
    return [_EPOCH + timedelta(microseconds=int(index) * span_us) for index in spans]
