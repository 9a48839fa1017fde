"""Transactions: named events, LogDefer-style log lines and timers inside a usage log.

- :func:`event` (edX ``emit``): ``{name, time, data, context}`` in the log's ``events``; ``time`` is
  seconds from the log's start, ``data`` a snapshot taken at the call (``{}`` when none, as edX does),
  ``context`` edX's ``resolve_context()``: the info in force at that moment (:func:`~otel_usage.get_info`),
  i.e. the usage contexts entered and not yet exited, inner ones winning, never one that has exited.
  Also added as a span event, so trace backends see it. Outside any unit of work an event becomes its
  own one-event usage log (tracker ``otel_usage.event``), so an ``emit`` from a background job is never
  lost.
- :data:`log` (LogDefer): ``log.error/warn/info/debug(message, data=None)`` and
  ``log.add(level, message, data=None)`` with LogDefer's numbers (error 10, warn 20, info 30, debug 40;
  any integer for custom levels) append ``[offset_seconds, level, message, data?]`` to the log's
  ``logs`` when ``level <= verbosity`` (``OTEL_USAGE_LOG_VERBOSITY``, default 30). A callable message
  is called only when it passes. LogDefer's ``add_message``, ``data`` and ``timer`` work on it too.
  :class:`UsageLogHandler` bridges stdlib ``logging`` records emitted inside a unit of work into
  ``logs`` (``OTEL_USAGE_LOG_BRIDGE``, off by default).
- :class:`timer`: ``with timer("name"):`` (or as a decorator) appends ``[name, start, end]`` to
  ``timers``; timers nest, overlap and repeat freely. One still open when the log is assembled is
  closed at the log's end and flagged with a fourth element ``{"unfinished": true}``.
- :class:`transaction`: ``with transaction("nightly-import") as tx:`` opens a unit of work explicitly
  (its own usage log, linked to the enclosing span if any); ``tx.data[...]`` become info.

Outside a recorded unit of work, log lines and timers are dropped (counted), never raised. Each log keeps
at most :data:`MAX_ITEMS_PER_LOG` events, log lines and timers (each kind; more are counted as
``events_per_log`` ...), and what arrives after its log has ended (a task outliving its unit of work) is
counted as ``late_event`` / ``late_log_line`` / ``late_timer``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from opentelemetry import context, trace
from opentelemetry.trace import Link

from otel_usage import _serialize, _stats
from otel_usage._context import add_info, current_entry, info_in_force, is_recorded, per_call
from otel_usage._errors import internal_error
from otel_usage._levels import DEFAULT, THRESHOLD
from otel_usage._probe import fail_span, get_tracker
from otel_usage._record import DISCARDED, OPEN, WAITING
from otel_usage._runtime import ENTRY_ATTR, HIDDEN, LEVEL_ATTR, RUNTIME
from otel_usage._schema import RESERVED_KEYS

__all__ = [
    "UsageLogHandler",
    "event",
    "install_logging_bridge",
    "log",
    "logging_bridge_installed",
    "set_verbosity",
    "timer",
    "transaction",
]

_DEFAULT_LEVEL = {LEVEL_ATTR: "DEFAULT"}

logger = logging.getLogger("otel_usage")

F = TypeVar("F", bound=Callable[..., Any])

ERROR, WARN, INFO, DEBUG = 10, 20, 30, 40
EVENT_TRACKER = "otel_usage.event"
TRANSACTION_TRACKER = "otel_usage.transaction"


class _Verbosity:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = INFO


VERBOSITY = _Verbosity()


def set_verbosity(level: int) -> None:
    """Record log lines whose level is at most ``level`` (LogDefer numbers: lower is more severe)."""
    if isinstance(level, bool) or not isinstance(level, int):
        raise ValueError(f"verbosity must be an integer, got {level!r}")
    VERBOSITY.value = level


#: Most events, log lines or timers kept in one usage log (each kind); more are counted, not kept.
MAX_ITEMS_PER_LOG = 1000

_lists_lock = threading.Lock()
_KINDS = {"events": "event", "lines": "log_line", "timers": "timer"}


def _append(root: Any, field: str, item: Any) -> bool:
    """Append to one of the root's lists, created on first use (most logs have none); never unbounded.

    False (counted) when the log has ended and is being or has been emitted (``late_<kind>``), or the
    list is full (``<kind>s_per_log``); False, not counted, when the log was discarded on purpose.
    """
    state = root.state
    if state != OPEN and state != WAITING:
        if state != DISCARDED:
            _stats.count_drop(f"late_{_KINDS[field]}")
        return False
    items = getattr(root, field)
    if items is None:
        with _lists_lock:
            items = getattr(root, field)
            if items is None:
                items = []
                setattr(root, field, items)
    if len(items) >= MAX_ITEMS_PER_LOG:
        _stats.count_drop(f"{_KINDS[field]}s_per_log")
        return False
    items.append(item)
    return True


def _root_here() -> Any:
    if HIDDEN.get():
        return None
    entry = current_entry()
    return entry.root if is_recorded(entry) else None


# --- events -------------------------------------------------------------------------------------


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
        root = _root_here()
        if root is None:
            _standalone_event(name, snapshot)
            return
        if not _append(root, "events", (time.time_ns(), name, snapshot, _context_now())):
            return
        span = trace.get_current_span()
        attributes = {"otel_usage.event.data": json.dumps(snapshot, ensure_ascii=False)} if data is not None else {}
        span.add_event(name, attributes=attributes)
    except Exception as exc:  # noqa: BLE001
        internal_error(exc, "event")


def _standalone_event(name: str, snapshot: Any) -> None:
    span = get_tracker(EVENT_TRACKER).start_span(name, _DEFAULT_LEVEL)
    if span is None:
        return
    entry: Any = getattr(span, ENTRY_ATTR, None)
    if is_recorded(entry):
        entry.set_call(_Spec(name, EVENT_TRACKER), {})
        _append(entry.root, "events", (time.time_ns(), name, snapshot, _context_now()))
    span.add_event(name)
    span.end()


class _Spec:
    """What the assembler needs of a record that no decorated function produced."""

    __slots__ = ("function", "level_name", "record_return", "tracker")

    def __init__(self, function: str, tracker: str) -> None:
        self.function = function
        self.tracker = tracker
        self.level_name = "DEFAULT"
        self.record_return = False


# --- log lines ----------------------------------------------------------------------------------


class _LogLines:
    """LogDefer's deferred log lines, recorded into the current usage log.

    Also LogDefer's other calls, so that its documented examples run unchanged inside a unit of
    work: ``add_message(level, message, data)``, ``data(mapping)`` (info of the log, as
    :func:`~otel_usage.add_info`) and ``timer(name)`` (a :class:`timer`).
    """

    def add(self, level: int, message: str | Callable[[], str], data: Any = None) -> None:
        """Record ``[offset, level, message, data?]`` when ``level <= verbosity``; never raises."""
        try:
            if level.__class__ is not int:
                try:
                    level = int(level)
                except (TypeError, ValueError):
                    _stats.count_drop("log_line_bad_level", detail=type(level).__name__)
                    return
            if level > VERBOSITY.value:
                return
            root = _root_here()
            if root is None:
                _stats.count_drop("log_line_outside_unit_of_work")
                return
            text = message() if callable(message) else message
            line: tuple[Any, ...] = (time.time_ns(), level, str(text))
            if data is not None:
                line = (*line, _serialize.serialize(data))
            _append(root, "lines", line)
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "log line")

    def add_message(self, level: int = INFO, message: str | Callable[[], str] = "", data: Any = None) -> None:
        """LogDefer's name for :meth:`add` (same keywords: ``level``, ``message``, ``data``)."""
        self.add(level, message, data)

    def error(self, message: str | Callable[[], str], data: Any = None) -> None:
        self.add(ERROR, message, data)

    def warn(self, message: str | Callable[[], str], data: Any = None) -> None:
        self.add(WARN, message, data)

    warning = warn

    def info(self, message: str | Callable[[], str], data: Any = None) -> None:
        self.add(INFO, message, data)

    def debug(self, message: str | Callable[[], str], data: Any = None) -> None:
        self.add(DEBUG, message, data)

    def data(self, values: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        """LogDefer's ``log.data({...})``: each item becomes info of the usage log (see ``add_info``).

        Raises:
            ValueError: a key is reserved, as for :func:`~otel_usage.add_info`.
        """
        for key, value in dict(values or {}, **kwargs).items():
            add_info(key, value)

    def timer(self, name: str) -> timer:
        """LogDefer's ``with log.timer("name"):``, the same as :class:`timer`."""
        return timer(name)


log = _LogLines()


class UsageLogHandler(logging.Handler):
    """Bridges stdlib logging records emitted inside a unit of work into its ``logs``."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "otel_usage" or record.name.startswith("otel_usage."):
            return
        try:
            level = (
                ERROR
                if record.levelno >= logging.ERROR
                else WARN
                if record.levelno >= logging.WARNING
                else (INFO if record.levelno >= logging.INFO else DEBUG)
            )
            if level > VERBOSITY.value or _root_here() is None:
                return
            log.add(level, record.getMessage, {"logger": record.name} if record.name != "root" else None)
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "logging bridge")


_bridge_lock = threading.Lock()
_bridge: UsageLogHandler | None = None


def logging_bridge_installed() -> bool:
    """Whether the bridge is on the root logger."""
    return _bridge is not None


def install_logging_bridge(enabled: bool) -> None:
    """Attach (or detach) the bridge on the root logger, once."""
    global _bridge
    with _bridge_lock:
        root_logger = logging.getLogger()
        if enabled and _bridge is None:
            _bridge = UsageLogHandler()
            root_logger.addHandler(_bridge)
        elif not enabled and _bridge is not None:
            root_logger.removeHandler(_bridge)
            _bridge = None


# --- timers -------------------------------------------------------------------------------------


class timer(contextlib.ContextDecorator):
    """Time a block: ``with timer("db"):``; as a decorator, each call is timed separately."""

    def __init__(self, name: str) -> None:
        self.name = str(name) if name else "unknown"
        self._stack: list[list[Any] | None] = []

    def __enter__(self) -> timer:
        record = None
        try:
            root = _root_here()
            if root is None:
                _stats.count_drop("timer_outside_unit_of_work")
            else:
                record = [self.name, time.time_ns(), 0]
                if not _append(root, "timers", record):
                    record = None
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "timer")
        self._stack.append(record)
        return self

    def __exit__(self, *exc_info: object) -> None:
        record = self._stack.pop() if self._stack else None
        if record is not None:
            record[2] = time.time_ns()

    def __call__(self, func: F) -> F:  # type: ignore[override]
        name = self.name
        return per_call(func, lambda: timer(name))  # type: ignore[return-value]


# --- transactions -------------------------------------------------------------------------------


class transaction:
    """Open a unit of work explicitly: its own usage log, whatever encloses it.

    ``tx.data`` is a dict whose items become info of the log when the block ends (LogDefer's
    ``log.data(...)``). Usable with ``with`` and ``async with``.
    """

    def __init__(self, name: str, **info: Any) -> None:
        self.name = str(name) if name else "transaction"
        self.data: dict[str, Any] = dict(info)
        self._span: Any = None
        self._token: Any = None
        self._hidden: Any = None

    def __enter__(self) -> transaction:
        try:
            self._open()
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "transaction")
        return self

    def _open(self) -> None:
        if int(DEFAULT) < THRESHOLD.value:
            self._hidden = HIDDEN.set(True)
            return
        if RUNTIME.disabled:
            return
        outer = trace.get_current_span().get_span_context()
        links = [Link(outer)] if outer.is_valid else None
        # a new trace (an empty parent context), linked to the enclosing span
        span = get_tracker(TRANSACTION_TRACKER).start_span(self.name, _DEFAULT_LEVEL, context.Context(), links)
        if span is None:
            return
        entry: Any = getattr(span, ENTRY_ATTR, None)
        if is_recorded(entry):
            entry.set_call(_Spec(self.name, TRANSACTION_TRACKER), {})
        self._span = span
        self._token = context.attach(trace.set_span_in_context(span))

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._hidden is not None:
            HIDDEN.reset(self._hidden)
            self._hidden = None
            return
        span, token = self._span, self._token
        self._span = self._token = None
        if span is None:
            return
        try:
            entry: Any = getattr(span, ENTRY_ATTR, None)
            if is_recorded(entry) and self.data:
                for key, value in self.data.items():
                    if not isinstance(key, str) or not key or key in RESERVED_KEYS:
                        _stats.count_drop("transaction_bad_info_key", detail=repr(key))
                        continue
                    entry.add_info(key, _serialize.serialize_named(key, value))
            if exc is not None:
                fail_span(span, exc)
        except Exception as err:  # noqa: BLE001
            internal_error(err, "transaction end")
        finally:
            context.detach(token)
            span.end()

    async def __aenter__(self) -> transaction:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)
