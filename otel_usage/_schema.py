"""Names shared by everything that produces or reads usage logs (schema version 1).

A usage log leaves the span processor as one OpenTelemetry log record whose ``event_name`` is
:data:`USAGE_LOG_EVENT` and whose body is the log (a dict of JSON-native values). Exporters ignore any
other record (:func:`is_usage_log_record`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "RECORD_KEYS",
    "RESERVED_KEYS",
    "SCHEMA_VERSION",
    "USAGE_LOG_EVENT",
    "UsageLog",
    "is_usage_log_record",
    "usage_log_of",
]

SCHEMA_VERSION = 1
USAGE_LOG_EVENT = "otel_usage.log"

#: A usage log: info keys beside ``data`` and the metadata keys below.
UsageLog = dict[str, Any]

#: Top-level keys owned by the log itself; info keys may not use them.
RESERVED_KEYS = frozenset(
    {
        "data",
        "trace_id",
        "span_id",
        "parent_span_id",
        "service",
        "start",
        "duration",
        "status",
        "schema",
        "error",
        "events",
        "logs",
        "timers",
        "dropped",
        "truncated",
    }
)

#: Keys of a call record in ``data`` owned by the record; ``add_data`` may not use them.
RECORD_KEYS = frozenset(
    {
        "function",
        "tracker",
        "depth",
        "level",
        "start",
        "duration",
        "params",
        "class_name",
        "exception",
        "error",
        "return",
        "attributes",
        "span_id",
        "unfinished",
    }
)


def is_usage_log_record(record: Any) -> bool:
    """True when ``record`` (a ``ReadableLogRecord`` or a bare ``LogRecord``) carries a usage log."""
    log_record = getattr(record, "log_record", record)
    return getattr(log_record, "event_name", None) == USAGE_LOG_EVENT and isinstance(
        getattr(log_record, "body", None), Mapping
    )


def usage_log_of(record: Any) -> UsageLog | None:
    """The usage log carried by ``record``, or None when it carries none."""
    if not is_usage_log_record(record):
        return None
    body = getattr(record, "log_record", record).body
    return body if isinstance(body, dict) else dict(body)
