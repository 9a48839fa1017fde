"""Named events (edX ``emit``): :func:`event`.

An event is ``{name, time, data, context}`` in the log's ``events``; ``time`` is seconds from the log's
start, ``data`` a snapshot taken at the call (``{}`` when none, as edX does), ``context`` edX's
``resolve_context()``: the info in force at that moment (:func:`~otel_usage.get_info`), i.e. the usage
contexts entered and not yet exited, inner ones winning, never one that has exited. Also added as a span
event, so trace backends see it. Outside any unit of work an event becomes its own one-event usage log
(tracker ``otel_usage.event``), so an ``emit`` from a background job is never lost.
"""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry import trace

from otel_usage import _serialize
from otel_usage._context import info_in_force, is_recorded
from otel_usage._errors import internal_error
from otel_usage._log_items import AT_DEFAULT_LEVEL, RecordSpec, append_item, root_here
from otel_usage._runtime import ENTRY_ATTR, HIDDEN
from otel_usage._tracker import get_tracker

__all__ = ["EVENT_TRACKER", "event"]

EVENT_TRACKER = "otel_usage.event"


def _context_now() -> dict[str, Any]:
    """An event's context: a copy of the info in force (the log's processors may change it in place)."""
    info = info_in_force()
    return dict(info) if info else {}


def event(name: str, data: Any = None) -> None:
    """Record a named event (dotted namespaces encouraged) in the current usage log; never raises.

    The event carries ``data`` (a snapshot; ``{}`` when None) and, as ``context``, the info in force
    here: the usage contexts entered and not yet exited (the innermost wins for a key) and the
    ``add_info`` keys of the enclosing calls.
    """
    try:
        name = str(name) if name else "unknown"
        snapshot = _serialize.serialize(data) if data is not None else {}
        if HIDDEN.get():
            return
        root = root_here()
        if root is None:
            _standalone_event(name, snapshot)
            return
        if not append_item(root, "events", (time.time_ns(), name, snapshot, _context_now())):
            return
        span = trace.get_current_span()
        attributes = {"otel_usage.event.data": json.dumps(snapshot, ensure_ascii=False)} if data is not None else {}
        span.add_event(name, attributes=attributes)
    except Exception as exc:  # noqa: BLE001
        internal_error(exc, "event")


def _standalone_event(name: str, snapshot: Any) -> None:
    span = get_tracker(EVENT_TRACKER).start_span(name, AT_DEFAULT_LEVEL)
    if span is None:
        return
    entry: Any = getattr(span, ENTRY_ATTR, None)
    if is_recorded(entry):
        entry.set_call(RecordSpec(name, EVENT_TRACKER), {})
        append_item(entry.root, "events", (time.time_ns(), name, snapshot, _context_now()))
    span.add_event(name)
    span.end()
