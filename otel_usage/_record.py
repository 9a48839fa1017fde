"""The record a usage log keeps of one span: :class:`Entry`, and :class:`Root` for a local root.

A span the usage span processor buffers carries its record as the attribute named ``ENTRY_ATTR``; a
span it does not record carries a :class:`Skip` instead (and so do its descendants). Probes, usage
contexts, transactions and the Flask hooks fill the record through its methods while the span runs;
the processor owns the state of a root; assembly reads both once the root is emitted.

A root's lifecycle (:class:`State`)::

    OPEN ──root ends, children still running──▶ WAITING ──last child ends, or grace over──▶ QUEUED
      │  └──root ends, no child running──────────────────────────────────────────────────▶ QUEUED
      │  └──max age reached, or shutdown: taken as it stands─────────────────────────────▶ QUEUED
      │                                                                                     │
      └──discard() (also from WAITING)──▶ DISCARDED          QUEUED ──assembled, emitted──▶ EMITTED

A span starting or ending under an EMITTED root is late (counted, not recorded); under a DISCARDED
root it is not recorded at all.
"""

from __future__ import annotations

import enum
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otel_usage._processor import UsageSpanProcessor

__all__ = [
    "DISCARDED",
    "EMITTED",
    "Entry",
    "OPEN",
    "QUEUED",
    "Root",
    "SKIP",
    "Skip",
    "State",
    "WAITING",
]


class State(enum.IntEnum):
    """Where a root is in its lifecycle (see the module's docstring)."""

    OPEN = 0
    WAITING = 1
    QUEUED = 2
    EMITTED = 3
    DISCARDED = 4


# plain ints for the hot path (an enum member lookup costs more than a global)
OPEN, WAITING, QUEUED, EMITTED, DISCARDED = (int(state) for state in State)


class Skip:
    """Marks a span (and so its descendants) that the usage span processor does not record."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<otel_usage skip: {self.reason}>"


#: The mark of a span started while a filtered probe runs (its hidden subtree).
SKIP = Skip("hidden")


class Entry:
    """What a usage log keeps of one span: compact, filled once."""

    __slots__ = (
        "attributes",
        "class_name",
        "data",
        "depth",
        "end_ns",
        "error",
        "info",
        "name",
        "owner",
        "params",
        "parent",
        "probe",
        "ret",
        "root",
        "scope",
        "span_id",
        "start_ns",
        "status_error",
    )
    span_id: int
    parent: Entry | None
    root: Root
    depth: int
    name: str
    start_ns: int
    end_ns: int
    probe: Any
    params: dict[str, Any] | None
    data: dict[str, Any] | None
    info: dict[str, Any] | None
    attributes: Any
    scope: str | None
    error: dict[str, Any] | None
    status_error: bool
    class_name: str | None
    ret: Any
    owner: UsageSpanProcessor | None

    def __init__(self, span_id: int, parent: Entry | None, root: Root | None, depth: int, name: str) -> None:
        self.span_id = span_id
        self.parent = parent
        self.root = root if root is not None else self  # type: ignore[assignment]
        self.depth = depth
        self.name = name
        self.start_ns = 0
        self.end_ns = 0
        self.probe = None
        self.params = None
        self.data = None
        self.info = None
        self.attributes = None
        self.scope = None
        self.error = None
        self.status_error = False
        self.class_name = None
        self.ret = None
        self.owner = None

    def set_call(self, probe: Any, params: dict[str, Any] | None, class_name: str | None = None) -> None:
        """Make this the record of a call of ``probe`` (a probe's spec: function, tracker, level)."""
        self.probe = probe
        self.params = params
        if class_name is not None:
            self.class_name = class_name

    def add_info(self, key: str, value: Any) -> None:
        """Info of the usage log, set while this span runs (a later span's value wins)."""
        info = self.info
        if info is None:
            self.info = {key: value}
        else:
            info[key] = value

    def update_info(self, items: dict[str, Any]) -> None:
        """Several info items at once (see :meth:`add_info`)."""
        if self.info is None:
            self.info = dict(items)
        else:
            self.info.update(items)

    def add_data(self, key: str, value: Any) -> None:
        """An extra field of this call's record."""
        if self.data is None:
            self.data = {key: value}
        else:
            self.data[key] = value

    def fail(self, kind: str, message: str) -> None:
        """The exception that left this call."""
        self.error = {"type": kind, "message": message}

    def discard(self) -> bool:
        """Drop the usage log this record belongs to, if it is still open (see ``UsageSpanProcessor.discard``)."""
        owner = self.owner
        return owner is not None and owner.discard(self)


class Root(Entry):
    """The local root of a usage log, with the bookkeeping of its whole local trace."""

    __slots__ = (
        "created",
        "ctx_info",
        "ended_at",
        "entries",
        "events",
        "inbound_info",
        "lines",
        "parent_span_id",
        "pending",
        "service",
        "state",
        "timers",
        "trace_id",
        "truncated",
    )
    entries: list[Entry]
    pending: int
    state: int
    trace_id: int
    parent_span_id: int | None
    inbound_info: dict[str, Any] | None
    ctx_info: dict[str, Any] | None
    service: str | None
    truncated: int
    created: float
    ended_at: float
    events: list[tuple[int, str, Any, dict[str, Any]]] | None
    lines: list[tuple[Any, ...]] | None
    timers: list[list[Any]] | None

    def __init__(self, span_id: int, name: str) -> None:
        Entry.__init__(self, span_id, None, None, 0, name)
        self.entries = [self]
        self.pending = 0
        self.state = OPEN
        self.trace_id = 0
        self.parent_span_id = None
        self.inbound_info = None
        self.ctx_info = None
        self.service = None
        self.truncated = 0
        self.created = time.monotonic()
        self.ended_at = 0.0
        self.events = None
        self.lines = None
        self.timers = None

    @property
    def open(self) -> bool:
        """True while spans may still join this root's log (OPEN or WAITING)."""
        return self.state == OPEN or self.state == WAITING
