"""Usage processors: an ordered chain of callables that see each assembled usage log.

A processor receives the log (a dict of JSON-native values) and returns it, possibly changed, or a
new dict; returning None keeps the log as the processor changed it in place. Raising
:class:`DropUsageLog` drops the log (counted as ``dropped_by_processor``). A processor that fails any
other way is logged and skipped: the log goes on as it was before that processor, never lost.

Ready-made: :func:`allow_functions` and :func:`block_functions` keep or remove call records by
function-name patterns (``fnmatch`` globs such as ``"shop.cart.*"``); a log left with no records is
dropped.

:func:`allow_events` and :func:`block_events` keep or remove named events by regular expressions on
their names, **anchored** (the whole name must match: ``"video[.].*"``, not ``"video"``); a log that
was only an event emitted outside any unit of work is dropped when its event is removed.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from otel_usage import _counters
from otel_usage._warnings import RateLimitedLog

__all__ = [
    "DropUsageLog",
    "UsageProcessor",
    "allow_events",
    "allow_functions",
    "block_events",
    "block_functions",
    "run_chain",
]

logger = logging.getLogger("otel_usage")

UsageProcessor = Callable[[dict[str, Any]], "dict[str, Any] | None"]


class DropUsageLog(Exception):
    """Raise from a usage processor to drop the log."""


def _copy(value: Any) -> Any:
    """Copy of a JSON-native value (faster than ``copy.deepcopy`` and enough for usage logs)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


_failures = RateLimitedLog(60.0)  # per processor


def _report_failure(processor: Any, exc: Exception) -> None:
    _counters.count("processor_errors")
    name = getattr(processor, "__qualname__", None) or repr(processor)
    if not _failures.allow(name):
        return
    logger.error("otel_usage: usage processor %s failed; skipped it for this log", name, exc_info=exc)


def run_chain(log: dict[str, Any], processors: Iterable[UsageProcessor]) -> dict[str, Any] | None:
    """Pass ``log`` through ``processors``; None when one of them dropped it."""
    for processor in processors:
        candidate = _copy(log)
        try:
            result = processor(candidate)
        except DropUsageLog:
            _counters.count("dropped_by_processor")
            return None
        except Exception as exc:  # noqa: BLE001
            _report_failure(processor, exc)
            continue
        if result is None:
            log = candidate
        elif isinstance(result, dict):
            log = result
        else:
            _report_failure(processor, TypeError(f"usage processor returned {type(result).__name__}, not a dict"))
    return log


def _matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    compiled = [fnmatch.translate(p) for p in patterns]
    if not compiled:
        raise ValueError("give at least one function-name pattern")
    regex = re.compile("|".join(f"(?:{c})" for c in compiled))
    return lambda name: regex.match(name) is not None


def _filter(keep: Callable[[str], bool], label: str) -> UsageProcessor:
    def processor(log: dict[str, Any]) -> dict[str, Any]:
        data = log.get("data")
        if isinstance(data, list):
            kept = [r for r in data if isinstance(r, dict) and keep(str(r.get("function", "")))]
            if not kept:
                raise DropUsageLog
            log["data"] = kept
        return log

    processor.__qualname__ = label
    return processor


def allow_functions(*patterns: str) -> UsageProcessor:
    """Keep only the call records whose function matches one of ``patterns``."""
    match = _matcher(patterns)
    return _filter(match, f"allow_functions{patterns!r}")


def block_functions(*patterns: str) -> UsageProcessor:
    """Remove the call records whose function matches one of ``patterns``."""
    match = _matcher(patterns)
    return _filter(lambda name: not match(name), f"block_functions{patterns!r}")


def _event_filter(keep: Callable[[str], bool], label: str) -> UsageProcessor:
    def processor(log: dict[str, Any]) -> dict[str, Any]:
        events = log.get("events")
        if isinstance(events, list):
            kept = [e for e in events if isinstance(e, dict) and keep(str(e.get("name", "")))]
            if kept:
                log["events"] = kept
            else:
                del log["events"]
                data = log.get("data") or [{}]
                if len(events) and isinstance(data[0], dict) and data[0].get("tracker") == "otel_usage.event":
                    raise DropUsageLog
        return log

    processor.__qualname__ = label
    return processor


def _regex(patterns: Iterable[str]) -> re.Pattern[str]:
    items = list(patterns)
    if not items:
        raise ValueError("give at least one event-name pattern")
    return re.compile("|".join(f"(?:{p})" for p in items))


def allow_events(*patterns: str) -> UsageProcessor:
    """Keep only the events whose whole name matches one of the regular expressions."""
    regex = _regex(patterns)
    return _event_filter(lambda name: regex.fullmatch(name) is not None, f"allow_events{patterns!r}")


def block_events(*patterns: str) -> UsageProcessor:
    """Remove the events whose whole name matches one of the regular expressions."""
    regex = _regex(patterns)
    return _event_filter(lambda name: regex.fullmatch(name) is None, f"block_events{patterns!r}")
