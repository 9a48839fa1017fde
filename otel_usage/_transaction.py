"""Explicit units of work: :class:`transaction`.

``with transaction("nightly-import") as tx:`` (or ``async with``) opens a unit of work explicitly: its own
usage log, in a new trace linked to the enclosing span if any; ``tx.data[...]`` become info of the log
when the block ends. What goes inside a usage log besides the calls is elsewhere: named events in
:mod:`otel_usage._events`, LogDefer-style log lines in :mod:`otel_usage._log_lines`, timers in
:mod:`otel_usage._timers`.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import Link

from otel_usage import _counters, _serialize
from otel_usage._context import is_recorded
from otel_usage._errors import internal_error
from otel_usage._levels import DEFAULT, THRESHOLD
from otel_usage._log_items import AT_DEFAULT_LEVEL, RecordSpec
from otel_usage._probe_calls import fail_span
from otel_usage._runtime import ENTRY_ATTR, HIDDEN, RUNTIME
from otel_usage._schema import RESERVED_KEYS
from otel_usage._tracker import get_tracker

__all__ = ["TRANSACTION_TRACKER", "transaction"]

TRANSACTION_TRACKER = "otel_usage.transaction"


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
        span = get_tracker(TRANSACTION_TRACKER).start_span(self.name, AT_DEFAULT_LEVEL, context.Context(), links)
        if span is None:
            return
        entry: Any = getattr(span, ENTRY_ATTR, None)
        if is_recorded(entry):
            entry.set_call(RecordSpec(self.name, TRANSACTION_TRACKER), {})
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
                        _counters.count_drop("transaction_bad_info_key", detail=repr(key))
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
