"""Process-wide counters: what was emitted, what is buffered, and every loss by reason.

Every component that can lose a usage log (or part of one) calls :func:`count_drop` with a short reason;
the loss is counted and a rate-limited warning states it, so nothing is lost silently. A warning gives the
items lost since the previous warning about that reason and the total since start, the same number
``stats()["dropped"][reason]`` shows; drops held back by the rate limit are reported by the next warning,
or by :func:`flush_warnings` (the workers call it on every pass). Components with a current size (pending
traces, queues) register a gauge. :func:`stats` returns a snapshot of both.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from otel_usage._warnings import RateLimitedLog

__all__ = ["count", "count_drop", "counter", "flush_warnings", "register_gauge", "reset", "stats"]

logger = logging.getLogger("otel_usage")

#: Seconds between two warnings about the same drop reason.
WARNING_INTERVAL_SECONDS = 10.0

_lock = threading.Lock()
_counters: dict[str, int] = {}
_drops: dict[str, int] = {}
_warnings = RateLimitedLog(lambda: WARNING_INTERVAL_SECONDS)  # per reason
_unwarned: dict[str, int] = {}
_details: dict[str, str] = {}
_gauges: list[tuple[str, Callable[[], Mapping[str, int]]]] = []


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``name`` (for example ``logs_emitted``)."""
    with _lock:
        _counters[name] = _counters.get(name, 0) + n


def counter(name: str) -> int:
    """The current value of one counter (0 when never counted)."""
    return _counters.get(name, 0)


def count_drop(reason: str, n: int = 1, detail: str = "") -> None:
    """Count ``n`` items lost for ``reason`` and warn, at most once per interval and reason."""
    if n <= 0:
        return
    with _lock:
        _drops[reason] = _drops.get(reason, 0) + n
        if not _warnings.allow(reason):
            _unwarned[reason] = _unwarned.get(reason, 0) + n
            if detail:
                _details[reason] = detail
            return
        new = n + _unwarned.pop(reason, 0)
        total = _drops[reason]
    _warn_drop(reason, new, total, detail)


def _warn_drop(reason: str, new: int, total: int, detail: str) -> None:
    logger.warning(
        "otel_usage lost %d usage log item(s) for %s%s; %d in all since start (see otel_usage.stats())",
        new,
        reason,
        f" ({detail})" if detail else "",
        total,
    )


def flush_warnings() -> None:
    """Warn about drops the rate limit held back, for reasons whose interval has passed (cheap when none)."""
    if not _unwarned:
        return
    due: list[tuple[str, int, int, str]] = []
    with _lock:
        for reason in list(_unwarned):
            if _warnings.allow(reason):
                due.append((reason, _unwarned.pop(reason), _drops.get(reason, 0), _details.pop(reason, "")))
    for reason, new, total, detail in due:
        _warn_drop(reason, new, total, detail)


def register_gauge(prefix: str, owner: object, read: Callable[[Any], Mapping[str, int]]) -> None:
    """Report ``read(owner)`` under ``prefix`` in :func:`stats` for as long as ``owner`` lives."""
    ref = weakref.ref(owner)

    def gauge() -> Mapping[str, int]:
        obj = ref()
        return {} if obj is None else read(obj)

    with _lock:
        _gauges.append((prefix, gauge))


def stats() -> dict[str, Any]:
    """A snapshot: counters, current gauges (summed over live components) and ``dropped`` by reason."""
    with _lock:
        result: dict[str, Any] = dict(_counters)
        drops = dict(_drops)
        gauges = list(_gauges)
    for prefix, gauge in gauges:
        for key, value in gauge().items():
            name = f"{prefix}_{key}" if prefix else key
            result[name] = result.get(name, 0) + value
    result["dropped"] = drops
    result["dropped_total"] = sum(drops.values())
    return result


def reset() -> None:
    """Zero every counter (gauges stay: they report live sizes). Meant for tests and benchmarks."""
    with _lock:
        _counters.clear()
        _drops.clear()
        _warnings.clear()
        _unwarned.clear()
        _details.clear()
