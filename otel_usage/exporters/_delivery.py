"""Delivery of usage logs to one exporter: a bounded queue, a worker thread, retries and a disk spool.

Give every exporter its own :class:`UsageBatchProcessor`, so a slow or broken sink never delays or loses
another's logs::

    provider.add_log_record_processor(UsageBatchProcessor(FileUsageExporter()))
    provider.add_log_record_processor(UsageBatchProcessor(SqlUsageExporter(), spool_dir="/var/spool/app"))

The spool is on by default: each sink has one in its own subdirectory of :func:`spool_root` (the
per-user data directory, or :envvar:`OTEL_USAGE_SPOOL_DIR`; ``none`` turns it off), named after the
exporter and a hash of its URL, path or endpoint (:func:`sink_key`), so the same sink finds the same spool
in every process and every run. It is bounded by ``spool_max_bytes`` (256 MiB).

What happens to a usage log (other log records are ignored):

1. ``on_emit`` (O(1), never raises; it runs on the pipeline's assembler thread, or on whichever thread
   emits) appends it to the queue, bounded by ``max_queue_size`` logs and ``max_queue_bytes`` (estimated
   without serializing). When the queue is full the *new* log goes to an overflow list of the same bounds,
   on its way to the spool: the assembler writes it there a batch at a time itself; on any other thread
   (the application's) nothing touches the disk and the worker writes the list at its next chance
   (between two export calls or while waiting to retry). Only with the spool off, or when the overflow
   list is full on a thread that may not write, is a log dropped, counted as ``queue_full:<name>``.
2. The worker (a daemon thread started on first use, started anew in a forked child, which drops the
   parent's queue) exports batches with OpenTelemetry instrumentation suppressed, so the exporter's own
   SQL or HTTP calls never become telemetry.
3. A failed export (``FAILURE`` or an exception) is retried with capped exponential backoff and jitter,
   for at most ``max_retry_millis`` per batch. An exporter can ask for a given delay (HTTP 429/503
   ``Retry-After``): see :class:`~otel_usage.exporters._batches.SupportsRetryAfter`; no export is
   attempted before that delay is over.
4. What still fails is spilled to the spool (:mod:`otel_usage.exporters._spool`), or with the spool off
   dropped and counted as ``export_failed:<name>``. While the sink is down, new batches go straight to the
   spool; the worker probes the sink on a timer (doubling from ``schedule_delay_millis`` up to
   ``max_retry_millis``, at most a minute) by sending the oldest spooled chunk, and after any successful
   export it drains the spool, oldest first, a chunk at a time between its regular batches. Logs spooled
   by another process, or by an earlier run, are drained the same way. Delivery order is therefore not
   guaranteed across a spill: each usage log carries its own ``start``. What the spool cannot take (full,
   or not writable) is counted as ``spool_full:<name>`` / ``spool_failed:<name>``: a log is lost only
   when both the memory bounds and the spool's disk budget are exhausted.
5. :meth:`UsageBatchProcessor.force_flush` delivers the queue and drains the spool within its timeout;
   :meth:`UsageBatchProcessor.shutdown` does the same within ``timeout_millis`` and then moves what is
   left to the spool (counted as ``spooled:<name>``; with the spool off, or for the one batch inside an
   export that does not return, counted as ``shutdown_timeout:<name>``); the exit line of
   :mod:`otel_usage._pipeline` reports these counts.
6. :func:`~otel_usage.exporters._replay.replay` re-sends a spool explicitly, to any exporter.

Durable mode (``durable=True`` or ``OTEL_USAGE_DURABILITY=disk``), the OpenTelemetry Collector's
persistent queue model: the worker writes every queued log to the spool within 50 ms (the span processor
assembles within 50 ms of a unit of work's end) and exports only from the spool, moving its delivered
offset after each successful export. A process killed at any moment loses at most its last 100 ms; the
rest is delivered by the next run or :func:`replay`. A crash between an export and the offset update
re-sends that one chunk (the SQL exporter's writes are idempotent).

Counters in :func:`otel_usage.stats`: ``exported:<name>``, ``spooled:<name>``, ``retried:<name>``,
``persisted:<name>`` (durable mode); gauges ``export_queue_<name>`` (logs waiting in memory),
``export_queue_bytes_<name>`` and ``spool_bytes_<name>``; drops by reason ``queue_full``,
``export_failed``, ``spool_full``, ``spool_failed``, ``spool_corrupt``, ``after_shutdown`` and
``shutdown_timeout`` (``<reason>:<name>``).

When an exporter runs under the SDK's own ``BatchLogRecordProcessor`` (``OTEL_LOGS_EXPORTER=usage_file``)
none of the above applies: that processor drops the oldest log when its queue is full (with its own
warning, not in these counters) and discards a failed batch without looking at the result. The project's
exporters then call :class:`ExportFailureFallback` themselves, so a batch they fail to write is spilled to
the spool (re-sent by :func:`replay`, not automatically) or counted as ``export_failed:<name>`` — never
lost silently; there is no retry. The SDK's configurator accepts this class as its
``export_log_record_processor`` to get the full behaviour.

Environment variables (used when the argument is None; a bad value warns and keeps the default):
``OTEL_USAGE_EXPORT_MAX_QUEUE_SIZE`` (65536), ``OTEL_USAGE_EXPORT_MAX_QUEUE_BYTES`` (16 MiB),
``OTEL_USAGE_EXPORT_BATCH_SIZE`` (512), ``OTEL_USAGE_EXPORT_DELAY_MILLIS`` (1000),
``OTEL_USAGE_EXPORT_MAX_RETRY_MILLIS`` (30000), ``OTEL_USAGE_SPOOL_DIR`` (the per-user data directory),
``OTEL_USAGE_SPOOL_MAX_BYTES`` (256 MiB), ``OTEL_USAGE_DURABILITY`` (``memory``).
"""

