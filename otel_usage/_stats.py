"""Process-wide counters: what was emitted, what is buffered, and every loss by reason.

Every component that can lose a usage log (or part of one) calls :func:`count_drop` with a short reason;
the loss is counted and a rate-limited warning names it, so nothing is lost silently. Components with a
current size (pending traces, queues) register a gauge. :func:`stats` returns a snapshot of both.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["count", "count_drop", "register_gauge", "reset", "stats"]

logger = logging.getLogger("otel_usage")

#: Seconds between two warnings about the same drop reason.
WARNING_INTERVAL_SECONDS = 10.0

_lock = threading.Lock()
_counters: dict[str, int] = {}
_drops: dict[str, int] = {}
_last_warning: dict[str, float] = {}
_unwarned: dict[str, int] = {}
_gauges: list[tuple[str, Callable[[], Mapping[str, int]]]] = []


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``name`` (for example ``logs_emitted``)."""
    with _lock:
        _counters[name] = _counters.get(name, 0) + n


def count_drop(reason: str, n: int = 1, detail: str = "") -> None:
    """Count ``n`` items lost for ``reason`` and warn, at most once per interval and reason."""
    if n <= 0:
        return
    now = time.monotonic()
    with _lock:
        _drops[reason] = _drops.get(reason, 0) + n
        last = _last_warning.get(reason)
        if last is not None and now - last < WARNING_INTERVAL_SECONDS:
            _unwarned[reason] = _unwarned.get(reason, 0) + n
            return
        _last_warning[reason] = now
        total = n + _unwarned.pop(reason, 0)
    logger.warning(
        "otel_usage dropped %d item(s): %s%s (see otel_usage.stats())", total, reason, f" ({detail})" if detail else ""
    )


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
        _last_warning.clear()
        _unwarned.clear()
