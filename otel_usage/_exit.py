"""The end of the process: the exit flush, its one-line summary, and the same in ``multiprocessing`` children.

:func:`register_exit_flush` has the installed pipeline stopped at interpreter exit (``atexit``) and at the
end of a ``multiprocessing`` child (whose ``os._exit`` skips ``atexit``), within
``OTEL_USAGE_EXIT_TIMEOUT_MILLIS`` (:func:`exit_timeout_millis`); :func:`exit_summary` is the line logged
when anything was not delivered. :func:`debug_tracebacks` reads ``OTEL_USAGE_DEBUG``.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from otel_usage import _counters
from otel_usage._config import DEBUG, EXIT_TIMEOUT_MILLIS
from otel_usage._fork import at_fork

if TYPE_CHECKING:
    from otel_usage._pipeline import UsagePipeline

__all__ = [
    "DEFAULT_EXIT_TIMEOUT_MILLIS",
    "debug_tracebacks",
    "exit_summary",
    "exit_timeout_millis",
    "register_exit_flush",
]

logger = logging.getLogger("otel_usage")

#: Default of ``OTEL_USAGE_EXIT_TIMEOUT_MILLIS``.
DEFAULT_EXIT_TIMEOUT_MILLIS = EXIT_TIMEOUT_MILLIS.default

_atexit_registered = False


def _no_pipeline() -> UsagePipeline | None:
    return None


_detach: Callable[[], UsagePipeline | None] = _no_pipeline


def register_exit_flush(detach: Callable[[], UsagePipeline | None]) -> None:
    """Flush the pipeline when the process ends: ``atexit``, and in ``multiprocessing`` children too.

    ``detach`` takes the installed pipeline out (None when there is none); the first call's is the one.
    """
    global _atexit_registered, _detach
    if not _atexit_registered:
        _detach = detach
        atexit.register(_at_exit)
        at_fork(before=_prepare_multiprocessing_child)
        _atexit_registered = True


_exit_hook_pid = 0
_prepared_pid = 0


def _prepare_multiprocessing_child() -> None:
    """Before a fork: if ``multiprocessing`` is in use, have its child register the exit flush (below).

    Done at fork time, not at import: importing ``multiprocessing`` costs an application 15 ms.
    """
    global _prepared_pid
    util = sys.modules.get("multiprocessing.util")
    if util is None or _prepared_pid == os.getpid():
        return
    _prepared_pid = os.getpid()
    util.register_after_fork(_flush_at_multiprocessing_exit, _flush_at_multiprocessing_exit)


def _flush_at_multiprocessing_exit(_: object) -> None:
    """In a ``multiprocessing`` child, run the pipeline's exit flush when the child ends.

    Such a child ends with ``os._exit`` after its target returns: ``atexit`` handlers never run there, only
    ``multiprocessing.util`` finalizers (registered after the fork: the child clears the parent's), so one
    is registered, once per process, that runs the same exit flush as ``atexit`` in a normal process.
    """
    global _exit_hook_pid
    if _exit_hook_pid == os.getpid():
        return
    _exit_hook_pid = os.getpid()
    sys.modules["multiprocessing.util"].Finalize(None, _at_exit, exitpriority=100)


def exit_timeout_millis() -> int:
    """``OTEL_USAGE_EXIT_TIMEOUT_MILLIS``: the time the exit may spend delivering, shared by the sinks."""
    return EXIT_TIMEOUT_MILLIS.from_env()


def debug_tracebacks() -> bool:
    """``OTEL_USAGE_DEBUG``: log start-up and configuration errors with their traceback."""
    return DEBUG.from_env()


def _at_exit() -> None:
    """Stop the pipeline within ``OTEL_USAGE_EXIT_TIMEOUT_MILLIS``; one line if anything was not delivered."""
    try:
        pipeline = _detach()
        if pipeline is None:
            return
        timeout = exit_timeout_millis()
        unfinished = pipeline.shutdown(timeout)
        line = exit_summary(_counters.stats(), unfinished, timeout)
        if line:
            logger.warning("%s", line)
    except Exception as exc:  # never raise at the application's exit
        logger.error("otel_usage: failed to flush usage logs at exit: %s", exc, exc_info=debug_tracebacks())


def exit_summary(snapshot: dict[str, Any], unfinished: Sequence[str], timeout_millis: int) -> str:
    """The exit line: logs spooled and lost (by reason) over the process's life, sinks still busy; "" if none."""
    spooled = {k.split(":", 1)[1]: v for k, v in snapshot.items() if k.startswith("spooled:") and v}
    dropped = {k: v for k, v in (snapshot.get("dropped") or {}).items() if v}
    if not (spooled or dropped or unfinished):
        return ""
    parts = []
    if unfinished:
        parts.append(f"not done after {timeout_millis / 1000:g} s: {', '.join(unfinished)} (sink slow or unreachable)")
    if spooled:
        total = sum(spooled.values())
        each = ", ".join(f"{name} {n}" for name, n in sorted(spooled.items()))
        parts.append(f"{total} usage log(s) spooled ({each}), re-sent when the sink is back or by `otel-usage replay`")
    if dropped:
        total = sum(dropped.values())
        each = ", ".join(f"{reason} {n}" for reason, n in sorted(dropped.items()))
        parts.append(f"{total} lost ({each})")
    return "otel_usage at exit: " + "; ".join(parts)
