"""Reading a lake day back, all of it or a few tokens' rows, touching only their row groups.

A day's file is sorted by token id, so each row group covers a narrow range of token ids and
its statistics say which: a read of one token opens the file, picks the one or two groups whose
``[min, max]`` can hold it and decodes those alone. The footer (the statistics) is parsed once
per file version (path, size, modification time) and kept: a dashboard or a backtest reading
token after token of the same day pays for it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from polyfarm.lake.layout import partition_file
from polyfarm.lake.storage import Lake

TOKEN = "token_id"
FOOTERS_KEPT = 64


@dataclass(frozen=True)
class Footer:
    metadata: pq.FileMetaData
    token_ranges: tuple[tuple[str | None, str | None], ...]  # per row group; None: unknown


def footer_of(metadata: pq.FileMetaData) -> Footer:
    """A file's metadata with each row group's token-id range, from its statistics."""
    names = metadata.schema.names
    column = names.index(TOKEN) if TOKEN in names else None
    ranges = []
    for group in range(metadata.num_row_groups):
        stats = None if column is None else metadata.row_group(group).column(column).statistics
        if stats is not None and stats.has_min_max:
            ranges.append((stats.min, stats.max))
        else:
            ranges.append((None, None))
    return Footer(metadata, tuple(ranges))


def groups_for(footer: Footer, token_ids: Sequence[str]) -> list[int]:
    """The row groups that may hold a row of ``token_ids`` (every group without statistics).
    Strings compare as Parquet's statistics do, by their UTF-8 bytes."""
    wanted = sorted(token.encode() for token in token_ids)
    chosen = []
    for group, (low, high) in enumerate(footer.token_ranges):
        if low is None or high is None:
            chosen.append(group)  # no statistics: it may hold anything
            continue
        if any(low.encode() <= token <= high.encode() for token in wanted):
            chosen.append(group)
    return chosen


class DayReader:
    """Reads lake days, keeping the footers of the files it has read."""

    def __init__(self, lake: Lake) -> None:
        self._lake = lake
        self._footers: dict[tuple[str, int, int], Footer] = {}

    def read(
        self,
        table: str,
        day: date,
        token_ids: Sequence[str] | None = None,
        window: tuple[datetime, datetime] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        """``table``'s rows of ``day`` (of ``token_ids`` only, and in ``[start, end)`` only,
        when given; of ``columns`` only, with ``token_id`` and ``ts`` among them, when given),
        in the file's order; None when the lake lacks the day."""
        path = self._lake.path(partition_file(table, day))
        info = self._lake.fs.get_file_info(path)
        if info.type is not pafs.FileType.File:
            return None
        with self._lake.fs.open_input_file(path) as source:
            footer = self._footer(path, info, source)
            parquet = pq.ParquetFile(source, metadata=footer.metadata)
            groups = None if token_ids is None else groups_for(footer, token_ids)
            rows = parquet.read_row_groups(
                range(parquet.num_row_groups) if groups is None else groups,
                columns=None if columns is None else _with_keys(columns),
                use_threads=False,
            )
        return _filtered(rows, token_ids, window)

    def _footer(self, path: str, info: pafs.FileInfo, source: pa.NativeFile) -> Footer:
        key = (path, info.size or 0, info.mtime_ns or 0)  # a rewritten day is a new key
        footer = self._footers.get(key)
        if footer is None:
            if len(self._footers) >= FOOTERS_KEPT:
                self._footers.pop(next(iter(self._footers)))  # the oldest kept
            footer = self._footers[key] = footer_of(pq.read_metadata(source))
        return footer


def _with_keys(columns: Sequence[str]) -> list[str]:
    """``columns`` and the two the filters need."""
    return [*dict.fromkeys([TOKEN, "ts", *columns])]


def _filtered(
    rows: pa.Table, token_ids: Sequence[str] | None, window: tuple[datetime, datetime] | None
) -> pa.Table:
    keep = None
    if token_ids is not None:
        keep = pc.is_in(rows.column(TOKEN), value_set=pa.array(token_ids, pa.string()))
    if window is not None:
        ts = rows.column("ts")
        inside = pc.and_(pc.greater_equal(ts, window[0]), pc.less(ts, window[1]))
        keep = inside if keep is None else pc.and_(keep, inside)
    return rows if keep is None else rows.filter(keep)
