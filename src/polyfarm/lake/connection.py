"""ADBC's PostgreSQL driver without its DB-API layer, for the lake's bulk reads.

``adbc_driver_manager.dbapi`` imports pyarrow.dataset, pandas and polars when it loads: 1.5 s
of every ``polyfarm lake`` and ``polyfarm export`` start here, for nothing an export uses. The
driver's own handles give the same Arrow streams: a statement without bind parameters comes
back as ``COPY … TO STDOUT (FORMAT binary)`` parsed into record batches as they arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import adbc_driver_manager
import adbc_driver_postgresql
import pyarrow as pa

_ISOLATION = "adbc.connection.transaction.isolation_level"
_REPEATABLE_READ = "adbc.connection.transaction.isolation.repeatable_read"


class ArrowConnection:
    """One connection in one transaction (read-only use: it is rolled back on close), in
    ``REPEATABLE READ`` when asked: every statement then sees the same snapshot."""

    def __init__(self, dsn: str, *, repeatable_read: bool = False) -> None:
        self._database = adbc_driver_postgresql.connect(dsn)
        self._conn = adbc_driver_manager.AdbcConnection(self._database)
        self._conn.set_autocommit(False)
        if repeatable_read:
            self._conn.set_options(**{_ISOLATION: _REPEATABLE_READ})

    def __enter__(self) -> ArrowConnection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()
        self._database.close()

    @contextmanager
    def reader(self, sql: str) -> Iterator[pa.RecordBatchReader]:
        """``sql``'s rows as a stream of record batches, read as they arrive."""
        statement = adbc_driver_manager.AdbcStatement(self._conn)
        try:
            statement.set_sql_query(sql)
            handle, _ = statement.execute_query()
            with pa.RecordBatchReader._import_from_c(handle.address) as reader:
                yield reader
        finally:
            statement.close()

    def stream(self, sql: str) -> Iterator[pa.RecordBatch]:
        with self.reader(sql) as reader:
            yield from reader

    def fetch(self, sql: str) -> pa.Table:
        """``sql``'s rows, whole (for small results)."""
        with self.reader(sql) as reader:
            return reader.read_all()

    def execute(self, sql: str) -> None:
        """A statement that returns no rows (ADBC would wrap a query in ``COPY``)."""
        statement = adbc_driver_manager.AdbcStatement(self._conn)
        try:
            statement.set_sql_query(sql)
            statement.execute_update()
        finally:
            statement.close()