from __future__ import annotations

import collections
import logging
import math
import os
import re
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter

from otel_usage import _counters
from otel_usage._assembly_worker import ON_WORKER
from otel_usage._config import (
    DURABILITY,
    EXPORT_BATCH_SIZE,
    EXPORT_DELAY_MILLIS,
    EXPORT_MAX_QUEUE_BYTES,
    EXPORT_MAX_QUEUE_SIZE,
    EXPORT_MAX_RETRY_MILLIS,
    SPOOL_MAX_BYTES,
)
from otel_usage._errors import handle_internal_errors, never_raises
from otel_usage._fork import after_fork_in_child
from otel_usage._schema import is_usage_log_record
from otel_usage.exporters._batches import log_bytes, readable
from otel_usage.exporters._fallback import open_spool as _open_spool
from otel_usage.exporters._sink import default_name
from otel_usage.exporters._worker import DeliveryWorker

__all__ = ["UsageBatchProcessor"]

logger = logging.getLogger(__name__)


_MAX_PROBE_SECONDS = 60.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")


class UsageBatchProcessor(DeliveryWorker, LogRecordProcessor):
    """Delivers usage logs to one exporter: bounded queue, worker thread, retries, spill and re-send.

    Args:
        exporter: where the logs go.
        name: the exporter's name in counters and the spool file name (letters, digits, ``_.-``);
            default from the exporter's class (:func:`default_name`).
        max_queue_size: most logs waiting in memory (``OTEL_USAGE_EXPORT_MAX_QUEUE_SIZE``, 65536).
        max_queue_bytes: most (estimated) bytes of logs waiting in memory
            (``OTEL_USAGE_EXPORT_MAX_QUEUE_BYTES``, 32 MiB); the overflow list beyond the queue, on its way
            to the spool, has the same bounds.
        max_export_batch_size: logs per export call, at most the queue size
            (``OTEL_USAGE_EXPORT_BATCH_SIZE``, 512).
        schedule_delay_millis: longest wait of a log before its batch leaves
            (``OTEL_USAGE_EXPORT_DELAY_MILLIS``, 1000).
        max_retry_millis: retry budget of one batch, 0 for a single attempt
            (``OTEL_USAGE_EXPORT_MAX_RETRY_MILLIS``, 30000).
        spool_dir: the directory of this exporter's spool (undeliverable and overflowing logs are kept
            there and re-sent from it); default a subdirectory per sink of :func:`spool_root`
            (``OTEL_USAGE_SPOOL_DIR``, else the per-user data directory); False: no spool.
        spool_max_bytes: bound of this exporter's spool (``OTEL_USAGE_SPOOL_MAX_BYTES``, 256 MiB).
        durable: write every log to the spool within 50 ms of its emission and export it from there, so
            that a killed process loses at most its last 100 ms (``OTEL_USAGE_DURABILITY=disk``).
        copy_body: give the exporter a deep copy of each body (made on the worker thread), for an
            exporter that modifies what it receives; otherwise bodies are shared, read-only.

    Raises:
        ValueError: an invalid argument, or a spool directory that cannot be written.
    """

    def __init__(
        self,
        exporter: LogRecordExporter,
        *,
        name: str | None = None,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        schedule_delay_millis: int | None = None,
        max_retry_millis: int | None = None,
        spool_dir: str | os.PathLike[str] | bool | None = None,
        spool_max_bytes: int | None = None,
        copy_body: bool = False,
        max_queue_bytes: int | None = None,
        durable: bool | None = None,
    ) -> None:
        if name is None:
            name = default_name(exporter)
        elif not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"name must be 1-100 letters, digits, '_', '.' or '-', got {name!r}")
        self.name = name
        self._exporter = exporter
        self._copy_body = bool(copy_body)
        self._max_queue_size = EXPORT_MAX_QUEUE_SIZE.resolve(max_queue_size)
        self._max_queue_bytes = EXPORT_MAX_QUEUE_BYTES.resolve(max_queue_bytes)
        batch_size = EXPORT_BATCH_SIZE.resolve(max_export_batch_size)
        if batch_size > self._max_queue_size:
            if max_export_batch_size is not None:
                raise ValueError(
                    f"max_export_batch_size ({batch_size}) must not exceed max_queue_size ({self._max_queue_size})"
                )
            batch_size = self._max_queue_size
        self._batch_size = batch_size
        self._delay = EXPORT_DELAY_MILLIS.resolve(schedule_delay_millis) / 1000.0
        self._max_retry = EXPORT_MAX_RETRY_MILLIS.resolve(max_retry_millis) / 1000.0
        self._spool = _open_spool(spool_dir, name, SPOOL_MAX_BYTES.resolve(spool_max_bytes), exporter)
        self._durable = DURABILITY.from_env() == "disk" if durable is None else bool(durable)
        if self._durable and self._spool is None:
            raise ValueError(f"{name}: durable delivery (OTEL_USAGE_DURABILITY=disk) needs a spool, and it is off")
        self._max_probe = max(self._delay, min(_MAX_PROBE_SECONDS, self._max_retry))

        self._queue: collections.deque[ReadableLogRecord] = collections.deque()
        self._overflow: collections.deque[ReadableLogRecord] = collections.deque()
        self._shutdown = False
        self._stopping = False
        self._deadline = math.inf
        self._not_before = 0.0
        self._down = False
        self._probe_interval = self._delay
        self._init_threading()

        _counters.register_gauge("export_queue", self, lambda p: {p.name: len(p._queue) + len(p._overflow)})
        _counters.register_gauge("export_queue_bytes", self, lambda p: {p.name: p._queue_bytes + p._overflow_bytes})
        if self._spool is not None:
            _counters.register_gauge("spool_bytes", self, UsageBatchProcessor._spool_gauge)
        after_fork_in_child(self._init_threading)

    def _init_threading(self) -> None:
        """Fresh locks, no worker, an empty queue: at construction and in a forked child.

        The child drops the parent's queue: those logs are the parent's to deliver.
        """
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._queue.clear()
        self._overflow.clear()
        self._queue_bytes = 0
        self._overflow_bytes = 0
        self._accepted = 0
        self._settled = 0
        self._failed = 0
        self._inflight = 0
        self._urgent = False

    def _spool_gauge(self) -> dict[str, int]:
        try:
            return {self.name: self._spool.pending_bytes()} if self._spool is not None else {}
        except OSError:
            return {}

    # --- the application's side ------------------------------------------------------------------------

    @never_raises("UsageBatchProcessor.on_emit")
    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue a usage log for the worker (O(1); never blocks, never raises); ignore other records."""
        if is_usage_log_record(log_record):
            self._accept((readable(log_record),))

    @never_raises("UsageBatchProcessor.on_emit")
    def accept_usage_records(self, records: Sequence[ReadableLogRecord]) -> None:
        """Queue usage log records built by the usage-log emitter, which skips ``Logger.emit`` when every
        processor of its logger offers this method (the records are shared with them, read-only)."""
        self._accept(records)

    def _accept(self, records: Sequence[ReadableLogRecord]) -> None:
        if self._pid != os.getpid():
            self._init_threading()
        if self._shutdown:
            _counters.count_drop(f"after_shutdown:{self.name}", len(records))
            return
        overflowed = False
        dropped = 0
        spill: list[ReadableLogRecord] = []
        queue, overflow = self._queue, self._overflow
        on_worker = ON_WORKER.get()  # the assembler may write to disk, the application's threads never
        with self._cond:
            for record in records:
                size = log_bytes(record.log_record.body)
                if len(queue) < self._max_queue_size and (
                    self._queue_bytes + size <= self._max_queue_bytes or not queue
                ):
                    queue.append(record)
                    self._queue_bytes += size
                elif self._spool is not None:
                    room = len(overflow) < (self._batch_size if on_worker else self._max_queue_size) and (
                        self._overflow_bytes + size <= self._max_queue_bytes or not overflow
                    )
                    if not room and on_worker:
                        spill.extend(overflow)
                        overflow.clear()
                        self._overflow_bytes = 0
                        room = True
                    if not room:
                        dropped += 1
                        continue
                    overflow.append(record)
                    self._overflow_bytes += size
                    overflowed = True
                else:
                    dropped += 1
                    continue
                self._accepted += 1
            full_batch = len(queue) >= self._batch_size
        if spill:
            self._lose(spill, "queue full")
        if dropped:
            _counters.count_drop(
                f"queue_full:{self.name}",
                dropped,
                detail=f"max_queue_size={self._max_queue_size}, max_queue_bytes={self._max_queue_bytes}"
                + ("" if self._spool is not None else ", no spool"),
            )
        if (overflowed or full_batch) and not self._wake.is_set():
            self._wake.set()
        if self._worker is None and len(records) > dropped:
            self._start_worker()

    def _start_worker(self) -> None:
        with self._start_lock:
            if self._worker is not None or self._shutdown:
                return
            thread = threading.Thread(target=self._run, name=f"otel_usage.export.{self.name}", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: shutdown() exports on its caller's thread
                return
            self._worker = thread

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Deliver what is queued, and what is spooled, now; True when all of it got through in time.

        A log spilled to the spool counts as delivered once the spool is drained within the timeout; a
        log dropped on the way, a sink still down, or the timeout make it False (the export goes on in
        the background).
        """
        deadline = time.monotonic() + max(0, timeout_millis) / 1000.0
        if self._pid != os.getpid():
            self._init_threading()
        with self._cond:
            target, failed = self._accepted, self._failed
            settled = self._settled >= target
            if not settled:
                self._urgent = True
        if not settled:
            self._wake.set()
            if self._worker is None:
                self._start_worker()
            with self._cond:
                if not self._cond.wait_for(lambda: self._settled >= target, max(0.0, deadline - time.monotonic())):
                    return False
                if self._spool is None:
                    return self._failed == failed
        return self._wait_for_spool(deadline)

    def _wait_for_spool(self, deadline: float) -> bool:
        """Let the worker drain the spool; True when it is empty before ``deadline``."""
        spool = self._spool
        if spool is None:
            return True
        while True:
            try:
                if spool.pending_bytes() == 0:
                    return True
            except OSError:
                return False
            if time.monotonic() >= deadline or self._shutdown:
                return False
            if self._down and self._not_before >= deadline:  # the sink is down until after the deadline
                return False
            if self._worker is None:
                self._start_worker()
            self._wake.set()
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    def shutdown(self, timeout_millis: int = 30000) -> None:
        """Deliver what is queued (within ``timeout_millis``), stop the worker, shut the exporter down.

        Safe to call twice and from an ``atexit`` handler. What cannot be delivered in time is spilled
        (or dropped and counted as ``shutdown_timeout:<name>``).
        """
        if self._pid != os.getpid():
            self._init_threading()
        with self._start_lock:
            if self._shutdown:
                return
            self._shutdown = True
        self._deadline = time.monotonic() + max(0, timeout_millis) / 1000.0
        self._stopping = True
        self._wake.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread() and worker.is_alive():
            worker.join(max(0.0, self._deadline - time.monotonic()))
            if worker.is_alive():
                self._abandon()
        elif worker is None or not worker.is_alive():
            self._work_here()
        with handle_internal_errors("UsageBatchProcessor.shutdown"):
            self._exporter.shutdown()  # type: ignore[no-untyped-call]
