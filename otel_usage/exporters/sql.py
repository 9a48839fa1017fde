"""Usage logs into a SQL database (SQLAlchemy 2 Core): SQLite by default, PostgreSQL for real.

:class:`SqlUsageExporter` is an OpenTelemetry ``LogRecordExporter``: put it behind a log record processor
(the project's ``UsageBatchProcessor``, or the SDK's batch processor) and it stores every usage log it
receives, ignoring other log records. Built with no arguments (``OTEL_LOGS_EXPORTER=usage_sql``) it reads::

    OTEL_USAGE_SQL_URL                  SQLAlchemy URL (default sqlite:///usage.db)
    OTEL_USAGE_SQL_TABLE_PREFIX         table name prefix (default usage_)
    OTEL_USAGE_SQL_COLUMNS              info keys promoted to columns, e.g. "user=user_name,tenant"
    OTEL_USAGE_SQL_BUSY_TIMEOUT_MILLIS  SQLite lock wait (default 10000)

The schema (see :mod:`otel_usage.exporters._sql_schema`) is created on first use, safely when several
processes start at once (:mod:`otel_usage.exporters._sql_ddl`): ``CREATE ... IF NOT EXISTS`` inside one
transaction that holds a PostgreSQL advisory lock, or SQLite's write lock (``BEGIN IMMEDIATE``), retried
once if it still collides.

Delivery contract: one batch is one transaction, all or nothing; :meth:`SqlUsageExporter.export` never
raises and returns ``FAILURE`` on a transient failure (database unreachable, locked, schema missing), so the
caller can retry. Re-delivery is idempotent: a log whose ``(trace_id, span_id)`` is already stored is
ignored (``ON CONFLICT DO NOTHING``). A log the database itself rejects (a value out of range, a NUL
character on PostgreSQL) does not block the others: the batch is rolled back and retried one log per
transaction, and each rejected log is dropped and counted as ``sql_rejected_log``; a log that is not
even well formed (no ids, unreadable ``start``) is counted as ``sql_invalid_log``.

Example::

    exporter = SqlUsageExporter("postgresql://app@db/usage", columns="user=user_name,tenant")
    exporter.get_usage(start=datetime(2026, 11, 1), user="alice", limit=50)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from sqlalchemy import Connection, Dialect, Engine, create_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

from otel_usage import _counters
from otel_usage import environment_variables as ev
from otel_usage._config import SQL_BUSY_TIMEOUT_MILLIS, SQL_COLUMNS, SQL_TABLE_PREFIX, SQL_URL
from otel_usage._errors import internal_error
from otel_usage._fork import after_fork_in_child
from otel_usage._schema import SCHEMA_VERSION, UsageLog, usage_log_of
from otel_usage._suppress import suppressed
from otel_usage._warnings import RateLimitedLog
from otel_usage.exporters._fallback import ExportFailureFallback
from otel_usage.exporters._sink import default_name
from otel_usage.exporters._sql_core import CoreWriter
from otel_usage.exporters._sql_ddl import create_schema
from otel_usage.exporters._sql_errors import is_data_error, is_transient
from otel_usage.exporters._sql_schema import SqlTables, dumps, normalize_url, parse_columns, validate_identifier
from otel_usage.exporters._sql_values import PreparedLog
from otel_usage.exporters._sqlite import BEGIN_IMMEDIATE, SqliteWriter, configure_sqlite

__all__ = ["SqlUsageExporter"]

logger = logging.getLogger(__name__)

#: Seconds PostgreSQL connection attempts wait (unless the URL sets ``connect_timeout``).
PG_CONNECT_TIMEOUT_SECONDS = 10

_live: weakref.WeakSet[SqlUsageExporter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for exporter in list(_live):
        exporter._after_fork()


after_fork_in_child(_after_fork_in_child)


class SqlUsageExporter(LogRecordExporter):
    """Stores usage logs in a SQL database and reads them back.

    Args:
        url: SQLAlchemy URL (``sqlite:///path.db``, ``postgresql://user@host/db``); default
            :envvar:`OTEL_USAGE_SQL_URL`, else ``sqlite:///usage.db``. ``postgresql://`` uses psycopg 3.
        columns: info keys promoted to text columns, as ``"user=user_name,tenant"``, a mapping
            ``{"user": "user_name"}`` or a list of items; default :envvar:`OTEL_USAGE_SQL_COLUMNS`.
        table_prefix: prefix of the table names; default :envvar:`OTEL_USAGE_SQL_TABLE_PREFIX`, else ``usage_``.
        busy_timeout_millis: SQLite lock wait; default :envvar:`OTEL_USAGE_SQL_BUSY_TIMEOUT_MILLIS`.
        engine_options: extra keyword arguments for :func:`sqlalchemy.create_engine`.

    A batch that fails is the caller's to retry (``UsageBatchProcessor`` does). Under the SDK's own
    processors, which discard a failed batch, it is spilled to ``OTEL_USAGE_SPOOL_DIR`` for
    :func:`~otel_usage.exporters.replay`, or counted as ``export_failed:sql``.

    Raises:
        ValueError: an invalid URL, table prefix or column name (from an argument or the environment), or
            an unwritable ``OTEL_USAGE_SPOOL_DIR``.
        ImportError: the database driver is missing (with the ``pip install`` hint).
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        columns: str | Mapping[str, str] | Iterable[str] | None = None,
        table_prefix: str | None = None,
        busy_timeout_millis: int | None = None,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        if url is not None:
            self._url = normalize_url(url)
        else:
            raw = SQL_URL.from_env()
            try:
                self._url = normalize_url(raw)
            except ValueError as exc:
                raise ValueError(f"{ev.OTEL_USAGE_SQL_URL}={raw!r}: {exc}") from None
        if columns is None:
            columns_spec = SQL_COLUMNS.from_env()
            mapping = parse_columns(columns_spec, ev.OTEL_USAGE_SQL_COLUMNS)
        else:
            mapping = parse_columns(columns)
        source = "table_prefix" if table_prefix is not None else ev.OTEL_USAGE_SQL_TABLE_PREFIX
        prefix = table_prefix if table_prefix is not None else SQL_TABLE_PREFIX.from_env()
        if prefix or table_prefix is None:
            validate_identifier(prefix, f"table prefix ({source})")
        if self._url.get_backend_name() == "sqlite" and str(prefix).lower().startswith("sqlite_"):
            raise ValueError(
                f"invalid table prefix ({source}) {prefix!r}: SQLite reserves table names starting with 'sqlite_' "
                "(any other SQL identifier is allowed)"
            )
        self._busy_timeout_millis = SQL_BUSY_TIMEOUT_MILLIS.resolve(busy_timeout_millis)
        self._tables = SqlTables(prefix, mapping)
        self._engine_options = dict(engine_options or {})
        self._backend = self._url.get_backend_name()
        self._lock = threading.RLock()
        self._engine: Engine | None = None
        self._pid = os.getpid()
        self._schema_ready = False
        self._shutdown = False
        self._warnings = RateLimitedLog(60.0)
        self._last_error = ""
        self._core = CoreWriter(self._tables) if self._backend == "postgresql" else None
        self._sqlite: SqliteWriter | None = None
        self._memory = self._backend == "sqlite" and (
            self._url.database in (None, "", ":memory:") or self._url.query.get("mode") == "memory"
        )
        # one shared connection for an in-memory database: one user at a time
        self._memory_lock = threading.RLock() if self._memory else None
        self._fallback = ExportFailureFallback(default_name(self), exporter=self)
        _live.add(self)

    # --- public API -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._url.render_as_string(hide_password=True)

    @property
    def columns(self) -> dict[str, str]:
        """The promoted info keys: ``{info_key: column_name}``."""
        return dict(self._tables.columns)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Store the usage logs of ``batch`` in one transaction; other records are ignored. Never raises.

        Returns:
            SUCCESS when every usage log is stored (or was already, or was rejected and counted);
            FAILURE when the database failed (nothing of the batch is half-written: retry it).
        """
        if self._shutdown:
            logger.warning("SqlUsageExporter.export called after shutdown; %d record(s) not stored", len(batch))
            self._fallback(batch, "the SQL exporter is shut down")
            return LogRecordExportResult.FAILURE
        try:
            logs = [log for log in (usage_log_of(record) for record in batch) if log is not None]
            if not logs:
                return LogRecordExportResult.SUCCESS
            with suppressed():
                result = self._export_logs(logs)
            if result == LogRecordExportResult.FAILURE:
                self._fallback(batch, self._last_error)
            return result
        except Exception as exc:  # noqa: BLE001 - an exporter reports failure, it never raises (logged there)
            try:
                internal_error(exc, "SqlUsageExporter.export")
            finally:
                self._fallback(batch, f"{type(exc).__name__}: {exc}")
            return LogRecordExportResult.FAILURE

    def get_usage(
        self,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        limit: int = 500,
        page: int = 1,
        **filters: Any,
    ) -> list[UsageLog]:
        """Stored usage logs, newest first.

        Each log is the original dict, except that its ``start`` is an aware UTC ``datetime`` (stored logs
        carry an ISO-8601 string).

        Args:
            start: only logs that started at or after this time (a naive datetime is UTC).
            end: only logs that started before this time.
            limit: logs per page (>= 1).
            page: which page, from 1.
            **filters: equality on ``service``, ``status``, ``trace_id``, ``span_id``, ``parent_span_id`` or a
                promoted info key (by key or by column name); ``None`` matches a missing value and a list,
                tuple or set matches any of its items.

        Raises:
            ValueError: an unknown filter, or a bad ``limit``/``page``.
        """
        from otel_usage.query._sql_logs import exporter_page  # the reading side: imported on first use

        query = exporter_page(self._tables, start, end, limit, page, filters)
        with suppressed():
            self._ensure_schema()
            with self._connect(write=False) as conn:
                rows = conn.execute(query).mappings().all()
        return [self._tables.log_from_row(row) for row in rows]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here: every export is committed before it returns."""
        return True

    def shutdown(self) -> None:
        """Refuse further exports and dispose of the engine (its connections are closed)."""
        self._shutdown = True
        with self._lock:
            engine, self._engine = self._engine, None
            self._schema_ready = False
        if engine is not None:
            engine.dispose()

    # --- writing --------------------------------------------------------------------------------------

    def _export_logs(self, logs: Sequence[Mapping[str, Any]]) -> LogRecordExportResult:
        prepared: dict[tuple[str, str], PreparedLog] = {}
        prepare = self._sqlite_writer(self._get_engine().dialect).prepare if self._core is None else None
        for log in logs:
            try:
                item = prepare(log) if prepare is not None else self._tables.prepare(log)
            except (ValueError, TypeError, OverflowError) as exc:
                _counters.count_drop("sql_invalid_log", 1, str(exc))
                continue
            prepared.setdefault(item.key, item)
        if not prepared:
            return LogRecordExportResult.SUCCESS
        items = list(prepared.values())
        try:
            self._ensure_schema()
            self._write(items)
            return LogRecordExportResult.SUCCESS
        except Exception as exc:
            if is_data_error(exc):
                return self._write_one_by_one(items)
            if is_transient(exc):
                self._transient_failure(exc, len(items))
                return LogRecordExportResult.FAILURE
            raise

    def _write_one_by_one(self, items: list[PreparedLog]) -> LogRecordExportResult:
        """After a data error: one transaction per log, so that only the rejected ones are lost (counted)."""
        for item in items:
            try:
                self._write([item])
            except Exception as exc:
                if is_data_error(exc):
                    _counters.count_drop("sql_rejected_log", 1, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                    continue
                if is_transient(exc):
                    self._transient_failure(exc, len(items))
                    return LogRecordExportResult.FAILURE
                raise
        return LogRecordExportResult.SUCCESS

    def _write(self, items: list[PreparedLog]) -> None:
        """Insert logs and their call records in one transaction; logs already stored are skipped."""
        with self._connect(write=True) as conn, conn.begin():
            if self._core is None:
                stored = self._sqlite_writer(conn.dialect).write(conn, items)
            else:
                stored = self._core.write(conn, items)
        _counters.count("sql_logs_stored", stored)
        if stored < len(items):
            _counters.count("sql_logs_duplicate", len(items) - stored)

    def _sqlite_writer(self, dialect: Dialect) -> SqliteWriter:
        writer = self._sqlite
        if writer is None or writer.dialect is not dialect:
            writer = self._sqlite = SqliteWriter(self._tables, dialect)
        return writer

    def _transient_failure(self, exc: BaseException, n: int) -> None:
        with self._lock:
            self._schema_ready = False  # a dropped table or a new database: check the schema again
        _counters.count("sql_export_failures")
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self._last_error = f"{self.url}: {first_line}"
        if self._warnings.allow():
            logger.warning("SqlUsageExporter could not store %d usage log(s) in %s: %s", n, self.url, first_line)

    # --- engine and schema ----------------------------------------------------------------------------

    def _after_fork(self) -> None:
        """In a forked child: fresh locks (another thread of the parent may have held them), no engine."""
        self._lock = threading.RLock()
        if self._memory_lock is not None:
            self._memory_lock = threading.RLock()
        self._forget_engine()

    def _forget_engine(self) -> None:
        """In a forked child: drop the parent's pooled connections without closing them under its feet."""
        with contextlib.suppress(Exception):
            engine = self._engine
            if engine is not None:
                engine.dispose(close=False)
        self._pid = os.getpid()

    def _get_engine(self) -> Engine:
        engine = self._engine
        if engine is not None and self._pid == os.getpid():
            return engine
        with self._lock:
            if self._engine is not None and self._pid != os.getpid():  # forked without the at-fork hook
                self._forget_engine()
            if self._engine is None:
                self._engine = self._create_engine()
            return self._engine

    def _create_engine(self) -> Engine:
        options: dict[str, Any] = {"json_serializer": dumps}
        connect_args: dict[str, Any] = {}
        if self._backend == "sqlite":
            connect_args["timeout"] = self._busy_timeout_millis / 1000.0
            if self._memory:
                options["poolclass"] = StaticPool
                connect_args["check_same_thread"] = False
        else:
            options["pool_pre_ping"] = True
            if "connect_timeout" not in self._url.query:
                connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_SECONDS
        options.update(self._engine_options)
        options["connect_args"] = {**connect_args, **options.get("connect_args", {})}
        engine = create_engine(self._url, **options)
        if self._backend == "sqlite":
            configure_sqlite(engine, self._busy_timeout_millis)
        return engine

    @contextlib.contextmanager
    def _connect(self, write: bool) -> Iterator[Connection]:
        with self._memory_lock or contextlib.nullcontext(), self._get_engine().connect() as conn:
            if write and self._backend == "sqlite":
                conn.execution_options(**{BEGIN_IMMEDIATE: True})
            yield conn

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._lock:
            if self._schema_ready:
                return
            try:
                self._create_schema()
            except (sa_exc.OperationalError, sa_exc.ProgrammingError, sa_exc.IntegrityError):
                # another process won a race we could not serialize: everything exists now, check again
                time.sleep(0.05)
                self._create_schema()
            self._schema_ready = True

    def _create_schema(self) -> None:
        with self._connect(write=True) as conn, conn.begin():
            version, added = create_schema(conn, self._tables)
            for column in added:
                logger.info("SqlUsageExporter added column %s to %s", column, self._tables.logs.name)
        if version > SCHEMA_VERSION:
            logger.warning(
                "The usage tables in %s have schema version %s, newer than this otel_usage's %s",
                self.url,
                version,
                SCHEMA_VERSION,
            )
