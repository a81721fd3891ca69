"""``polyfarm export``: any range of the time series to Parquet or CSV files, for tools that
want files rather than the lake's day partitions.

One file per table (``<destination>/<table>.parquet`` or ``.csv``), the public columns, sorted
by token and time, optionally only some markets' or tokens' rows. The rows stream from the
database in Arrow tables of ``BATCH_ROWS`` rows, each written before the next is read, so
memory stays bounded whatever the range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from polyfarm.lake.export import ZSTD_LEVEL, query_tables, table_schema
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
    sql, parameters = _query(table, start, end, token_ids)
    rows = 0
    # Opened before the first row: a range without rows still gives a file (a header only).
    writer = _open(path, table_schema(dsn, table), file_format)
    try:
        for batch in query_tables(dsn, sql, parameters, BATCH_ROWS):
            writer.write_table(batch)
            rows += batch.num_rows
            if progress is not None:
                progress(batch.num_rows)
    finally:
        writer.close()
    return Extract(table.name, path, rows)


def _query(
    table: LakeTable, start: datetime, end: datetime, token_ids: Sequence[str] | None
) -> tuple[str, list[object]]:
    where = "ts >= $1 AND ts < $2"
    parameters: list[object] = [start, end]
    if token_ids is not None:
        where += " AND token_id = ANY(string_to_array($3, ','))"
        parameters.append(",".join(token_ids))
    order = ", ".join(table.order)
    return f"SELECT * FROM {table.name} WHERE {where} ORDER BY {order}", parameters  # noqa: S608


def _open(
    path: Path, schema: pa.Schema, file_format: FileFormat
) -> pq.ParquetWriter | pacsv.CSVWriter:
    if file_format is FileFormat.CSV:
        return pacsv.CSVWriter(path, schema)
    return pq.ParquetWriter(path, schema, compression="zstd", compression_level=ZSTD_LEVEL)
