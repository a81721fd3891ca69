"""A day's rows in the lake's order (token id, then time), in bounded memory: pure Arrow.

The stored tables key a token by its integer ``token_sid`` and the database hands a day over in
the order it keeps it (roughly by time). ``TokenIndex`` ranks every token id in byte order (the
order Parquet's statistics and every reader compare strings in), so that sorting by that rank is
sorting by token id without a string ever being compared. ``sorted_slices`` sorts the day: a day
that fits in ``slice_rows`` rows is sorted in memory; a larger one is spilled to local Arrow
files, one per range of ranks, as it arrives, and each range is then read back and sorted on its
own, so memory holds about ``slice_rows`` rows whatever the day's size. A day that maintenance
stored in this order (``polyfarm.store.sealing``) needs no sort: ``in_stored_order`` takes it
as it lies, putting back the few rows PostgreSQL placed out of order and refusing
(``NotInOrder``) a day that is not in order after all. ``row_groups`` re-cuts
the sorted stream into groups of a fixed size, so that a file's bytes do not depend on how the
day was sliced, and ``with_ids`` puts the token and market ids back as dictionaries of the
group's own tokens (a Parquet writer then stores them as they are, without hashing strings).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

RANK = "_rank"  # the row's token's position in token-id order; a column while sorting only
SID = "token_sid"
# Ranges of ranks a large day is spilled into: a day of up to this many slices keeps memory at
# one slice; a larger one (or a single very busy token) makes slices larger, never fails.
SPILL_BUCKETS = 64

Ranks = npt.NDArray[np.uint32]
Keys = npt.NDArray[np.uint64]  # ``rank_time_keys``


@dataclass(frozen=True)
class TokenIndex:
    """``token_keys`` in token-id order. A sid the registry lacks ranks last, as ``count``,
    with null ids (the views' LEFT JOIN gives the same)."""

    token_ids: pa.Array  # string, byte order
    market_ids: pa.Array  # string, of each token id
    sids: pa.Array  # int32, of each token id
    rank_of_sid: Ranks  # by sid; ``count`` where there is no such token

    @classmethod
    def build(cls, keys: pa.Table) -> TokenIndex:
        """From a table of ``token_sid``, ``token_id``, ``market_id`` (any order)."""
        order = pc.sort_indices(keys.column("token_id"))
        sids = keys.column(SID).take(order).to_numpy().astype(np.int64)
        count = len(sids)
        lookup = np.full(int(sids.max(initial=0)) + 1, count, dtype=np.uint32)
        lookup[sids] = np.arange(count, dtype=np.uint32)
        return cls(
            token_ids=keys.column("token_id").take(order).combine_chunks(),
            market_ids=keys.column("market_id").take(order).combine_chunks(),
            sids=keys.column(SID).take(order).combine_chunks(),
            rank_of_sid=lookup,
        )

    @property
    def count(self) -> int:
        return len(self.token_ids)

    def sids_of(self, token_ids: Sequence[str]) -> list[int]:
        """The sids of those of ``token_ids`` the registry has."""
        known = pc.is_in(self.token_ids, value_set=pa.array(token_ids, pa.string()))
        return [int(sid) for sid in self.sids.filter(known).to_pylist()]

    def ranks(self, sids: pa.Array | pa.ChunkedArray) -> Ranks:
        values = np.asarray(sids.to_numpy(zero_copy_only=False), dtype=np.int64)
        inside = (values >= 0) & (values < len(self.rank_of_sid))
        ranks = np.full(len(values), self.count, dtype=np.uint32)
        ranks[inside] = self.rank_of_sid[values[inside]]
        return ranks


def with_rank(batch: pa.RecordBatch, index: TokenIndex) -> pa.RecordBatch:
    """``batch`` with its ``token_sid`` replaced by its ``RANK``: all the sort needs of it."""
    ranks = pa.array(index.ranks(batch.column(SID)), pa.uint32())
    return batch.drop_columns([SID]).append_column(RANK, ranks)


def sort_keys(order: Sequence[str]) -> list[tuple[str, str]]:
    """A table's order (``token_id`` first) as Arrow sort keys on the rank."""
    return [(RANK, "ascending")] + [(name, "ascending") for name in order if name != "token_id"]


def sorted_slices(
    batches: Iterable[pa.RecordBatch],
    index: TokenIndex,
    order: Sequence[str],
    *,
    slice_rows: int,
    spill_dir: Path,
) -> Iterator[pa.Table]:
    """The rows of ``batches`` (with a ``token_sid`` column) in ``order``, as consecutive
    sorted tables with a ``RANK`` column; each about ``slice_rows`` rows or fewer, unless one
    range of ranks holds more."""
    stream = iter(batches)
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in stream:
        pending.append(with_rank(batch, index))
        size += batch.num_rows
        if size > slice_rows:
            rest = (with_rank(later, index) for later in stream)
            yield from _spilled(itertools.chain(pending, rest), index, order, slice_rows, spill_dir)
            return
    if pending:
        yield sort_rows(pa.Table.from_batches(pending), order)


def sort_rows(table: pa.Table, order: Sequence[str]) -> pa.Table:
    """``table`` (with its ``RANK``) in ``order``. By token then time, one 64-bit key (the
    rank, then the time from the first row's) sorted by NumPy, several times faster than
    Arrow's sort on two columns; with more columns to the order, or keys that tie (rows of
    unregistered sids), Arrow's sort on all of them, so that the order is always the one."""
    key = _packed_key(table, order)
    if key is not None:
        by_key = np.argsort(key)
        ordered = key[by_key]
        if not np.any(ordered[1:] == ordered[:-1]):
            return table.take(pa.array(by_key))
    return table.sort_by(sort_keys(order))


def _packed_key(table: pa.Table, order: Sequence[str]) -> Keys | None:
    if [name for name in order if name != "token_id"] != ["ts"] or not table.num_rows:
        return None
    return rank_time_keys(table)


def rank_time_keys(table: pa.Table, start_us: int | None = None) -> Keys | None:
    """Each row's ``RANK`` and its time since ``start_us`` (default: the table's earliest) in
    one 64-bit key, ordered as the two are and equal only where both are; None when a time is
    before ``start_us`` or a span of more than ~38 hours (of microseconds) does not fit."""
    ts = pc.cast(table.column("ts"), pa.int64()).to_numpy()
    offsets = ts - (ts.min() if start_us is None else start_us)
    ranks = table.column(RANK).to_numpy().astype(np.uint64)
    if offsets.min() < 0 or offsets.max() >= 1 << _TIME_BITS:
        return None
    if ranks.max() >= 1 << (64 - _TIME_BITS):
        return None
    key: Keys = (ranks << np.uint64(_TIME_BITS)) | offsets.astype(np.uint64)
    return key


_TIME_BITS = 37


def bucket_count(index: TokenIndex) -> int:
    return max(1, min(SPILL_BUCKETS, index.count + 1))


def bucket_of(ranks: Ranks, index: TokenIndex) -> npt.NDArray[np.uint16]:
    """Equal ranges of ranks (the unknown-sid rank in the last), so buckets are in order."""
    buckets = bucket_count(index)
    scaled = ranks.astype(np.uint64) * buckets // (index.count + 1)
    return scaled.astype(np.uint16)


def _spilled(
    batches: Iterable[pa.RecordBatch],
    index: TokenIndex,
    order: Sequence[str],
    slice_rows: int,
    spill_dir: Path,
) -> Iterator[pa.Table]:
    counts = _spill(batches, index, spill_dir)
    for group in _bucket_groups(counts, slice_rows):
        parts = [_read_bucket(spill_dir, bucket) for bucket in group]
        yield sort_rows(pa.concat_tables(parts), order)


def _spill(batches: Iterable[pa.RecordBatch], index: TokenIndex, spill_dir: Path) -> list[int]:
    """Each batch cut by bucket and appended to its bucket's file; the rows of each bucket."""
    counts = [0] * bucket_count(index)
    writers: dict[int, ipc.RecordBatchFileWriter] = {}
    try:
        for batch in batches:
            buckets = bucket_of(batch.column(RANK).to_numpy(), index)
            by_bucket = np.argsort(buckets, kind="stable")
            ordered = batch.take(pa.array(by_bucket))
            bounds = np.searchsorted(buckets[by_bucket], np.arange(len(counts) + 1))
            for bucket, (low, high) in enumerate(itertools.pairwise(bounds)):
                if high > low:
                    if bucket not in writers:
                        path = _bucket_file(spill_dir, bucket)
                        writers[bucket] = ipc.new_file(str(path), batch.schema)
                    writers[bucket].write_batch(ordered.slice(low, high - low))
                    counts[bucket] += int(high - low)
    finally:
        for writer in writers.values():
            writer.close()
    return counts


def _bucket_groups(counts: Sequence[int], slice_rows: int) -> Iterator[list[int]]:
    """Consecutive non-empty buckets, gathered while they hold at most ``slice_rows`` rows."""
    group: list[int] = []
    size = 0
    for bucket, count in enumerate(counts):
        if not count:
            continue
        if group and size + count > slice_rows:
            yield group
            group, size = [], 0
        group.append(bucket)
        size += count
    if group:
        yield group


def _bucket_file(spill_dir: Path, bucket: int) -> Path:
    return spill_dir / f"bucket-{bucket:05d}.arrow"


def _read_bucket(spill_dir: Path, bucket: int) -> pa.Table:
    path = _bucket_file(spill_dir, bucket)
    with pa.OSFile(str(path)) as source:
        table = ipc.open_file(source).read_all()
    path.unlink()  # read whole: the disk it took is free again as the export goes on
    return table


def row_groups(slices: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The rows of ``slices`` re-cut into tables of exactly ``rows`` rows (the last fewer):
    row groups, and so the file's bytes, do not depend on how the day was sliced."""
    carry: pa.Table | None = None
    for piece in slices:
        table = piece if carry is None else pa.concat_tables([carry, piece])
        whole = table.num_rows - table.num_rows % rows
        for offset in range(0, whole, rows):
            yield table.slice(offset, rows).combine_chunks()
        carry = table.slice(whole) if whole < table.num_rows else None
    if carry is not None:
        yield carry.combine_chunks()


def with_ids(columns: pa.Table, ranks: Ranks, index: TokenIndex, schema: pa.Schema) -> pa.Table:
    """``columns`` (sorted, of tokens ranked ``ranks``) in ``schema``, ``token_id`` and
    ``market_id`` being dictionaries of the group's own tokens and markets."""
    change = np.diff(ranks.astype(np.int64), prepend=-1) != 0
    present = ranks[change]  # the group's ranks, ascending, each once
    token_of_row = (np.cumsum(change) - 1).astype(np.int32)
    # An unknown sid ranks last (``count``): its rows get null ids, as the views' LEFT JOIN.
    known = present[present < index.count]
    valid = None if len(known) == len(present) else pa.array(ranks < index.count)
    tokens = pa.DictionaryArray.from_arrays(
        _masked(token_of_row, valid), index.token_ids.take(pa.array(known))
    )
    markets_of_tokens = pc.dictionary_encode(index.market_ids.take(pa.array(known)))
    codes = markets_of_tokens.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    market_of_row = codes[np.minimum(token_of_row, len(codes) - 1)] if len(codes) else token_of_row
    markets = pa.DictionaryArray.from_arrays(
        _masked(market_of_row, valid), markets_of_tokens.dictionary
    )
    ids = {"token_id": tokens, "market_id": markets}
    arrays = [ids[f.name] if f.name in ids else columns.column(f.name) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def lake_schema(public: pa.Schema) -> pa.Schema:
    """``public`` with the id columns as dictionaries, as ``with_ids`` makes them."""
    return pa.schema(
        pa.field(f.name, pa.dictionary(pa.int32(), f.type)) if f.name in _IDS else f for f in public
    )


_IDS = ("token_id", "market_id")


def _masked(indices: npt.NDArray[np.int32], valid: pa.Array | None) -> pa.Array:
    values = pa.array(indices, pa.int32())
    if valid is None:
        return values
    return pc.if_else(valid, values, pa.scalar(None, pa.int32()))


class NotInOrder(Exception):
    """Rows read as stored were not in the lake's order, give or take a few: sort them."""


# Rows of a day stored in order that may lie out of their place (``in_stored_order``); more
# means the day is not in order, and memory stays bounded either way.
ASIDE_ROWS = 262_144
_LAST_KEY = np.uint64(np.iinfo(np.uint64).max)


def in_stored_order(
    batches: Iterable[pa.RecordBatch], index: TokenIndex, start: datetime
) -> Iterator[pa.Table]:
    """The rows of a day that maintenance stored in the lake's order
    (``polyfarm.store.sealing``), read as they lie (with a ``token_sid`` column, all at or
    after ``start`` and within ``2**_TIME_BITS`` µs of it), as consecutive tables with a
    ``RANK`` column in the lake's order, without sorting them.

    The heap holds the rows in order but for a few: when a row of the rewrite fits into the
    free space an earlier page was left with, PostgreSQL puts it there. Such a row was written
    after every row before it and after the rows of the pages that follow up to where it
    belongs, so it is larger than the next row in its place; each is set aside as it is found
    and put back where it belongs, before anything after it is handed on. Everything handed on
    is checked to be in strict order; anything else (a late row appended to the day, a day in
    another order, more than ``ASIDE_ROWS`` rows out of place) raises ``NotInOrder`` before a
    row out of order is handed on."""
    merge = _AsideMerge(_micros(start))
    pending: tuple[pa.Table, Keys] | None = None
    for table in _windows(batches, index):
        keys = merge.keys(table)
        if pending is not None:
            yield from merge.emit(*pending, following=keys.min())
        pending = (table, keys)
    if pending is not None:
        yield from merge.emit(*pending, following=_LAST_KEY)


# Rows looked at together: a row out of place is found by the rows read after it, so a run of
# them (several in one page's free space) is found whole when the rows after the run are in
# the same window or the next one. A run it misses fails the order check: no wrong output.
WINDOW_ROWS = 16_384


def _windows(batches: Iterable[pa.RecordBatch], index: TokenIndex) -> Iterator[pa.Table]:
    """``batches`` ranked, gathered into tables of at least ``WINDOW_ROWS`` rows (the last
    fewer)."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        if batch.num_rows:
            pending.append(with_rank(batch, index))
            size += batch.num_rows
        if size >= WINDOW_ROWS:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


class _AsideMerge:
    """``in_stored_order``'s state: the rows set aside, sorted, and the last key handed on."""

    def __init__(self, start_us: int) -> None:
        self._start_us = start_us
        self._aside: pa.Table | None = None
        self._aside_keys: Keys = np.empty(0, np.uint64)
        self._last: int = -1

    def keys(self, table: pa.Table) -> Keys:
        keys = rank_time_keys(table, self._start_us)
        if keys is None:
            raise NotInOrder("a row outside the day")
        return keys

    def emit(self, table: pa.Table, keys: Keys, following: np.uint64) -> Iterator[pa.Table]:
        """``table``'s rows in their place, with the rows set aside that come before
        ``following`` (the least key of the rows read after these)."""
        after = np.append(np.minimum.accumulate(keys[::-1])[::-1][1:], following)
        misplaced = keys > after
        placed = np.flatnonzero(~misplaced)
        placed_keys = keys[placed]
        if placed.size and (
            int(placed_keys[0]) <= self._last or np.any(placed_keys[1:] <= placed_keys[:-1])
        ):
            raise NotInOrder("rows out of order")
        if len(placed) < len(keys):
            out = np.flatnonzero(misplaced)
            self._set_aside(table.take(pa.array(out)), keys[out])
        back, back_keys = self._due(following)
        if placed.size:
            self._last = int(placed_keys[-1])
        if back is None:
            yield table if len(placed) == len(keys) else _gathered(table, placed)
            return
        # Each row set aside goes before the first row in its place that is larger.
        where = np.searchsorted(placed_keys, back_keys)
        if placed.size and np.any(placed_keys[np.minimum(where, len(placed) - 1)] == back_keys):
            raise NotInOrder("two rows of one token and time")
        order = np.insert(placed, where, len(keys) + np.arange(len(back_keys)))
        self._last = max(self._last, int(back_keys[-1]))
        yield _gathered(pa.concat_tables([table, back]), order)

    def _set_aside(self, rows: pa.Table, keys: Keys) -> None:
        tables = [rows] if self._aside is None else [self._aside, rows]
        merged_keys = np.concatenate([self._aside_keys, keys])
        if len(merged_keys) > ASIDE_ROWS:
            raise NotInOrder(f"more than {ASIDE_ROWS} rows out of their place")
        order = np.argsort(merged_keys, kind="stable")
        self._aside = pa.concat_tables(tables).take(pa.array(order))
        self._aside_keys = merged_keys[order]

    def _due(self, following: np.uint64) -> tuple[pa.Table | None, Keys]:
        """The rows set aside that come before ``following``, taken out of the set."""
        due = int(np.searchsorted(self._aside_keys, following, side="left"))
        if self._aside is None or not due:
            return None, self._aside_keys[:0]
        back, back_keys = self._aside.slice(0, due), self._aside_keys[:due]
        self._aside, self._aside_keys = self._aside.slice(due), self._aside_keys[due:]
        if int(back_keys[0]) <= self._last:
            raise NotInOrder("a row set aside belongs before rows already handed on")
        if np.any(back_keys[1:] == back_keys[:-1]):
            raise NotInOrder("two rows of one token and time")
        return back, back_keys


def _gathered(table: pa.Table, rows: npt.NDArray[np.int64]) -> pa.Table:
    """``table.take(rows)`` where ``rows`` is a few runs of consecutive rows: the runs' slices,
    without copying (``row_groups`` copies each group once anyway)."""
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    if len(breaks) > len(rows) // _ROWS_A_SLICE:
        return table.take(pa.array(rows))
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(rows)]])
    return pa.concat_tables(
        [table.slice(int(rows[a]), int(b - a)) for a, b in zip(starts, ends, strict=True)]
    )


# Fewer rows than this a run on average, and a copy is cheaper than the slices.
_ROWS_A_SLICE = 64


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
