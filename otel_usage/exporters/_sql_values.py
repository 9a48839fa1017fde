"""The values of the SQL exporter's columns: a usage log as a :class:`PreparedLog`, and single-value conversions.

:meth:`SqlTables.prepare <otel_usage.exporters._sql_schema.SqlTables.prepare>` turns a usage log into a
:class:`PreparedLog` with these conversions: ``start`` to an aware UTC datetime, promoted info values to
text (:func:`promoted_text`, which filters use too), a number of the wrong type to NULL, any other value of
a text column to ``str()``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "PREPARED_CALL_COLUMNS",
    "PreparedLog",
    "as_float",
    "as_int",
    "as_text",
    "lookup_info",
    "parse_start",
    "promoted_text",
    "to_utc",
]


#: Columns of the calls table a prepared call record fills, in order (``log_id`` comes first in the table).
PREPARED_CALL_COLUMNS = (
    "position",
    "function",
    "tracker",
    "depth",
    "level",
    "start",
    "duration",
    "exception",
    "params",
)


@dataclasses.dataclass(slots=True)
class PreparedLog:
    """A usage log turned into column values (see :meth:`~otel_usage.exporters._sql_schema.SqlTables.prepare`
    for their form).

    ``values`` follows :attr:`~otel_usage.exporters._sql_schema.SqlTables.log_columns`; each item of ``calls`` follows
    :data:`PREPARED_CALL_COLUMNS`.
    """

    key: tuple[str, str]
    values: tuple[Any, ...]
    calls: list[tuple[Any, ...]]

    def call_rows(self, log_id: Any) -> list[dict[str, Any]]:
        """The calls-table rows as dicts, with their ``log_id``."""
        return [{"log_id": log_id, **dict(zip(PREPARED_CALL_COLUMNS, call, strict=True))} for call in self.calls]


def promoted_text(value: Any) -> str | None:
    """How a promoted info value is stored: a string as is, None as NULL, anything else as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def to_utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (a naive one is taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def parse_start(value: Any) -> dt.datetime:
    """A log's ``start`` (ISO-8601 text, a datetime or epoch seconds) as an aware UTC datetime.

    Raises:
        ValueError: none of those.
    """
    if isinstance(value, dt.datetime):
        return to_utc(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        return to_utc(dt.datetime.fromisoformat(text))
    raise ValueError(f"start {value!r} is not an ISO-8601 timestamp")


def as_text(value: Any) -> str | None:
    """A text column's value: a string or None as it is, anything else as ``str()``."""
    if value is None or isinstance(value, str):
        return value
    return str(value)


def as_int(value: Any) -> int | None:
    """An integer column's value: an int, or a float without a fraction; anything else is None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    """A float column's value: any number but a bool, as a float; anything else is None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def lookup_info(info: Mapping[str, Any], key: str) -> Any:
    """The value of info key ``key``; a dotted key (``a.b``) that is not a key itself looks into nested mappings."""
    if key in info:
        return info[key]
    if "." not in key:
        return None
    node: Any = info
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
