"""A day's rows in the lake's order (token id, then time), in bounded memory: pure Arrow.

The stored tables key a token by its integer ``token_sid`` and the database hands a day over in
the order it keeps it (roughly by time). ``TokenIndex`` ranks every token id in byte order (the
order Parquet's statistics and every reader compare strings in), so that sorting by that rank is
sorting by token id without a string ever being compared. ``sorted_slices`` sorts the day: a day
that fits in ``slice_rows`` rows is sorted in memory; a larger one is spilled to local Arrow
files, one per range of ranks, as it arrives, and each range is then read back and sorted on its
own, so memory holds about ``slice_rows`` rows whatever the day's size. ``row_groups`` re-cuts
the sorted stream into groups of a fixed size, so that a file's bytes do not depend on how the
day was sliced, and ``with_ids`` puts the token and market ids back as dictionaries of the
group's own tokens (a Parquet writer then stores them as they are, without hashing strings).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
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


def _packed_key(table: pa.Table, order: Sequence[str]) -> npt.NDArray[np.uint64] | None:
    if [name for name in order if name != "token_id"] != ["ts"] or not table.num_rows:
        return None
    ts = pc.cast(table.column("ts"), pa.int64()).to_numpy()
    offsets = (ts - ts.min()).astype(np.uint64)
    ranks = table.column(RANK).to_numpy().astype(np.uint64)
    if offsets.max() >= 1 << _TIME_BITS or ranks.max() >= 1 << (64 - _TIME_BITS):
        return None  # a span of more than ~38 hours (of microseconds): not in one key
    key: npt.NDArray[np.uint64] = (ranks << np.uint64(_TIME_BITS)) | offsets
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
