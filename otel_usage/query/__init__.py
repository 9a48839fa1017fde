"""Reading stored usage logs back: pages of logs, one trace, and statistics, from any store.

A store is named by a SQLAlchemy URL (``sqlite:///usage.db``, ``postgresql+psycopg://user@host/db``) or by
the path of a JSON Lines file (``usage.jsonl``, read with its rotated files ``usage.jsonl.1`` .. ``.N``);
every store answers the same questions with the same shapes, and none is ever written to::

    from otel_usage.query import open_store

    with open_store("sqlite:///usage.db") as store:
        store.get_usage(start="2026-11-20", endpoint="notes.show", limit=50)
        store.stats(by="endpoint", per="day", tz="Europe/Paris", since="7d")

Statistics run inside the database (one ``GROUP BY``) or in one streaming pass over a file; they never load
every log. The fields to filter and group on are :data:`FIELDS` and any info key as ``info.<key>``.
"""

from __future__ import annotations

import os
from typing import Any

from otel_usage._schema import UsageLog
from otel_usage.query._fields import FIELDS, PERCENTILES, PERIODS, Field, QueryError, StoreError, TimeZone, parse_time
from otel_usage.query._jsonl import JsonlStore
from otel_usage.query._results import FIGURES, StatsRow, UsageStats
from otel_usage.query._sql import SqlStore
from otel_usage.query._store import Progress, UsageStore

__all__ = [
    "FIELDS",
    "FIGURES",
    "Field",
    "JsonlStore",
    "PERCENTILES",
    "PERIODS",
    "QueryError",
    "SqlStore",
    "StatsRow",
    "StoreError",
    "TimeZone",
    "UsageStats",
    "UsageStore",
    "get_usage",
    "open_store",
    "parse_time",
    "usage_stats",
]


def open_store(
    store: str | os.PathLike[str] | UsageStore, *, table_prefix: str = "usage_", progress: Progress | None = None
) -> UsageStore:
    """The store named by a URL (``sqlite:///...``, ``postgresql+psycopg://...``) or a JSON Lines path.

    A path ending in ``.db``, ``.sqlite`` or ``.sqlite3`` is a SQLite file; any other path is a JSON Lines file.

    Args:
        store: the URL or path (an open store is returned as it is).
        table_prefix: the SQL exporter's table prefix.
        progress: for JSON Lines stores, called with (bytes read, bytes in all) while scanning.

    Raises:
        StoreError: the store cannot be read (missing file, unreachable database, no usage tables).
        QueryError: a URL of another kind of database.
    """
    if isinstance(store, UsageStore):
        return store
    name = os.fspath(store)
    if "://" in name:
        return SqlStore(name, table_prefix=table_prefix)
    if name.lower().endswith((".db", ".sqlite", ".sqlite3")):
        return SqlStore(f"sqlite:///{os.path.abspath(name)}", table_prefix=table_prefix)
    return JsonlStore(name, progress=progress)


def get_usage(
    store: str | os.PathLike[str] | UsageStore,
    start: Any = None,
    end: Any = None,
    limit: int = 500,
    page: int = 1,
    **filters: Any,
) -> list[UsageLog]:
    """Stored usage logs, newest first: Flask-Track-Usage's ``get_usage(start, end, limit, page)`` over any store.

    Args:
        store: a store URL or path (see :func:`open_store`), or an open store.
        start: logs that started at or after this (datetime, date, ISO-8601 string, or ``"7d"`` ago); naive is UTC.
        end: logs that started before this.
        limit: logs per page (>= 1).
        page: which page, from 1.
        **filters: equality on a field of :data:`FIELDS` (``endpoint="notes.show"``, ``function=...``,
            ``status="error"``, ``service=...``, ``trace_id=...``) or any info key (``tenant="acme"``;
            ``request__username="alice"`` for a nested key); a list matches any of its values, None a missing one.

    Returns:
        Usage logs as they were stored, with ``start`` an aware UTC datetime.

    Raises:
        QueryError: a bad time, limit, page or field name.
        StoreError: the store cannot be read.
    """
    opened = open_store(store)
    try:
        return opened.get_usage(start, end, limit, page, **filters)
    finally:
        if opened is not store:
            opened.close()


def usage_stats(store: str | os.PathLike[str] | UsageStore, **arguments: Any) -> UsageStats:
    """:meth:`UsageStore.stats` on a store named by URL or path (opened and closed here)."""
    opened = open_store(store)
    try:
        return opened.stats(**arguments)
    finally:
        if opened is not store:
            opened.close()
