"""Creating the SQL exporter's schema: :func:`create_schema`, safe when several processes start at once.

Everything is ``CREATE ... IF NOT EXISTS`` inside the caller's transaction, which this serializes with the
other processes' first: a PostgreSQL advisory lock (keyed by the table prefix) or, on SQLite, the write lock
the caller's ``BEGIN IMMEDIATE`` already holds. Promoted columns missing from an existing logs table are
added (``ALTER TABLE ... ADD COLUMN``); the schema table gets its version row once, and the version found
there is returned, so the caller can tell a newer schema from its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import Connection, select, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from otel_usage._schema import SCHEMA_VERSION
from otel_usage.exporters._sql_schema import COMPONENT, SqlTables

__all__ = ["create_schema"]


def create_schema(conn: Connection, tables: SqlTables) -> tuple[int, list[str]]:
    """Create what is missing of ``tables`` (tables, promoted columns, indexes, the version row) on ``conn``.

    Runs inside the caller's transaction (on SQLite, one begun with ``BEGIN IMMEDIATE``).

    Returns:
        The schema version stored in the database, and the promoted columns added to the logs table.
    """
    postgresql = conn.dialect.name == "postgresql"
    if postgresql:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(tables.prefix)})
    for table in (tables.schema, tables.logs, tables.calls):
        conn.execute(CreateTable(table, if_not_exists=True))
    existing = _existing_columns(conn, tables.logs.name)
    added: list[str] = []
    for column in tables.columns.values():
        if column.lower() not in existing:
            col = tables.logs.c[column]
            type_sql = col.type.compile(dialect=conn.dialect)
            preparer = conn.dialect.identifier_preparer
            conn.execute(
                text(
                    f"ALTER TABLE {preparer.format_table(tables.logs)} "
                    f"ADD COLUMN {preparer.format_column(col)} {type_sql}"
                )
            )
            added.append(column)
    for index in tables.indexes:
        conn.execute(CreateIndex(index, if_not_exists=True))
    insert = pg_dialect.insert if postgresql else sqlite_dialect.insert
    conn.execute(
        insert(tables.schema).on_conflict_do_nothing(index_elements=[tables.schema.c.component]),
        {"component": COMPONENT, "version": SCHEMA_VERSION, "created": dt.datetime.now(dt.timezone.utc)},
    )
    version: int = conn.execute(
        select(tables.schema.c.version).where(tables.schema.c.component == COMPONENT)
    ).scalar_one()
    return version, added


def _existing_columns(conn: Connection, name: str) -> set[str]:
    """The column names of table ``name``, lower case."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = :name"
            ),
            {"name": name},
        )
        return {str(row[0]).lower() for row in rows}
    quoted = conn.dialect.identifier_preparer.quote(name)
    return {str(row[1]).lower() for row in conn.exec_driver_sql(f"PRAGMA table_info({quoted})")}


def _lock_key(prefix: str) -> int:
    """The advisory lock key of the tables of ``prefix`` (the same in every process)."""
    digest = hashlib.sha256(f"otel_usage.schema:{prefix}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
