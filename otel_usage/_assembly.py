"""Assembly: the records of one local trace become one usage log (schema 1), then leave as a log record.

Runs on the span processor's worker thread, never on the application's. The log's shape is described
in ``DESIGN.md``: info keys at the top level, ``data`` in call order (pre-order: a parent before its
children, siblings by start time), then the metadata keys.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_usage import _counters
from otel_usage._errors import internal_error
from otel_usage._record import Entry, Root
from otel_usage._schema import SCHEMA_VERSION, USAGE_LOG_EVENT
from otel_usage._serialize import serialize_attributes
from otel_usage._usage_processors import UsageProcessor, run_chain
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
    start_ns = entry.start_ns
    end_ns = entry.end_ns
    record: dict[str, Any]
    if probe is not None:
        params = entry.params
        record = {
            "function": probe.function,
            "tracker": probe.tracker,
            "depth": entry.depth,
            "level": probe.level_name,
            "start": round((start_ns - origin_ns) / 1e9, 9),
            "duration": round((end_ns - start_ns) / 1e9, 9) if end_ns else None,
        }
        if not end_ns:
            record["unfinished"] = True
        record["params"] = params if params is not None else {}
        if entry.class_name is not None:
            record["class_name"] = entry.class_name
    else:
        record = {
            "function": entry.name,
            "tracker": entry.scope,
            "depth": entry.depth,
            "level": None,
            "start": round((start_ns - origin_ns) / 1e9, 9),
            "duration": round((end_ns - start_ns) / 1e9, 9) if end_ns else None,
        }
        if not end_ns:
            record["unfinished"] = True
        if entry.attributes:
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
    log = info  # a new dict: the info keys come first
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
    if root.events:
        log["events"] = [
            {"name": name, "time": _offset(at, origin), "data": data, "context": ctx}
            for at, name, data, ctx in sorted(root.events, key=lambda e: e[0])
        ]
    if root.lines:
        log["logs"] = [[_offset(line[0], origin), *line[1:]] for line in sorted(root.lines, key=lambda e: e[0])]
    if root.timers:
        end_ns = root.end_ns or max((e.end_ns for e in entries), default=origin) or origin
        log["timers"] = [_timer(t, origin, end_ns) for t in sorted(root.timers, key=lambda t: t[1])]
    if root.truncated:
        log["truncated"] = {"records": root.truncated}
    return log


_SAMPLED_FLAGS = TraceFlags(TraceFlags.SAMPLED)
_INFO = SeverityNumber.INFO
_NO_CONTEXT = Context()
#: The method a log record processor offers to take a finished usage log record directly (see LogEmitter).
DIRECT_METHOD = "accept_usage_records"


class _Direct:
    """Where the logger's records go when every processor it has takes them directly."""

    __slots__ = ("attributes", "limits", "processors", "resource", "scope", "source")

    def __init__(self, source: tuple[Any, ...], logger: Any) -> None:
        self.source = source
        self.processors = tuple(getattr(p, DIRECT_METHOD) for p in source)  # each takes a list of records
        self.resource = logger._resource
        self.scope = logger._instrumentation_scope
        self.limits = limits = logger._log_record_limits
        # as Logger.emit gives a record without attributes, but one shared and read-only
        self.attributes = BoundedAttributes(
            maxlen=limits.max_attributes, attributes=None, immutable=True, max_value_len=limits.max_attribute_length
        )


def _direct_for(logger: Any) -> _Direct | None:
    """A :class:`_Direct` when ``logger`` is the SDK's and every processor of it takes records directly."""
    from opentelemetry.sdk._logs import Logger
    from opentelemetry.sdk._logs._internal import SynchronousMultiLogRecordProcessor

    if type(logger) is not Logger or type(logger._logger_metrics).__name__ != "NoOpLoggerMetrics":
        return None  # the SDK's own log metrics count what Logger.emit sees
    multi = logger._multi_log_record_processor
    if type(multi) is not SynchronousMultiLogRecordProcessor:
        return None
    source = multi._log_record_processors
    if not isinstance(source, tuple) or not source:
        return None
    if not all(callable(getattr(p, DIRECT_METHOD, None)) for p in source):
        return None
    return _Direct(source, logger)


