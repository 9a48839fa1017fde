"""Rate limits for otel_usage's own log messages: :class:`RateLimitedLog`.

Every "warn at most once per interval" (or "once per process") of the package is one of these: per key,
thread-safe, with bounded memory, and with a fresh lock in a forked child.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable

from otel_usage._fork import after_fork_in_child

__all__ = ["RateLimitedLog"]

_live: weakref.WeakSet[RateLimitedLog] = weakref.WeakSet()


class RateLimitedLog:
    """Says whether a message about ``key`` may be logged now: at most once per ``interval`` seconds per key.

    Args:
        interval: seconds between two messages about the same key, or a function returning them (read on
            every call, so that a module setting can change it); None: once per key for the whole process.
        max_keys: most keys remembered. With an interval, the memory is cleared when it is full (a key may
            then be reported again early); once per process, a new key beyond it is never reported.
    """

    def __init__(self, interval: float | Callable[[], float] | None, max_keys: int = 1000) -> None:
        self._interval = interval
        self._max_keys = max_keys
        self._last: dict[Hashable, float] = {}
        self._lock = threading.Lock()
        _live.add(self)

    def allow(self, key: Hashable = None) -> bool:
        """True (and the key is marked as reported now) when a message about ``key`` is due."""
        interval = self._interval
        if interval is None:
            with self._lock:
                if key in self._last or len(self._last) > self._max_keys:
                    return False
                self._last[key] = 0.0
                return True
        seconds = interval() if callable(interval) else interval
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < seconds:
                return False
            if last is None and len(self._last) > self._max_keys:
                self._last.clear()
            self._last[key] = now
            return True

    def clear(self) -> None:
        """Forget every key: the next message about each is due."""
        with self._lock:
            self._last.clear()

    def _renew_lock(self) -> None:
        self._lock = threading.Lock()


def _renew_locks() -> None:
    """In a forked child: another thread of the parent may have held a lock."""
    for log in list(_live):
        log._renew_lock()


after_fork_in_child(_renew_locks)
