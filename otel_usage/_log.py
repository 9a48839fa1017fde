"""Assembly: the records of one local trace become one usage log (schema 1), then leave as a log record.

Runs on the span processor's worker thread, never on the application's. The log's shape is described
in ``DESIGN.md``: info keys at the top level, ``data`` in call order (pre-order: a parent before its
children, siblings by start time), then the metadata keys.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_usage import _stats
from otel_usage._chain import UsageProcessor, run_chain
from otel_usage._processor import Entry, Root
from otel_usage._schema import SCHEMA_VERSION, USAGE_LOG_EVENT
from otel_usage._serialize import serialize_attributes
from otel_usage.version import __version__

__all__ = ["LogEmitter", "assemble"]

logger = logging.getLogger(__name__)


_second_text: tuple[int, str] = (-1, "")  # the last second formatted (one tuple: read and replaced atomically)


def _iso(ns: int) -> str:
    global _second_text
    seconds, rest = divmod(ns, 1_000_000_000)
    cached = _second_text  # logs come in bursts within one second: format its date and time once
    if cached[0] != seconds:
        stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
        cached = _second_text = (seconds, stamp.strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{cached[1]}.{rest // 1000:06d}Z"


def _ordered(root: Root) -> list[Entry]:
    """Pre-order: parent before children, siblings by start time."""
    if len(root.entries) == 1:
        return [root]
    children: dict[int, list[Entry]] = {}
    for entry in root.entries[1:]:
        parent = entry.parent
        if parent is not None:
            children.setdefault(id(parent), []).append(entry)
    out: list[Entry] = []
    stack: list[Entry] = [root]
    while stack:
        entry = stack.pop()
        out.append(entry)
        kids = children.get(id(entry))
        if kids:
            kids.sort(key=lambda e: e.start_ns, reverse=True)
            stack.extend(kids)
    return out


def _record(entry: Entry, origin_ns: int) -> dict[str, Any]:
    probe = entry.probe
    record: dict[str, Any]
    if probe is not None:
        record = {
            "function": probe.function,
            "tracker": probe.tracker,
            "depth": entry.depth,
            "level": probe.level_name,
        }
    else:
        record = {"function": entry.name, "tracker": entry.scope, "depth": entry.depth, "level": None}
    record["start"] = round((entry.start_ns - origin_ns) / 1e9, 9)
    if entry.end_ns:
        record["duration"] = round((entry.end_ns - entry.start_ns) / 1e9, 9)
    else:
        record["duration"] = None
        record["unfinished"] = True
    if probe is not None:
        record["params"] = entry.params if entry.params is not None else {}
        if entry.class_name is not None:
            record["class_name"] = entry.class_name
    elif entry.attributes:
        record["attributes"] = serialize_attributes(entry.attributes)
    failed = entry.error is not None or entry.status_error
    record["exception"] = failed
    if failed:
        record["error"] = entry.error or {"type": "", "message": ""}
    if probe is not None and probe.record_return:
        record["return"] = entry.ret
    if entry.data:
        for key, value in entry.data.items():
            record.setdefault(key, value)
    return record


def _offset(ns: int, origin: int) -> float:
    return round((ns - origin) / 1e9, 9)


def _timer(record: list[Any], origin: int, end_ns: int) -> list[Any]:
    name, start, end = record
    if end:
        return [name, _offset(start, origin), _offset(end, origin)]
    return [name, _offset(start, origin), _offset(max(end_ns, start), origin), {"unfinished": True}]


def assemble(root: Root) -> dict[str, Any]:
    """The usage log of ``root``'s local trace."""
    origin = root.start_ns
    info: dict[str, Any] = {}
    if root.inbound_info:
        info.update(root.inbound_info)
    if root.ctx_info:
        info.update(root.ctx_info)
    entries = _ordered(root)
    records = []
    for entry in entries:
        if entry.info:
            info.update(entry.info)
        records.append(_record(entry, origin))
    log: dict[str, Any] = dict(info)
    log["data"] = records
    log["trace_id"] = format(root.trace_id, "032x")
    log["span_id"] = format(root.span_id, "016x")
    log["parent_span_id"] = format(root.parent_span_id, "016x") if root.parent_span_id else None
    log["service"] = root.service
    log["start"] = _iso(origin)
    if root.end_ns:
        log["duration"] = round((root.end_ns - origin) / 1e9, 9)
        failed = root.error is not None or root.status_error
        log["status"] = "error" if failed else "ok"
        if failed:
            log["error"] = root.error or {"type": "", "message": ""}
    else:
        log["duration"] = None
        log["status"] = "unfinished"
    log["schema"] = SCHEMA_VERSION
    end_ns = root.end_ns or max((e.end_ns for e in entries), default=origin) or origin
    if root.events:
        log["events"] = [
            {"name": name, "time": _offset(at, origin), "data": data, "context": ctx}
            for at, name, data, ctx in sorted(root.events, key=lambda e: e[0])
        ]
    if root.lines:
        log["logs"] = [[_offset(line[0], origin), *line[1:]] for line in sorted(root.lines, key=lambda e: e[0])]
    if root.timers:
        log["timers"] = [_timer(t, origin, end_ns) for t in sorted(root.timers, key=lambda t: t[1])]
    if root.truncated:
        log["truncated"] = {"records": root.truncated}
    return log


class LogEmitter:
    """Assembles a root, runs the usage processors and emits the result as one OTel log record."""

    def __init__(self, logger_provider: LoggerProvider, processors: Sequence[UsageProcessor] = ()) -> None:
        self._own_logger = self._logger = logger_provider.get_logger("otel_usage", __version__)
        self.processors: list[UsageProcessor] = list(processors)

    def redirect(self, logger_provider: LoggerProvider | None) -> None:
        """Emit into ``logger_provider`` instead of the pipeline's own (None: back to it); for capture_usage."""
        if logger_provider is None:
            self._logger = self._own_logger
        else:
            self._logger = logger_provider.get_logger("otel_usage", __version__)

    def __call__(self, root: Root) -> None:
        log: dict[str, Any] | None = assemble(root)
        if self.processors:
            log = run_chain(log, self.processors)  # type: ignore[arg-type]
            if log is None:
                return
        span_context = SpanContext(
            trace_id=root.trace_id, span_id=root.span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )
        ctx = trace.set_span_in_context(NonRecordingSpan(span_context))
        self._logger.emit(
            timestamp=root.start_ns,
            context=ctx,
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body=log,
            event_name=USAGE_LOG_EVENT,
        )
        _stats.count("logs_emitted")
