"""Pages of usage logs from the SQL exporter's tables: the query behind both SQL ``get_usage`` methods.

:func:`newest_first` is the page statement of :meth:`SqlStore.get_usage <otel_usage.query.SqlStore.get_usage>`
and of :meth:`SqlUsageExporter.get_usage <otel_usage.exporters.SqlUsageExporter.get_usage>`; they differ
only in their filters. The store takes the fields of :mod:`otel_usage.query._fields`; the exporter takes
:func:`exporter_page`'s: stored columns and the info keys it promotes to columns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Select, select
from sqlalchemy.sql.expression import ColumnElement

from otel_usage.exporters._sql_schema import SqlTables
from otel_usage.exporters._sql_values import promoted_text, to_utc
from otel_usage.query._store import check_page

__all__ = ["exporter_page", "newest_first", "stored_columns"]


def stored_columns(tables: SqlTables) -> list[Column[Any]]:
    """The columns of the logs table a usage log is read back from (promoted columns are copies of info)."""
    logs = tables.logs
    names = ("id", "trace_id", "span_id", "parent_span_id", "service", "start", "duration", "status")
    return [logs.c[n] for n in (*names, "schema_version", "info", "data", "extra")]


def newest_first(tables: SqlTables, conditions: Sequence[ColumnElement[bool]], limit: int, page: int) -> Select[Any]:
    """The logs matching ``conditions``, newest first (then by id), page ``page`` of ``limit`` logs."""
    logs = tables.logs
    return (
        select(*stored_columns(tables))
        .where(*conditions)
        .order_by(logs.c.start.desc(), logs.c.id.desc())
        .limit(limit)
        .offset((page - 1) * limit)
    )


def exporter_page(
    tables: SqlTables,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
    page: int,
    filters: Mapping[str, Any],
) -> Select[Any]:
    """The statement of :meth:`SqlUsageExporter.get_usage <otel_usage.exporters.SqlUsageExporter.get_usage>`.

    ``filters`` are equalities on the columns of :attr:`SqlTables.filters
    <otel_usage.exporters._sql_schema.SqlTables.filters>`, a promoted info key's value stored as text
    (:func:`~otel_usage.exporters._sql_values.promoted_text`); ``None`` matches a missing value, a list,
    tuple or set any of its items.

    Raises:
        ValueError: a bad ``limit``/``page``, or an unknown filter.
    """
    check_page(limit, page, ValueError)
    logs = tables.logs
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        conditions.append(logs.c.start >= to_utc(start))
    if end is not None:
        conditions.append(logs.c.start < to_utc(end))
    promoted = set(tables.columns.values())
    for name, value in filters.items():
        column = tables.filters.get(name)
        if column is None:
            known = ", ".join(sorted(tables.filters))
            raise ValueError(f"unknown filter {name!r}; known filters: {known}")
        convert = promoted_text if column.name in promoted else (lambda v: v)
        if isinstance(value, (list, tuple, set, frozenset)):
            conditions.append(column.in_([convert(v) for v in value]))
        elif value is None:
            conditions.append(column.is_(None))
        else:
            conditions.append(column == convert(value))
    return newest_first(tables, conditions, limit, page)
