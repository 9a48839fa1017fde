"""Tables of the SQL exporter and the conversion between a usage log and its rows.

Three tables, named with a configurable prefix (default ``usage_``):

``<prefix>logs``
    One row per usage log: ``id``, ``trace_id``, ``span_id``, ``parent_span_id``, ``service``, ``start``
    (timezone-aware timestamp, UTC), ``duration`` (seconds), ``status``, ``schema_version``, ``info`` (the
    info keys, JSON), ``data`` (the call records, JSON), ``extra`` (the other optional top-level keys such as
    ``events``, ``logs``, ``timers``, ``error``, ``truncated``; JSON or NULL), plus one text column per
    promoted info key. Unique on ``(trace_id, span_id)``, so a log delivered twice is stored once.
``<prefix>calls``
    One row per call record of ``data``: ``log_id``, ``position`` (index in ``data``), ``function``,
    ``tracker``, ``depth``, ``level``, ``start`` (seconds from the log's start), ``duration``, ``exception``,
    ``params`` (JSON). Indexed by function, so per-function statistics run inside the database.
``<prefix>schema``
    ``component`` / ``version`` / ``created``: the schema version, for future migrations.

Promoted columns hold text: a string is stored as it is, any other value as compact JSON (``42``,
``true``, ``{"a":1}``) and a missing key or ``None`` as NULL; filters convert their values the same way.
JSON columns are JSONB on PostgreSQL and JSON (text) on SQLite.

The single-value conversions are in :mod:`otel_usage.exporters._sql_values`; the tables are created by
:mod:`otel_usage.exporters._sql_ddl`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.types import BigInteger, TypeEngine

from otel_usage._schema import RESERVED_KEYS, SCHEMA_VERSION, UsageLog
from otel_usage.exporters._sql_values import (
    PreparedLog,
    as_float,
    as_int,
    as_text,
    lookup_info,
    parse_start,
    promoted_text,
    to_utc,
)

try:
    import orjson as _orjson
except ImportError:  # a platform without orjson wheels: the standard library's encoder alone
    _orjson = None  # type: ignore[assignment]

_ORJSON_OPTIONS = _orjson.OPT_NON_STR_KEYS if _orjson is not None else 0

__all__ = [
    "LOG_COLUMNS",
    "PREPARED_LOG_COLUMNS",
    "SqlTables",
    "dumps",
    "normalize_url",
    "parse_columns",
    "validate_identifier",
]

#: How to get the PostgreSQL driver.
POSTGRES_HINT = "pip install 'otel-usage[postgres]'"


def normalize_url(url: str | URL) -> URL:
    """``url`` parsed, ``postgresql://`` meaning psycopg 3, its driver importable (the write and read sides).

    Raises:
        ValueError: not a URL, or not a SQLite or PostgreSQL one.
        ImportError: its database driver is not installed (with how to install it).
    """
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise ValueError(f"invalid database URL: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"usage logs are stored in SQLite and PostgreSQL databases only, not {backend!r}")
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as exc:
        hint = f"; install it with: {POSTGRES_HINT}" if backend == "postgresql" else ""
        raise ImportError(f"the database driver for {parsed.drivername!r} is not installed{hint}") from exc
    return parsed


#: Longest identifier accepted (PostgreSQL truncates longer ones silently).
MAX_IDENTIFIER_LENGTH = 63

#: Built-in columns of the logs table; promoted columns may not reuse these names.
LOG_COLUMNS = (
    "id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "start",
    "duration",
    "status",
    "schema_version",
    "info",
    "data",
    "extra",
)

#: Top-level keys of a usage log that have their own column (everything else reserved goes to ``extra``).
_OWN_COLUMN_KEYS = frozenset(
    ("data", "trace_id", "span_id", "parent_span_id", "service", "start", "duration", "status", "schema")
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: The schema component name recorded in the schema table.
COMPONENT = "otel_usage"


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept: the serializer of the JSON columns.

    orjson writes it (a tenth of the standard encoder's time: most of the exporter's CPU otherwise); what
    orjson refuses (an int beyond 64 bits, a lone surrogate, a type it does not know) goes to the standard
    library's encoder, which writes it or raises as it always did. orjson writes NaN and infinities as
    ``null`` (valid JSON) where the standard encoder would write ``NaN``.
    """
    if _orjson is not None:
        try:
            return _orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return _ENCODER.encode(value)


