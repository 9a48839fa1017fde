"""The assembler: the worker thread of the usage span processor, and the flush and shutdown that drive it.

:class:`AssemblyWorker` is the half of :class:`~otel_usage._processor.UsageSpanProcessor` that runs off the
application's threads: it takes the roots the hot path queued (and those past their grace period or
maximum age), has them assembled and emitted up to :data:`EMIT_CHUNK` at a time, then marks them emitted
and releases the application threads that back-pressure paused. The state it shares with the hot path is
declared below and created by the processor's ``__init__``.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar

from otel_usage import _counters
from otel_usage._config import CoreSettings
from otel_usage._errors import internal_error, never_raises
from otel_usage._record import EMITTED, OPEN, QUEUED, Entry, Root
from otel_usage._runtime import HIDDEN
from otel_usage._suppress import suppressed

__all__ = [
    "AssemblyWorker",
    "DURABLE_DELAY_SECONDS",
    "EMIT_CHUNK",
    "MAX_UNFINISHED_IDS",
    "ON_WORKER",
]

#: Most ids kept of spans emitted unfinished, to count their end as ``late_span`` (the oldest are forgotten).
MAX_UNFINISHED_IDS = 4096
#: In durable mode (OTEL_USAGE_DURABILITY=disk), longest wait between a unit of work ending and its
#: assembly, and between its emission and the delivery worker writing it to the spool: 2 x 50 ms.
DURABLE_DELAY_SECONDS = 0.05
#: True on the pipeline's own threads (the assembler, a flush): code there may write to disk.
ON_WORKER: ContextVar[bool] = ContextVar("otel_usage_on_worker", default=False)
#: Finished roots assembled and handed to the delivery processors together.
EMIT_CHUNK = 128


class AssemblyWorker:
    """The worker half of the usage span processor (a mixin: the processor holds the state)."""

    # the state shared with the hot path (created by UsageSpanProcessor.__init__)
    _emit: Callable[[Root], None]
    _emit_many: Callable[[list[Root]], None]
    _settings: CoreSettings
    _lock: threading.Lock
    _live: dict[int, Entry]
    _unfinished: dict[int, bool]
    _roots: dict[int, Root]
    _waiting: dict[int, Root]
    _ready: collections.deque[Root]
    _backlog: int
    _space: threading.Condition
    _paused: int
    _durable: bool
    _wake: threading.Event
    _idle: threading.Condition
    _busy: int
    _worker: threading.Thread | None
    _pid: int
    _stopped: bool
    _last_age_scan: float

    def _release_paused(self) -> None:
        raise NotImplementedError  # the processor's (back-pressure is the hot path's)

    # --- worker ---------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._pid != os.getpid():
            self._reset_after_fork()
        worker = self._worker
        if worker is not None and worker.is_alive():
            return
        with self._lock:
            if self._stopped or (self._worker is not None and self._worker.is_alive()):
                return
            self._worker = threading.Thread(target=self._run, name="otel_usage.assembler", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        HIDDEN.set(True)  # probes called by usage processors or exporters never produce usage logs
        ON_WORKER.set(True)
        with suppressed():
            while not self._stopped:
                delay = self._settings.schedule_delay_millis / 1000.0
                self._wake.wait(min(delay, DURABLE_DELAY_SECONDS) if self._durable else delay)
                self._wake.clear()
                self._drain(final=False)
                _counters.flush_warnings()

    def _collect(self, final: bool) -> list[Root]:
        """Take what is ready to be emitted: finished roots, roots past their grace or age."""
        now = time.monotonic()
        settings = self._settings
        with self._lock:
            batch = list(self._ready)
            ready = len(batch)
            self._ready.clear()
            grace = settings.grace_millis / 1000.0
            for key, root in list(self._waiting.items()):
                if final or now - root.ended_at >= grace:
                    del self._waiting[key]
                    del self._roots[key]
                    root.state = QUEUED
                    batch.append(root)
            if final or now - self._last_age_scan >= 1.0:
                self._last_age_scan = now
                max_age = settings.max_log_age_millis / 1000.0
                for key, root in list(self._roots.items()):
                    if root.state == OPEN and (final or now - root.created >= max_age):
                        del self._roots[key]
                        root.state = QUEUED
                        batch.append(root)
            for root in batch[ready:]:
                self._backlog += len(root.entries)
            if batch:
                self._busy += 1  # drains in progress: the worker's and a flushing caller's may overlap
        return batch

    def _drain(self, final: bool) -> int:
        batch = self._collect(final)
        if not batch:
            return 0
        # Assembly may run usage processors and exporters, also on a flushing caller's thread: nothing
        # they call is recorded (a probe there would feed logs back into the pipeline).
        hidden = HIDDEN.set(True)
        worker = ON_WORKER.set(True)
        with suppressed():
            try:
                for start in range(0, len(batch), EMIT_CHUNK):
                    chunk = batch[start : start + EMIT_CHUNK]
                    for root in chunk:
                        if root.end_ns == 0:
                            _counters.count_drop(
                                "shutdown_unfinished" if final else "log_age", detail="emitted as unfinished"
                            )
                        elif root.pending:
                            _counters.count("logs_with_unfinished_children")
                    try:
                        self._emit_many(chunk)
                    except Exception as exc:  # noqa: BLE001
                        internal_error(exc, "usage log assembly")
                    finally:
                        self._settle(chunk)
            finally:
                self._release_paused()
                ON_WORKER.reset(worker)
                HIDDEN.reset(hidden)
                with self._lock:
                    self._busy -= 1
                with self._idle:
                    self._idle.notify_all()
        return len(batch)

    def _emit_each(self, roots: list[Root]) -> None:
        """``emit_many`` for an ``emit`` that takes one root at a time."""
        for root in roots:
            try:
                self._emit(root)
            except Exception as exc:  # noqa: BLE001
                internal_error(exc, "usage log assembly")

    def _settle(self, roots: list[Root]) -> None:
        """After their emission: the roots are immutable, their spans no longer buffered."""
        with self._lock:
            for root in roots:
                root.state = EMITTED
                self._backlog = max(0, self._backlog - len(root.entries))
                if root.pending or root.end_ns == 0:  # spans that never end must not stay buffered
                    for item in root.entries:
                        if self._live.pop(item.span_id, None) is not None:
                            self._unfinished[item.span_id] = True
                    while len(self._unfinished) > MAX_UNFINISHED_IDS:
                        del self._unfinished[next(iter(self._unfinished))]
                root.entries = []
        self._release_paused()

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._live = {}
        self._unfinished = {}
        self._roots = {}
        self._waiting = {}
        self._ready = collections.deque()
        self._backlog = 0
        self._space = threading.Condition(threading.Lock())
        self._paused = 0
        self._worker = None
        self._busy = 0
        self._pid = os.getpid()

    # --- control --------------------------------------------------------------------------

    @never_raises("UsageSpanProcessor.force_flush", default=False)
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Emit every finished log now; wait (up to the timeout) for children still running.

        Returns:
            True when nothing finished is left unemitted.
        """
        deadline = time.monotonic() + timeout_millis / 1000.0
        while True:
            self._drain(final=False)
            with self._lock:
                waiting = bool(self._waiting)
                ready = bool(self._ready)
            if not waiting and not ready:
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        with self._idle:
            while self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.01))
        return True

    @never_raises("UsageSpanProcessor.shutdown")
    def shutdown(self) -> None:
        """Emit everything still buffered (unfinished units of work as ``"unfinished"``) and stop."""
        if self._stopped:
            return
        self.force_flush(5000)
        self._stopped = True
        self._wake.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(5.0)
        self._drain(final=True)
        self._live.clear()