class LogEmitter:
    """Assembles a root, runs the usage processors and emits the result as one OTel log record.

    When every processor of the logger offers ``accept_usage_record`` (the delivery processors do), the
    record is built here once, as the SDK's ``Logger.emit`` would build it, and handed to them directly:
    the SDK's per-record copy, limits and fan-out are skipped. Any other processor, the SDK's log metrics
    or a disabled logger send every record through ``Logger.emit`` instead.
    """

    def __init__(self, logger_provider: LoggerProvider, processors: Sequence[UsageProcessor] = ()) -> None:
        self._own_logger = self._logger = logger_provider.get_logger("otel_usage", __version__)
        self.processors: list[UsageProcessor] = list(processors)
        self._direct: _Direct | None = None
        self._direct_logger: Any = None

    def redirect(self, logger_provider: LoggerProvider | None) -> None:
        """Emit into ``logger_provider`` instead of the pipeline's own (None: back to it); for capture_usage."""
        if logger_provider is None:
            self._logger = self._own_logger
        else:
            self._logger = logger_provider.get_logger("otel_usage", __version__)

    def __call__(self, root: Root) -> None:
        self.emit_many((root,))

    def emit_many(self, roots: Sequence[Root]) -> None:
        """Assemble and emit the logs of ``roots``; a failure in one is logged and the others go on."""
        logger = self._logger
        direct = self._direct_targets(logger)
        records: list[ReadableLogRecord] = []
        emitted = 0
        processors = self.processors
        for root in roots:
            try:
                log = assemble(root)
                if processors:
                    chained = run_chain(log, processors)
                    if chained is None:
                        continue
                    log = chained
                if direct is not None:
                    records.append(_new_record(root, log, direct))
                else:
                    _emit_through(logger, root, log)
                emitted += 1
            except Exception as exc:  # noqa: BLE001
                internal_error(exc, "usage log assembly")
        if records:
            for accept in direct.processors:  # type: ignore[union-attr]
                accept(records)
        if emitted:
            _counters.count("logs_emitted", emitted)

    def _direct_targets(self, logger: Any) -> _Direct | None:
        try:
            config = getattr(logger, "_logger_config", None)
            if config is not None and not config.is_enabled:
                return None
            direct = self._direct
            if (
                direct is not None
                and logger is self._direct_logger
                and logger._multi_log_record_processor._log_record_processors is direct.source
            ):
                return direct
            self._direct_logger = logger
            self._direct = direct = _direct_for(logger)
            return direct
        except Exception:  # noqa: BLE001 - an SDK that differs: Logger.emit
            self._direct = None
            return None


def _emit_through(logger: Any, root: Root, log: dict[str, Any]) -> None:
    """The SDK's way: ``Logger.emit``, correlated with the root's span."""
    span_context = SpanContext(
        trace_id=root.trace_id, span_id=root.span_id, is_remote=False, trace_flags=_SAMPLED_FLAGS
    )
    logger.emit(
        timestamp=root.start_ns,
        context=trace.set_span_in_context(NonRecordingSpan(span_context)),
        severity_number=_INFO,
        severity_text="INFO",
        body=log,
        event_name=USAGE_LOG_EVENT,
    )


def _new_record(root: Root, log: dict[str, Any], direct: _Direct) -> ReadableLogRecord:
    """The record ``Logger.emit`` would hand its processors, made read-only (its body is never changed again)."""
    api_record = object.__new__(LogRecord)
    api_record.__dict__ = {
        "timestamp": root.start_ns,
        "observed_timestamp": time.time_ns(),
        "context": _NO_CONTEXT,
        "trace_id": root.trace_id,
        "span_id": root.span_id,
        "trace_flags": _SAMPLED_FLAGS,
        "severity_text": "INFO",
        "severity_number": _INFO,
        "body": log,
        "attributes": direct.attributes,
        "event_name": USAGE_LOG_EVENT,
        "exception": None,
    }
    record = object.__new__(ReadableLogRecord)  # a frozen dataclass: its fields set as its __init__ would
    object.__setattr__(
        record,
        "__dict__",
        {
            "log_record": api_record,
            "resource": direct.resource,
            "instrumentation_scope": direct.scope,
            "limits": direct.limits,
        },
    )
    return record