def _json_type() -> TypeEngine[Any]:
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def validate_identifier(name: object, what: str) -> str:
    """``name`` if it is a plain SQL identifier (letters, digits, ``_``, not starting with a digit).

    Raises:
        ValueError: naming ``what`` and the offending value.
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name) or len(name) > MAX_IDENTIFIER_LENGTH:
        raise ValueError(
            f"invalid {what} {name!r}: expected an SQL identifier of at most {MAX_IDENTIFIER_LENGTH} characters "
            "(letters, digits and '_', not starting with a digit)"
        )
    return name


def parse_columns(spec: str | Mapping[str, str] | Iterable[str] | None, source: str = "columns") -> dict[str, str]:
    """Parse a promoted-column mapping into ``{info_key: column_name}``, validated.

    ``spec`` is ``"user=user_name,tenant"``, a mapping ``{"user": "user_name"}`` or a sequence of such items.

    Raises:
        ValueError: a malformed item, an invalid or built-in column name, or a name used twice.
    """
    if spec is None:
        return {}
    items: list[tuple[str, str]] = []
    if isinstance(spec, Mapping):
        items = [(str(k), v) for k, v in spec.items()]
    else:
        parts = spec.split(",") if isinstance(spec, str) else list(spec)
        for part in parts:
            if not isinstance(part, str):
                raise ValueError(f"invalid {source} item {part!r}: expected 'key=column' or 'key'")
            if not part.strip():
                continue
            key, sep, column = part.partition("=")
            key, column = key.strip(), column.strip()
            if not key or (sep and not column):
                raise ValueError(f"invalid {source} item {part!r}: expected 'key=column' or 'key'")
            items.append((key, column or key))
    result: dict[str, str] = {}
    seen: dict[str, str] = {}
    builtin = {c.lower() for c in LOG_COLUMNS}
    for key, column in items:
        if not key or key in RESERVED_KEYS:
            raise ValueError(f"invalid {source}: {key!r} is not an info key (reserved or empty)")
        validate_identifier(column, f"column name for info key {key!r} in {source}")
        if column.lower() in builtin:
            raise ValueError(f"invalid {source}: column {column!r} clashes with a built-in column of the logs table")
        if column.lower() in seen or key in result:
            raise ValueError(f"invalid {source}: {key!r} / {column!r} used twice")
        seen[column.lower()] = key
        result[key] = column
    return result


#: Columns of the logs table a prepared log fills, in the order of :attr:`PreparedLog.values` (promoted
#: columns follow).
PREPARED_LOG_COLUMNS = LOG_COLUMNS[1:]


class SqlTables:
    """The exporter's tables for one prefix and column mapping, and the row conversions."""

    def __init__(self, prefix: str, columns: Mapping[str, str]) -> None:
        if prefix:
            validate_identifier(prefix, "table prefix")
        self.prefix = prefix
        self.columns = dict(columns)
        self.metadata = MetaData()
        logs_name, calls_name, schema_name = f"{prefix}logs", f"{prefix}calls", f"{prefix}schema"
        names = [logs_name, calls_name, schema_name, f"uq_{logs_name}_trace_span", f"ix_{logs_name}_start"]
        names += [f"ix_{logs_name}_service_start", f"ix_{calls_name}_function", f"ix_{calls_name}_tracker"]
        names += [f"ix_{logs_name}_{column}" for column in self.columns.values()]
        for name in names:
            validate_identifier(name, "table or index name (table prefix and column names too long?)")
        self.schema = Table(
            schema_name,
            self.metadata,
            Column("component", Text, primary_key=True),
            Column("version", Integer, nullable=False),
            Column("created", DateTime(timezone=True), nullable=False),
        )
        self.logs = Table(
            logs_name,
            self.metadata,
            Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
            Column("trace_id", Text, nullable=False),
            Column("span_id", Text, nullable=False),
            Column("parent_span_id", Text),
            Column("service", Text),
            Column("start", DateTime(timezone=True), nullable=False),
            Column("duration", Float),
            Column("status", Text),
            Column("schema_version", Integer),
            Column("info", _json_type()),
            Column("data", _json_type()),
            Column("extra", _json_type()),
            *(Column(column, Text) for column in self.columns.values()),
            UniqueConstraint("trace_id", "span_id", name=f"uq_{logs_name}_trace_span"),
        )
        self.calls = Table(
            calls_name,
            self.metadata,
            Column("log_id", ForeignKey(f"{logs_name}.id", ondelete="CASCADE"), nullable=False),
            Column("position", Integer, nullable=False),
            Column("function", Text),
            Column("tracker", Text),
            Column("depth", Integer),
            Column("level", Text),
            Column("start", Float),
            Column("duration", Float),
            Column("exception", Boolean),
            Column("params", _json_type()),
            PrimaryKeyConstraint("log_id", "position"),
        )
        #: The logs-table columns of :attr:`PreparedLog.values`, in order.
        self.log_columns: tuple[str, ...] = (*PREPARED_LOG_COLUMNS, *self.columns.values())
        self.indexes: list[Index] = [
            Index(f"ix_{logs_name}_start", self.logs.c.start),
            Index(f"ix_{logs_name}_service_start", self.logs.c.service, self.logs.c.start),
            Index(f"ix_{calls_name}_function", self.calls.c.function),
            Index(f"ix_{calls_name}_tracker", self.calls.c.tracker),
        ]
        self.column_indexes = {
            column: Index(f"ix_{logs_name}_{column}", self.logs.c[column]) for column in self.columns.values()
        }
        self.indexes += self.column_indexes.values()
        # filter name -> column: top-level fields, promoted info keys, promoted column names
        self.filters: dict[str, Column[Any]] = {
            name: self.logs.c[name] for name in ("service", "status", "trace_id", "span_id", "parent_span_id")
        }
        for column in self.columns.values():
            self.filters.setdefault(column, self.logs.c[column])
        for key, column in self.columns.items():
            self.filters[key] = self.logs.c[column]

    def prepare(
        self,
        log: Mapping[str, Any],
        encode: Callable[[Any], Any] | None = None,
        stamp: Callable[[dt.datetime], Any] | None = None,
    ) -> PreparedLog:
        """The column values of one usage log and of its call records.

        Args:
            log: the usage log.
            encode: when given, applied to the JSON columns' values (not to None): the driver-ready form.
            stamp: when given, applied to ``start`` (an aware UTC datetime).

        Raises:
            ValueError: the log lacks its ids or its start time cannot be read.
        """
        get = log.get
        trace_id, span_id = get("trace_id"), get("span_id")
        if not isinstance(trace_id, str) or not trace_id or not isinstance(span_id, str) or not span_id:
            raise ValueError("usage log without trace_id/span_id")
        info: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in log.items():
            if k not in RESERVED_KEYS:
                info[k] = v
            elif k not in _OWN_COLUMN_KEYS:
                extra[k] = v
        data = get("data")
        start = parse_start(get("start"))
        promoted = [promoted_text(lookup_info(info, key)) for key in self.columns]
        calls: list[tuple[Any, ...]] = []
        if type(data) is list or (isinstance(data, Sequence) and not isinstance(data, (str, bytes))):
            for position, record in enumerate(data):
                if type(record) is not dict and not isinstance(record, Mapping):
                    continue
                rget = record.get
                exception = rget("exception")
                params = rget("params")
                calls.append(
                    (
                        position,
                        as_text(rget("function")),
                        as_text(rget("tracker")),
                        as_int(rget("depth")),
                        as_text(rget("level")),
                        as_float(rget("start")),
                        as_float(rget("duration")),
                        None if exception is None else bool(exception),
                        params if encode is None or params is None else encode(params),
                    )
                )
        if encode is not None:
            info_value: Any = encode(info)
            data_value: Any = None if data is None else encode(data)
            extra_value: Any = encode(extra) if extra else None
        else:
            info_value, data_value, extra_value = info, data, extra or None
        values = (
            trace_id,
            span_id,
            as_text(get("parent_span_id")),
            as_text(get("service")),
            start if stamp is None else stamp(start),
            as_float(get("duration")),
            as_text(get("status")),
            as_int(get("schema", SCHEMA_VERSION)),
            info_value,
            data_value,
            extra_value,
            *promoted,
        )
        return PreparedLog((trace_id, span_id), values, calls)

    def log_row(self, item: PreparedLog) -> dict[str, Any]:
        """The logs-table row of ``item`` as a dict (column name -> value)."""
        return dict(zip(self.log_columns, item.values, strict=True))

    def log_from_row(self, row: Mapping[Any, Any]) -> UsageLog:
        """The usage log stored in a logs-table row; ``start`` is an aware UTC datetime."""
        log: UsageLog = dict(row["info"] or {})
        log["data"] = row["data"]
        log.update(row["extra"] or {})
        log["trace_id"] = row["trace_id"]
        log["span_id"] = row["span_id"]
        log["parent_span_id"] = row["parent_span_id"]
        log["service"] = row["service"]
        log["start"] = to_utc(row["start"])
        log["duration"] = row["duration"]
        log["status"] = row["status"]
        log["schema"] = row["schema_version"]
        return log
