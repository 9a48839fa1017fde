"""The SQL exporter's write path on SQLAlchemy Core, for PostgreSQL: :class:`CoreWriter`.

One multi-row ``INSERT ... ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING`` stores the new logs and
tells which they are; their call records follow in one more statement. SQLite has its own, faster path
(:mod:`otel_usage.exporters._sqlite`).
"""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql as pg_dialect

from otel_usage.exporters._sql_schema import SqlTables
from otel_usage.exporters._sql_values import PreparedLog

__all__ = ["CoreWriter"]


class CoreWriter:
    """Writes prepared logs (:meth:`SqlTables.prepare <otel_usage.exporters._sql_schema.SqlTables.prepare>`)
    and their call records with SQLAlchemy Core statements."""

    def __init__(self, tables: SqlTables) -> None:
        self._tables = tables
        logs = tables.logs
        self._insert_logs = (
            pg_dialect.insert(logs)
            .on_conflict_do_nothing(index_elements=[logs.c.trace_id, logs.c.span_id])
            .returning(logs.c.id, logs.c.trace_id, logs.c.span_id)
        )

    def write(self, conn: Connection, items: list[PreparedLog]) -> int:
        """Insert ``items`` (logs already stored are skipped) and their call records; the number stored."""
        result = conn.execute(self._insert_logs, [self._tables.log_row(item) for item in items])
        ids = {(row[1], row[2]): row[0] for row in result}
        calls = [row for item in items if (log_id := ids.get(item.key)) is not None for row in item.call_rows(log_id)]
        if calls:
            conn.execute(self._tables.calls.insert(), calls)
        return len(ids)
