"""What events, log lines and timers share: the usage log they go into and its bounded lists.

:func:`root_here` is the usage log being recorded here (None outside a recorded unit of work, or while a
probe below the threshold runs); :func:`append_item` appends to one of its lists. Each log keeps at most
:data:`MAX_ITEMS_PER_LOG` events, log lines and timers (each kind; more are counted as
``events_per_log`` ...), and what arrives after its log has ended (a task outliving its unit of work) is
counted as ``late_event`` / ``late_log_line`` / ``late_timer``. :class:`RecordSpec` stands for the
decorated function of a record that none produced (a standalone event, a transaction).
"""

from __future__ import annotations

import threading
from typing import Any

from otel_usage import _counters
from otel_usage._context import current_entry, is_recorded
from otel_usage._record import DISCARDED, OPEN, WAITING
from otel_usage._runtime import HIDDEN, LEVEL_ATTR

__all__ = ["AT_DEFAULT_LEVEL", "MAX_ITEMS_PER_LOG", "RecordSpec", "append_item", "root_here"]

#: The start attributes of a span at level DEFAULT (standalone events, transactions).
AT_DEFAULT_LEVEL = {LEVEL_ATTR: "DEFAULT"}

#: Most events, log lines or timers kept in one usage log (each kind); more are counted, not kept.
MAX_ITEMS_PER_LOG = 1000

_lists_lock = threading.Lock()
_KINDS = {"events": "event", "lines": "log_line", "timers": "timer"}


def append_item(root: Any, field: str, item: Any) -> bool:
    """Append to one of the root's lists, created on first use (most logs have none); never unbounded.

    False (counted) when the log has ended and is being or has been emitted (``late_<kind>``), or the
    list is full (``<kind>s_per_log``); False, not counted, when the log was discarded on purpose.
    """
    state = root.state
    if state != OPEN and state != WAITING:
        if state != DISCARDED:
            _counters.count_drop(f"late_{_KINDS[field]}")
        return False
    items = getattr(root, field)
    if items is None:
        with _lists_lock:
            items = getattr(root, field)
            if items is None:
                items = []
                setattr(root, field, items)
    if len(items) >= MAX_ITEMS_PER_LOG:
        _counters.count_drop(f"{_KINDS[field]}s_per_log")
        return False
    items.append(item)
    return True


def root_here() -> Any:
    """The usage log recorded here, or None (outside a recorded unit of work, or hidden)."""
    if HIDDEN.get():
        return None
    entry = current_entry()
    return entry.root if is_recorded(entry) else None


class RecordSpec:
    """What the assembler needs of a record that no decorated function produced."""

    __slots__ = ("function", "level_name", "record_return", "tracker")

    def __init__(self, function: str, tracker: str) -> None:
        self.function = function
        self.tracker = tracker
        self.level_name = "DEFAULT"
        self.record_return = False
