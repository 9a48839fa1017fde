"""Timers inside a usage log: :class:`timer`.

``with timer("name"):`` (or as a decorator) appends ``[name, start, end]`` to the log's ``timers``;
timers nest, overlap and repeat freely. One still open when the log is assembled is closed at the log's
end and flagged with a fourth element ``{"unfinished": true}``. Outside a recorded unit of work a timer
is dropped (counted as ``timer_outside_unit_of_work``), never raised.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from otel_usage import _counters
from otel_usage._context import per_call
from otel_usage._errors import internal_error
from otel_usage._log_items import append_item, root_here

__all__ = ["timer"]

F = TypeVar("F", bound=Callable[..., Any])


class timer(contextlib.ContextDecorator):
    """Time a block: ``with timer("db"):``; as a decorator, each call is timed separately."""

    def __init__(self, name: str) -> None:
        self.name = str(name) if name else "unknown"
        self._stack: list[list[Any] | None] = []

    def __enter__(self) -> timer:
        record = None
        try:
            root = root_here()
            if root is None:
                _counters.count_drop("timer_outside_unit_of_work")
            else:
                record = [self.name, time.time_ns(), 0]
                if not append_item(root, "timers", record):
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
