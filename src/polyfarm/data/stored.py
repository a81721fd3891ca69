"""A ``Farm``'s database side: one ADBC connection, and a token's rows read by its integer sid.

A read of a token-day is a handful of milliseconds of work for the server (an index range of
``(token_sid, ts)``), so what else a read costs shows: joining ``token_keys`` for the ids,
decoding micro-units row by row, fetching a parameterised statement's rows (the driver streams
binary ``COPY`` only for a statement without parameters). Here a token id's sid and market are
looked up once (the registry never changes a token's sid), rows are read by sid with their
bounds as literals, price snapshots from ``price_points`` itself, decoded in Arrow as the lake's
export decodes them (``polyfarm.lake.decode``); the other tables through their view, by sid.
Small parameterised statements (the key lookup, holes) keep a cursor each, prepared once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from polyfarm.lake.decode import ID_COLUMNS, SID, day_sql, storage_read
from polyfarm.lake.layout import TABLES_BY_NAME

_KEYS = (
    "SELECT token_sid, token_id, market_id FROM token_keys "
    "WHERE token_id = ANY(string_to_array($1, ','))"
)


class StoredRows:
    def __init__(self, dsn: str) -> None:
        # Autocommit: a Farm left open in a notebook holds no transaction (and no lock that
        # would keep retention from dropping a partition).
        self._conn: Any = adbc.connect(dsn, autocommit=True)
        self._cursors: dict[str, Any] = {}
        self._keys: dict[str, tuple[int, str]] = {}  # token id: (sid, market id)
        self._columns: dict[str, list[str]] = {}

    def close(self) -> None:
        for cursor in self._cursors.values():
            cursor.close()
        self._cursors.clear()
        self._conn.close()

    def query(self, sql: str, *parameters: object) -> pa.Table:
        """``sql``'s rows; a statement with parameters is prepared once, on a cursor kept for
        it, one without is run as it is (ADBC streams it as binary ``COPY``)."""
        if not parameters:
            with self._conn.cursor() as once:
                once.execute(sql)
                result: pa.Table = once.fetch_arrow_table()
                return result
        cursor = self._cursors.get(sql)
        if cursor is None:
            cursor = self._cursors[sql] = self._conn.cursor()
        cursor.execute(sql, parameters)
        table: pa.Table = cursor.fetch_arrow_table()
        return table

    def rows(
        self,
        table: str,
        token_ids: Sequence[str],
        start: datetime,
        end: datetime,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """``table``'s rows of ``token_ids`` in ``[start, end)``, unordered: the view's
        columns (without ``token_sid``), or those of them in ``columns``. The server is asked
        for what these need alone: a token-day's candles want two of a price row's columns."""
        keys = self._token_keys(token_ids)
        public = self._public_columns(table)
        if columns is not None:
            public = [name for name in public if name in columns]
        read = storage_read(TABLES_BY_NAME[table], public)
        # Literals, not parameters (integers and timestamps only): ADBC then reads the rows as
        # binary COPY, faster than a prepared statement's results once there are many (a
        # training set's), and as fast for a token-day.
        found = self.query(day_sql(read, start, end, [sid for sid, _ in keys.values()]))
        decoded = found if read.decode is None else read.decode(found)
        return _with_ids(decoded, found.column(SID), keys, public)

    def _token_keys(self, token_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        missing = [token for token in token_ids if token not in self._keys]
        if missing:
            found = self.query(_KEYS, ",".join(missing)).to_pylist()
            self._keys.update(
                {row["token_id"]: (row["token_sid"], row["market_id"]) for row in found}
            )
        return {token: self._keys[token] for token in token_ids if token in self._keys}

    def _public_columns(self, table: str) -> list[str]:
        if table not in self._columns:
            names = self.query(f"SELECT * FROM {table} LIMIT 0").schema.names  # noqa: S608
            self._columns[table] = [name for name in names if name != SID]
        return self._columns[table]


def _with_ids(
    columns: pa.Table, sids: pa.ChunkedArray, keys: dict[str, tuple[int, str]], public: list[str]
) -> pa.Table:
    """``columns`` with the token and market ids of each row's sid, in ``public``'s order."""
    known = list(keys.items())
    where = pc.index_in(sids, value_set=pa.array([sid for _, (sid, _) in known], pa.int32()))
    ids = {
        ID_COLUMNS[0]: pa.array([token for token, _ in known], pa.string()).take(where),
        ID_COLUMNS[1]: pa.array([market for _, (_, market) in known], pa.string()).take(where),
    }
    arrays = [ids[name] if name in ids else columns.column(name) for name in public]
    return pa.Table.from_arrays(arrays, names=public)


def frame(table: pa.Table) -> pl.DataFrame:
    """A polars frame of ``table``, without the driver's per-field PostgreSQL metadata."""
    schema = pa.schema([field.remove_metadata() for field in table.schema])
    result = pl.from_arrow(table.cast(schema))
    assert isinstance(result, pl.DataFrame)
    return result
