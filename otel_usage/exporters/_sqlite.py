"""The SQL exporter's SQLite fast path: its write path on the driver's cursor, and its connection settings.

:class:`SqliteWriter` writes a batch in a few multi-row statements on sqlite3's own cursor, inside the
transaction SQLAlchemy opened; :func:`configure_sqlite` sets up each new connection of the exporter's engine
(WAL, busy timeout, foreign keys) and lets a write transaction start with ``BEGIN IMMEDIATE``
(:data:`BEGIN_IMMEDIATE`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Column, Connection, Dialect, Engine, event

from otel_usage.exporters._sql_schema import SqlTables
from otel_usage.exporters._sql_values import PREPARED_CALL_COLUMNS, PreparedLog

__all__ = ["BEGIN_IMMEDIATE", "SqliteWriter", "configure_sqlite"]

#: The execution option that makes the next transaction of a connection ``BEGIN IMMEDIATE`` (the write lock).
BEGIN_IMMEDIATE = "otel_usage_begin_immediate"


class SqliteWriter:
    """The SQLite write path, on the driver's cursor inside SQLAlchemy's transaction.

    sqlite3 runs in-process and releases the GIL around every step of a statement: with one step per row
    (``executemany``, or ``RETURNING`` rows), the worker hands the GIL back and forth with the application's
    threads hundreds of times per batch, and that costs more CPU than the rows themselves. So a batch is a
    few multi-row statements instead: under SQLite's write lock (``BEGIN IMMEDIATE``, held until commit) the
    writer looks up which logs are already stored, numbers the new ones from ``max(id) + 1``, and inserts
    logs and call records :attr:`MAX_ROWS_PER_STATEMENT` at a time. A log that is stored anyway (it cannot be,
    under the lock) makes the insert fail as a data error, which the exporter resolves one log per
    transaction.

    Values are made driver-ready while the log is read (:meth:`prepare`): JSON columns and ``start``
    through the very bind processors SQLAlchemy uses for them (so they read back through SQLAlchemy
    exactly as before); text, numbers and booleans are bound as they are, as SQLAlchemy binds them.
    """

    #: Rows per multi-row statement at most (fewer when the bound-variable limit requires it).
    MAX_ROWS_PER_STATEMENT = 200

    def __init__(self, tables: SqlTables, dialect: Dialect) -> None:
        self.dialect = dialect
        self._tables = tables
        preparer = dialect.identifier_preparer
        log_columns = [tables.logs.c.id, *(tables.logs.c[name] for name in tables.log_columns)]
        call_columns = [tables.calls.c.log_id, *(tables.calls.c[name] for name in PREPARED_CALL_COLUMNS)]
        self._encode = _bind_processor(tables.logs.c.info, dialect)
        self._stamp = _bind_processor(tables.logs.c.start, dialect)
        self._logs_table = preparer.format_table(tables.logs)
        self._log_width = len(log_columns)
        self._call_width = len(call_columns)
        self._insert_log = f"INSERT INTO {self._logs_table} ({_names(log_columns, preparer)}) VALUES "
        self._insert_call = (
            f"INSERT INTO {preparer.format_table(tables.calls)} ({_names(call_columns, preparer)}) VALUES "
        )
        self._trace_id = preparer.format_column(tables.logs.c.trace_id)
        self._span_id = preparer.format_column(tables.logs.c.span_id)
        self._id = preparer.format_column(tables.logs.c.id)

    def prepare(self, log: Mapping[str, Any]) -> PreparedLog:
        """``log`` as driver-ready column values (see :meth:`SqlTables.prepare`)."""
        return self._tables.prepare(log, self._encode, self._stamp)

    def write(self, conn: Connection, items: list[PreparedLog]) -> int:
        """Insert ``items`` (made by :meth:`prepare`; logs already stored are skipped); the number stored."""
        driver = conn.connection.driver_connection
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            limit = _variable_limit(driver)
            stored = self._stored_keys(cursor, [item.key for item in items], limit)
            new = [item for item in items if item.key not in stored]
            if not new:
                return 0
            cursor.execute(f"SELECT max({self._id}) FROM {self._logs_table}")
            next_id = (cursor.fetchone()[0] or 0) + 1
            log_rows: list[tuple[Any, ...]] = []
            call_rows: list[tuple[Any, ...]] = []
            for log_id, item in enumerate(new, next_id):
                log_rows.append((log_id, *item.values))
                call_rows.extend((log_id, *call) for call in item.calls)
            self._insert(cursor, self._insert_log, self._log_width, log_rows, limit)
            self._insert(cursor, self._insert_call, self._call_width, call_rows, limit)
            return len(new)
        finally:
            cursor.close()

    def _stored_keys(self, cursor: Any, keys: list[tuple[str, str]], limit: int) -> set[tuple[str, str]]:
        """Which of ``keys`` (trace id, span id) are already stored."""
        stored: set[tuple[str, str]] = set()
        wanted = set(keys)
        trace_ids = sorted({trace_id for trace_id, _ in keys})
        step = max(1, min(limit, 500))
        for i in range(0, len(trace_ids), step):
            chunk = trace_ids[i : i + step]
            cursor.execute(
                f"SELECT {self._trace_id}, {self._span_id} FROM {self._logs_table} "
                f"WHERE {self._trace_id} IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            stored.update(key for key in map(tuple, cursor.fetchall()) if key in wanted)
        return stored

    def _insert(self, cursor: Any, head: str, width: int, rows: list[tuple[Any, ...]], limit: int) -> None:
        per_statement = max(1, min(self.MAX_ROWS_PER_STATEMENT, limit // width))
        group = "(" + ", ".join("?" * width) + ")"
        for i in range(0, len(rows), per_statement):
            chunk = rows[i : i + per_statement]
            cursor.execute(head + ", ".join([group] * len(chunk)), [value for row in chunk for value in row])


def _bind_processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        raise TypeError(f"SQLAlchemy has no bind processor for {column} on {dialect.name}")
    return process


def _names(columns: list[Column[Any]], preparer: Any) -> str:
    return ", ".join(preparer.format_column(column) for column in columns)


def _variable_limit(driver: Any) -> int:
    """Most bound variables one statement may have on this connection (999 when it cannot be asked)."""
    getlimit = getattr(driver, "getlimit", None)  # Python 3.11+
    category = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", None)
    if getlimit is None or category is None:
        return 999
    try:
        return int(getlimit(category))
    except (sqlite3.Error, AttributeError):
        return 999


def configure_sqlite(engine: Engine, busy_timeout_millis: int) -> None:
    """WAL mode, a busy timeout, foreign keys, and SQLAlchemy (not sqlite3) in charge of BEGIN."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_millis)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(BEGIN_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
