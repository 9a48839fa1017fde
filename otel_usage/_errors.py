"""The guard around everything otel_usage runs inside the application's threads.

Internal errors are logged (``logger.exception``, once per distinct message per interval) and
swallowed, so telemetry never breaks the host application. The test suite sets :data:`RAISE` so that
bugs are not hidden.

A boundary that must never raise is a method decorated with :func:`never_raises` (its whole body
guarded) or a block under :func:`handle_internal_errors`. The per-call hot path keeps a hand-written
``try``/``except Exception`` calling :func:`internal_error` instead, which costs nothing until an error:
the probe wrappers (``_probe``), ``UsageSpanProcessor.on_start``/``on_end``/``_open``/``_close``, the
usage span (``_usage_span``), the per-call context, transaction and serialization helpers, and the Flask
``after_request`` hook that runs on every request.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from otel_usage._config import RAISE_INTERNAL_ERRORS
from otel_usage._warnings import RateLimitedLog

__all__ = ["RAISE", "handle_internal_errors", "internal_error", "never_raises", "raise_internal_errors"]

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("otel_usage")

#: Re-raise internal errors instead of logging them (the test suite turns this on); so does
#: :envvar:`OTEL_USAGE_RAISE_INTERNAL_ERRORS`, read when an internal error happens.
RAISE = False

_logged = RateLimitedLog(60.0)  # per distinct message


def raise_internal_errors() -> bool:
    """True when internal errors are raised: :data:`RAISE`, or :envvar:`OTEL_USAGE_RAISE_INTERNAL_ERRORS`."""
    return RAISE or RAISE_INTERNAL_ERRORS.from_env()


def internal_error(exc: BaseException, where: str) -> None:
    """Record an internal error caught at ``where``; re-raise it when :data:`RAISE` is set."""
    from otel_usage import _counters

    _counters.count("internal_errors")
    if raise_internal_errors():
        raise exc
    if not _logged.allow(f"{where}:{type(exc).__name__}:{exc}"):
        return
    logger.error("otel_usage internal error in %s (the application is not affected)", where, exc_info=exc)


@contextlib.contextmanager
def handle_internal_errors(where: str) -> Iterator[None]:
    """Run a block of otel_usage's own code; an exception in it is logged and swallowed."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001
        internal_error(exc, where)


def never_raises(where: str, default: Any = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a boundary function: an exception in it is an internal error, and it returns ``default``."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                internal_error(exc, where)
                return default  # type: ignore[no-any-return]

        return guarded

    return decorate
