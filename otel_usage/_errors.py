"""The guard around everything otel_usage runs inside the application's threads.

Internal errors are logged (``logger.exception``, once per distinct message per interval) and
swallowed, so telemetry never breaks the host application. The test suite sets :data:`RAISE` so that
bugs are not hidden.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

__all__ = ["RAISE", "handle_internal_errors", "internal_error"]

logger = logging.getLogger("otel_usage")

#: Re-raise internal errors instead of logging them (the test suite turns this on).
RAISE = os.environ.get("OTEL_USAGE_RAISE_INTERNAL_ERRORS", "").strip().lower() in ("1", "true", "yes")

_INTERVAL_SECONDS = 60.0
_lock = threading.Lock()
_seen: dict[str, float] = {}


def internal_error(exc: BaseException, where: str) -> None:
    """Record an internal error caught at ``where``; re-raise it when :data:`RAISE` is set."""
    from otel_usage import _stats

    _stats.count("internal_errors")
    if RAISE:
        raise exc
    key = f"{where}:{type(exc).__name__}:{exc}"
    now = time.monotonic()
    with _lock:
        last = _seen.get(key)
        if last is not None and now - last < _INTERVAL_SECONDS:
            return
        if len(_seen) > 1000:
            _seen.clear()
        _seen[key] = now
    logger.error("otel_usage internal error in %s (the application is not affected)", where, exc_info=exc)


@contextlib.contextmanager
def handle_internal_errors(where: str) -> Iterator[None]:
    """Run a block of otel_usage's own code; an exception in it is logged and swallowed."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001
        internal_error(exc, where)
