"""LogDefer-compatible output: a usage log as LogDefer's JSON message, for existing LogDefer tooling.

LogDefer's message (see its documentation) has ``start`` (epoch seconds), ``end`` (duration in
seconds), and, when present, ``logs`` (``[offset, level, message, data?]``), ``timers``
(``[name, start_offset, end_offset]``) and ``data`` (a dict). A usage log maps onto it as:

- ``start`` = the log's start as epoch seconds; ``end`` = its duration (0 when unfinished);
- ``logs`` and ``timers`` as they are (an unfinished timer's flag is dropped: LogDefer has none);
  a log line's non-dict data is wrapped as ``{"log_specific_data": data}`` as LogDefer does;
- ``data`` = the info keys, plus ``usage`` with what LogDefer has no place for (``data`` records,
  ``events``, ids, service, status), so nothing is lost.

Selectable in the file exporter with ``OTEL_USAGE_FILE_FORMAT=logdefer``.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from otel_usage._schema import RESERVED_KEYS

__all__ = ["format_logdefer", "to_logdefer"]

_META = ("data", "events", "trace_id", "span_id", "parent_span_id", "service", "status", "schema", "error")


def _epoch(start: Any) -> float:
    if isinstance(start, datetime.datetime):
        stamp = start
    else:
        stamp = datetime.datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


def to_logdefer(log: dict[str, Any]) -> dict[str, Any]:
    """LogDefer's message for ``log``."""
    message: dict[str, Any] = {"start": _epoch(log["start"]), "end": log.get("duration") or 0.0}
    lines = log.get("logs")
    if lines:
        message["logs"] = [
            [*line[:3], line[3] if isinstance(line[3], dict) else {"log_specific_data": line[3]}]
            if len(line) > 3
            else list(line[:3])
            for line in lines
        ]
    timers = log.get("timers")
    if timers:
        message["timers"] = [list(t[:3]) for t in timers]
    data = {k: v for k, v in log.items() if k not in RESERVED_KEYS}
    data["usage"] = {k: log[k] for k in _META if k in log}
    message["data"] = data
    return message


def format_logdefer(log: dict[str, Any]) -> str:
    """One JSON line (no newline) of :func:`to_logdefer`."""
    return json.dumps(to_logdefer(log), ensure_ascii=False, separators=(",", ":"), default=repr)
