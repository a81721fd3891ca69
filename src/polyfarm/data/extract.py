"""``polyfarm export``: any range of the time series to Parquet or CSV files, for tools that
want files rather than the lake's day partitions.

One file per table (``<destination>/<table>.parquet`` or ``.csv``), the public columns, sorted
by token and time, optionally only some markets' or tokens' rows. The rows come the lake
export's way (``polyfarm.lake.export.sorted_tables``: the stored rows streamed, sorted in Arrow,
spilled to a local folder when the range is large) in tables of ``BATCH_ROWS`` rows, each
written before the next is made, so memory stays bounded whatever the range.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from polyfarm.lake.export import ZSTD_LEVEL, Chunking, sorted_tables
from polyfarm.lake.layout import LakeTable

BATCH_ROWS = 250_000


class FileFormat(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


@dataclass(frozen=True)
class Extract:
    table: str
    path: Path
    rows: int


def extract_table(
    dsn: str,
    table: LakeTable,
    start: datetime,
    end: datetime,
    destination: Path,
    file_format: FileFormat,
    *,
    token_ids: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Extract:
    """``table``'s rows in ``[start, end)`` (of ``token_ids`` only, if given) into one file."""
    destination.mkdir(parents=True, exist_ok=True)
    path = destination / f"{table.name}.{file_format.value}"
    rows = 0
    chunking = Chunking(row_group_rows=BATCH_ROWS)
    with (
        tempfile.TemporaryDirectory(prefix="polyfarm-export-") as spool,
        sorted_tables(dsn, table, (start, end), Path(spool), chunking, token_ids) as found,
    ):
        schema, batches = found
        # Opened before the first row: a range without rows still gives a file (a header only).
        writer = _open(path, schema, file_format)
        try:
            for batch in batches:
                writer.write_table(_plain(batch) if file_format is FileFormat.CSV else batch)
                rows += batch.num_rows
                if progress is not None:
                    progress(batch.num_rows)
        finally:
            writer.close()
    return Extract(table.name, path, rows)


def _plain(batch: pa.Table) -> pa.Table:
    """The ids as plain strings: CSV has no dictionaries."""
    return batch.cast(_plain_schema(batch.schema))


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema(
        pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema
    )


def _open(
    path: Path, schema: pa.Schema, file_format: FileFormat
) -> pq.ParquetWriter | pacsv.CSVWriter:
    if file_format is FileFormat.CSV:
        return pacsv.CSVWriter(path, _plain_schema(schema))
    # No stored Arrow schema: readers get the ids back as strings, not dictionaries.
    return pq.ParquetWriter(
        path, schema, compression="zstd", compression_level=ZSTD_LEVEL, store_schema=False
    )
