"""The span processor that turns each local trace into one usage log.

``on_start``/``on_end`` run on the application's threads: they do O(1) work under one short lock, never
block on I/O and never raise. Each span is kept as a small :class:`Entry` (a slotted object, no
``ReadableSpan``), grouped by its **local root** (a span whose parent is absent, remote, or not
buffered by this processor). When the local root has ended and every child it started has ended, the
root is queued; a worker thread (:mod:`otel_usage._assembly_worker`, the other half of the class)
assembles the log (:mod:`otel_usage._assembly`) and emits it.

Limits (see :class:`~otel_usage._config.CoreSettings`), each loss counted in ``otel_usage.stats()``:

- ``max_pending_logs``: units of work in progress (open, or ended and waiting for children); a new
  local root beyond it is not recorded (``pending_logs_full``), nor are its descendants.
- ``max_queued_spans``: spans of finished units of work waiting for the assembler. When a quarter of it
  is reached, a thread that ends a local root waits until the assembler has brought the backlog down to
  an eighth, for at most 50 ms per unit of work (it waits for our CPU-bound worker, never for I/O the
  application did not ask for), so a burst is slowed to the pipeline's pace instead of losing logs, and
  the waiting threads leave the interpreter to the assembler (``stats()["backpressure_pauses"]`` counts
  these waits); at the limit a new local root is not recorded (``assembly_backlog``).
- ``max_records_per_log``: further spans of that root are left out (``records_per_log``) and the log
  says how many in ``truncated``.
- ``grace_millis``: children that outlive their root (asyncio tasks, pool workers) are waited for this
  long after the root ends; then the log is assembled without them, their records marked
  ``"unfinished": true``.
- ``max_log_age_millis``: a root still open after this long is emitted as it stands with status
  ``"unfinished"`` (``log_age``).
- A span that starts or ends after its log was emitted is counted as ``late_span`` and not recorded:
  the log is immutable once emitted (its trace still reaches trace backends).

:func:`discard_current` (or :meth:`UsageSpanProcessor.discard`) drops the usage log of an open unit of
work on purpose (an integration that decides a request is not tracked): nothing of its local trace is
emitted, spans started under it later are not recorded, and this is counted as ``logs_discarded``, not
as a loss. Its spans still reach trace backends.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from otel_usage import _counters
from otel_usage._assembly_worker import ON_WORKER, AssemblyWorker
from otel_usage._config import DURABILITY, CoreSettings
from otel_usage._errors import internal_error, never_raises
from otel_usage._fork import after_fork_in_child
from otel_usage._info_codec import decode_info_value
from otel_usage._record import DISCARDED, EMITTED, OPEN, QUEUED, SKIP, WAITING, Entry, Root, Skip
from otel_usage._runtime import ENTRY_ATTR, HIDDEN, INFO_KEY

__all__ = ["UsageSpanProcessor", "discard_current"]

logger = logging.getLogger(__name__)

_ERROR = StatusCode.ERROR
WAKE_AT = 512
#: Longest wait of a thread ending a local root while the assembly backlog is over a quarter of its limit.
BACKPRESSURE_PAUSE_SECONDS = 0.05


_SKIP_DROPPED_ROOT = Skip("pending_logs_full")
_SKIP_BACKLOG = Skip("assembly_backlog")
_SKIP_TRUNCATED = Skip("records_per_log")
_SKIP_LATE = Skip("late_span")
_SKIP_DISCARDED = Skip("discarded")

Emit = Callable[[Root], None]


class UsageSpanProcessor(AssemblyWorker, SpanProcessor):
    """Buffers spans per local root and emits one usage log per local trace, off the caller's thread.

    Args:
        emit: called on the worker thread with each finished :class:`Root` (assembles and sends it); when
            it has an ``emit_many`` method, that is called instead with up to ``EMIT_CHUNK`` roots at a time.
        settings: limits; defaults from the environment.
    """

    def __init__(self, emit: Emit, settings: CoreSettings | None = None) -> None:
        self._emit = emit
        emit_many = getattr(emit, "emit_many", None)
        self._emit_many: Callable[[list[Root]], None] = emit_many if callable(emit_many) else self._emit_each
        self._settings = settings if settings is not None else CoreSettings.from_env()
        self._lock = threading.Lock()
        self._live: dict[int, Entry] = {}
        self._unfinished: dict[int, bool] = {}  # ids of spans emitted unfinished (their end is late), bounded
        self._roots: dict[int, Root] = {}
        self._waiting: dict[int, Root] = {}
        self._ready: collections.deque[Root] = collections.deque()
        self._backlog = 0  # spans of roots queued or being emitted
        self._space = threading.Condition(threading.Lock())  # back-pressure: threads waiting for the assembler
        self._paused = 0
        self._durable = DURABILITY.from_env() == "disk"
        self._wake = threading.Event()
        self._idle = threading.Condition(threading.Lock())
        self._busy = 0
        self._worker: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopped = False
        self._last_age_scan = time.monotonic()
        self._resource: object = None
        self._service: str | None = None
        _counters.register_gauge("", self, UsageSpanProcessor._gauges)
        after_fork_in_child(self._reset_after_fork)

    # --- settings --------------------------------------------------------------------------

    @property
    def settings(self) -> CoreSettings:
        return self._settings

    def update_settings(self, settings: CoreSettings) -> None:
        """Apply new limits; buffered logs keep what they have."""
        self._settings = settings

    def _gauges(self) -> dict[str, int]:
        return {
            "spans_buffered": len(self._live),
            "logs_pending": len(self._roots) + len(self._ready),
            "spans_queued": self._backlog,
        }

    # --- hot path -------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        try:
            self._on_start(span, parent_context)
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "UsageSpanProcessor.on_start")

    def _on_start(self, span: Span, parent_context: context.Context | None) -> None:
        if self._stopped:
            return
        if HIDDEN.get():
            setattr(span, ENTRY_ATTR, SKIP)
            return
        span_context = span.get_span_context()
        self._open(
            span,
            span_context.span_id,
            span_context.trace_id,
            span.name,
            span.start_time or 0,
            trace.get_current_span(parent_context),
            parent_context,
        )

    def start_usage_span(
        self,
        span: Any,
        span_id: int,
        trace_id: int,
        name: str,
        start_ns: int,
        parent_span: trace.Span,
        parent_context: context.Context,
    ) -> None:
        """``on_start`` for a span that only this processor sees (:class:`~otel_usage._usage_span.UsageSpan`)."""
        try:
            if not self._stopped:
                self._open(span, span_id, trace_id, name, start_ns, parent_span, parent_context)
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "UsageSpanProcessor.on_start")

    def _open(
        self,
        span: Any,
        span_id: int,
        trace_id: int,
        name: str,
        start_ns: int,
        parent_span: trace.Span,
        parent_context: context.Context | None,
    ) -> None:
        """Buffer the record of a starting span (or mark it skipped) and hang it on the span."""
        parent: Any = getattr(parent_span, ENTRY_ATTR, None)
        if parent is not None and parent.__class__ is Skip:
            setattr(span, ENTRY_ATTR, parent)
            return
        if parent is None or parent.owner is not self:
            self._start_root(span, span_id, trace_id, name, start_ns, parent_span, parent_context)
            return
        root: Root = parent.root
        entry = Entry(span_id, parent, root, parent.depth + 1, name)
        entry.owner = self
        entry.start_ns = start_ns
        with self._lock:
            if root.state == EMITTED:
                skip = _SKIP_LATE
            elif root.state == DISCARDED:
                setattr(span, ENTRY_ATTR, _SKIP_DISCARDED)
                return
            elif len(root.entries) >= self._settings.max_records_per_log:
                root.truncated += 1
                skip = _SKIP_TRUNCATED
            else:
                root.pending += 1
                root.entries.append(entry)
                self._live[span_id] = entry
                setattr(span, ENTRY_ATTR, entry)
                return
        setattr(span, ENTRY_ATTR, skip)
        _counters.count_drop(skip.reason)

    def _start_root(
        self,
        span: Any,
        span_id: int,
        trace_id: int,
        name: str,
        start_ns: int,
        parent_span: trace.Span,
        parent_context: context.Context | None,
    ) -> None:
        root = Root(span_id, name)
        root.owner = self
        root.trace_id = trace_id
        root.start_ns = start_ns
        parent_sc = parent_span.get_span_context()
        if parent_sc.is_valid:
            root.parent_span_id = parent_sc.span_id
        ctx_info = (parent_context if parent_context is not None else context.get_current()).get(INFO_KEY)
        if ctx_info:
            root.ctx_info = ctx_info  # type: ignore[assignment]
        allow = self._settings.baggage_allow
        if allow:
            inbound = baggage.get_all(parent_context)
            if inbound:
                kept = {key: decode_info_value(str(inbound[key])) for key in allow if key in inbound}
                root.inbound_info = kept or None
        settings = self._settings
        with self._lock:
            if len(self._roots) >= settings.max_pending_logs:
                skip: Skip | None = _SKIP_DROPPED_ROOT
            elif self._backlog >= settings.max_queued_spans:
                skip = _SKIP_BACKLOG
            else:
                skip = None
                self._roots[span_id] = root
                self._live[span_id] = root
        if skip is not None:
            setattr(span, ENTRY_ATTR, skip)
            _counters.count_drop(skip.reason)
            return
        setattr(span, ENTRY_ATTR, root)
        if self._worker is None:
            self._ensure_worker()

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._on_end(span)
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "UsageSpanProcessor.on_end")

    def _on_end(self, span: ReadableSpan) -> None:
        span_context = span.context
        if span_context is None:
            return
        entry = self._live.pop(span_context.span_id, None)
        if entry is None:
            self._late(span_context.span_id)
            return
        entry.end_ns = span.end_time or 0
        if span.status.status_code is _ERROR:
            entry.status_error = True
            if entry.error is None:
                entry.error = _error_from_span(span)
        if entry.probe is None:
            entry.name = span.name
            attributes = span.attributes
            if attributes:
                entry.attributes = attributes
            scope = span.instrumentation_scope
            entry.scope = scope.name if scope is not None else None
        self._close(entry, span.resource)

    def end_usage_span(
        self, entry: Entry, end_ns: int, failed: bool, error: dict[str, Any] | None, resource: Any
    ) -> None:
        """``on_end`` for a span that only this processor sees; ``error`` is used when ``failed``."""
        try:
            if self._live.pop(entry.span_id, None) is None:
                self._late(entry.span_id)
                return
            entry.end_ns = end_ns
            if failed:
                entry.status_error = True
                if entry.error is None:
                    entry.error = error
            self._close(entry, resource)
        except Exception as exc:  # noqa: BLE001
            internal_error(exc, "UsageSpanProcessor.on_end")

    def _late(self, span_id: int) -> None:
        if self._unfinished and self._unfinished.pop(span_id, False):
            _counters.count_drop(_SKIP_LATE.reason)  # a child whose log was emitted without its end

    def _close(self, entry: Entry, resource: Any) -> None:
        """The span of ``entry`` has ended: settle its root's bookkeeping, queue the root when it is done."""
        root = entry.root
        ready = False
        with self._lock:
            # QUEUED with the root itself ending: it was taken while still open (age limit, shutdown)
            if root.state == EMITTED or (root.state == QUEUED and entry is root):
                late = True
            else:
                late = False
                if entry is root:
                    if resource is not self._resource:
                        self._resource = resource
                        self._service = _service_name(resource)
                    root.service = self._service
                    if root.pending == 0:
                        ready = True
                    else:
                        root.state = WAITING
                        root.ended_at = time.monotonic()
                        self._waiting[root.span_id] = root
                else:
                    root.pending -= 1
                    if root.pending == 0 and root.state == WAITING:
                        del self._waiting[root.span_id]
                        ready = True
                if ready:
                    root.state = QUEUED
                    del self._roots[root.span_id]
                    self._ready.append(root)
                    self._backlog += len(root.entries)
        if late:
            _counters.count_drop(_SKIP_LATE.reason)
        elif ready:
            if self._worker is None:
                self._ensure_worker()
            if len(self._ready) >= WAKE_AT and not self._wake.is_set():
                self._wake.set()
            if self._backlog * 4 >= self._settings.max_queued_spans and not ON_WORKER.get():
                self._pause()

    def _pause(self) -> None:
        """Back-pressure: wait (bounded) until the assembler has worked the backlog down to an eighth."""
        low = self._settings.max_queued_spans // 8
        _counters.count("backpressure_pauses")
        with self._space:
            self._paused += 1
            try:
                self._wake.set()
                self._space.wait_for(lambda: self._backlog <= low, BACKPRESSURE_PAUSE_SECONDS)
            finally:
                self._paused -= 1

    def _release_paused(self) -> None:
        if self._paused and self._backlog <= self._settings.max_queued_spans // 8:
            with self._space:
                self._space.notify_all()

    @never_raises("UsageSpanProcessor.discard", default=False)
    def discard(self, entry: Entry) -> bool:
        """Drop the usage log that ``entry`` belongs to, if it is still open; never raises.

        Nothing of that local trace is emitted; spans started under it from now on are not recorded.

        Returns:
            True when the log was discarded; False when it was already ended and queued or emitted, or
            ``entry`` is not buffered by this processor.
        """
        root = entry.root
        with self._lock:
            if root.owner is not self or root.state not in (OPEN, WAITING):
                return False
            root.state = DISCARDED
            self._roots.pop(root.span_id, None)
            self._waiting.pop(root.span_id, None)
            for item in root.entries:
                self._live.pop(item.span_id, None)
            root.entries = []
        _counters.count("logs_discarded")
        return True


def _service_name(resource: Any) -> str | None:
    if resource is None:
        return None
    name = resource.attributes.get("service.name")
    return str(name) if name is not None else None


def _error_from_span(span: ReadableSpan) -> dict[str, Any]:
    for event in reversed(span.events):
        if event.name == "exception" and event.attributes:
            return {
                "type": str(event.attributes.get("exception.type", "")),
                "message": str(event.attributes.get("exception.message", "")),
            }
    return {"type": "", "message": span.status.description or ""}


def discard_current() -> bool:
    """Drop the usage log of the current unit of work (see :meth:`UsageSpanProcessor.discard`).

    Returns:
        True when a log was discarded; False outside a recorded unit of work or once it has ended.
    """
    entry = getattr(trace.get_current_span(), ENTRY_ATTR, None)
    if not isinstance(entry, Entry) or entry.owner is None:
        return False
    return entry.owner.discard(entry)
