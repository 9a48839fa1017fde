"""LogDefer-style log lines inside a usage log: :data:`log`, :func:`set_verbosity`, and the bridge of
stdlib ``logging`` (:class:`UsageLogHandler`, :func:`install_logging_bridge`).

``log.error/warn/info/debug(message, data=None)`` and ``log.add(level, message, data=None)`` with
LogDefer's numbers (error 10, warn 20, info 30, debug 40; any integer for custom levels) append
``[offset_seconds, level, message, data?]`` to the log's ``logs`` when ``level <= verbosity``
(``OTEL_USAGE_LOG_VERBOSITY``, default 30). A callable message is called only when it passes. LogDefer's
``add_message``, ``data`` and ``timer`` work on it too. :class:`UsageLogHandler` bridges stdlib
``logging`` records emitted inside a unit of work into ``logs`` (``OTEL_USAGE_LOG_BRIDGE``, off by
default). Outside a recorded unit of work a log line is dropped (counted), never raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from otel_usage import _counters, _serialize
from otel_usage._context import add_info
from otel_usage._errors import internal_error
from otel_usage._log_items import append_item, root_here
from otel_usage._timers import timer

__all__ = [
    "DEBUG",
    "ERROR",
    "INFO",
    "UsageLogHandler",
    "VERBOSITY",
    "WARN",
    "install_logging_bridge",
    "log",
    "logging_bridge_installed",
    "set_verbosity",
]

ERROR, WARN, INFO, DEBUG = 10, 20, 30, 40


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


class _LogLines:
    """LogDefer's deferred log lines, recorded into the current usage log.

    Also LogDefer's other calls, so that its documented examples run unchanged inside a unit of
    work: ``add_message(level, message, data)``, ``data(mapping)`` (info of the log, as
    :func:`~otel_usage.add_info`) and ``timer(name)`` (a :class:`~otel_usage.timer`).
    """

    def add(self, level: int, message: str | Callable[[], str], data: Any = None) -> None:
        """Record ``[offset, level, message, data?]`` when ``level <= verbosity``; never raises."""
        try:
            if level.__class__ is not int:
                try:
                    level = int(level)
                except (TypeError, ValueError):
                    _counters.count_drop("log_line_bad_level", detail=type(level).__name__)
                    return
            if level > VERBOSITY.value:
                return
            root = root_here()
            if root is None:
                _counters.count_drop("log_line_outside_unit_of_work")
                return
            text = message() if callable(message) else message
            line: tuple[Any, ...] = (time.time_ns(), level, str(text))
            if data is not None:
                line = (*line, _serialize.serialize(data))
            append_item(root, "lines", line)
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
        """LogDefer's ``with log.timer("name"):``, the same as :class:`~otel_usage.timer`."""
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
            if level > VERBOSITY.value or root_here() is None:
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
