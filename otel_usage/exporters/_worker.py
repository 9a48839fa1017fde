"""The worker side of a :class:`~otel_usage.exporters._delivery.UsageBatchProcessor`: :class:`DeliveryWorker`.

The worker thread takes batches from the queue (or, in durable mode, from the spool), exports them with
retries and back-off, keeps the sink's up/down state (and probes a sink that is down with the spool's
oldest chunk), spills what cannot be delivered, and drains the spool between batches. The processor
(:mod:`otel_usage.exporters._delivery`) holds the application's side: the queue, flushing and shutdown.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import threading
import time

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter

from otel_usage import _counters
from otel_usage._assembly_worker import DURABLE_DELAY_SECONDS
from otel_usage._errors import handle_internal_errors, internal_error
from otel_usage._runtime import HIDDEN
from otel_usage._suppress import suppressed
from otel_usage.exporters._batches import decode_chunk, export_once, log_bytes, retry_after_seconds, with_copied_body
from otel_usage.exporters._fallback import MANAGED as _managed
from otel_usage.exporters._fallback import spill
from otel_usage.exporters._spool import Drainer, Spool, encode_record

__all__ = ["DeliveryWorker"]

logger = logging.getLogger("otel_usage.exporters._delivery")  # the delivery processor's logger

_INITIAL_BACKOFF_SECONDS = 0.1
_MAX_BACKOFF_SECONDS = 5.0


class DeliveryWorker:
    """What the worker thread of a delivery processor does; the processor's state is set by its ``__init__``."""

    name: str
    _exporter: LogRecordExporter
    _copy_body: bool
    _batch_size: int
    _delay: float
    _max_retry: float
    _max_probe: float
    _spool: Spool | None
    _durable: bool
    _queue: collections.deque[ReadableLogRecord]
    _overflow: collections.deque[ReadableLogRecord]
    _queue_bytes: int
    _overflow_bytes: int
    _cond: threading.Condition
    _wake: threading.Event
    _stopping: bool
    _deadline: float
    _not_before: float
    _down: bool
    _probe_interval: float
    _settled: int
    _failed: int
    _inflight: int
    _urgent: bool

    # --- the worker --------------------------------------------------------------------------------------

    def _work_here(self) -> None:
        """The worker's final pass, on the caller's thread (no worker, or it could not be started)."""
        with suppressed():
            managed = _managed.set(True)
            hidden = HIDDEN.set(True)
            try:
                with handle_internal_errors("UsageBatchProcessor.shutdown"):
                    self._work(final=True)
            finally:
                HIDDEN.reset(hidden)
                _managed.reset(managed)

    def _abandon(self) -> None:
        """Shutdown timed out with an export still running: keep or count everything else."""
        with self._cond:
            left = list(self._queue) + list(self._overflow)
            self._queue.clear()
            self._overflow.clear()
            self._queue_bytes = self._overflow_bytes = 0
            inflight = self._inflight
        self._lose(left, "shutdown timed out", reason="shutdown_timeout")
        _counters.count_drop(f"shutdown_timeout:{self.name}", inflight, detail="in an export still running at shutdown")

    def _run(self) -> None:
        HIDDEN.set(True)  # probes called by an exporter never produce usage logs (no feedback loop)
        with suppressed():
            managed = _managed.set(True)
            try:
                while not self._stopping:
                    self._wake.wait(self._wait_seconds())
                    self._wake.clear()
                    if self._stopping:
                        break
                    try:
                        self._work(final=False)
                    except Exception as exc:  # noqa: BLE001 - the internal-error guard logs it
                        internal_error(exc, f"UsageBatchProcessor worker ({self.name})")
                    _counters.flush_warnings()
                with handle_internal_errors(f"UsageBatchProcessor worker ({self.name})"):
                    self._work(final=True)
            finally:
                _managed.reset(managed)

    def _wait_seconds(self) -> float:
        delay = min(self._delay, DURABLE_DELAY_SECONDS) if self._durable else self._delay
        if self._spool is not None and self._down:
            return max(0.0, min(delay, self._not_before - time.monotonic()))
        return delay

    def _work(self, final: bool) -> None:
        """Export the queue in batches, then drain the spool a chunk at a time between them.

        In durable mode the queue is first written to the spool, and everything is exported from there.
        The final pass (shutdown) drains the spool too while the shutdown deadline leaves time.
        """
        first = True
        while True:
            self._spill_overflow()
            if self._durable:
                rest = self._persist()
                if rest:  # the spool is full or broken: deliver these from memory, as without durable mode
                    self._inflight = len(rest)
                    self._handle(rest)
                if not self._drain_step():
                    return
                continue
            batch = self._take(force=first or final)
            first = False
            if batch:
                self._handle(batch)
                continue
            if not self._drain_step():
                return

    def _persist(self) -> list[ReadableLogRecord]:
        """Durable mode: move everything queued to the spool; returns what the spool could not take."""
        spool = self._spool
        if spool is None:
            return []
        with self._cond:
            records = list(self._overflow) + list(self._queue)
            self._queue.clear()
            self._overflow.clear()
            self._queue_bytes = self._overflow_bytes = 0
        if not records:
            return []
        try:
            stored = spool.append([encode_record(r) for r in records], fsync=False)
        except OSError as exc:
            logger.debug("durable spool of %s cannot be written: %s", self.name, exc)
            stored = 0
        _counters.count(f"persisted:{self.name}", stored)
        self._settle(stored, 0)
        return records[stored:]

    def _take(self, force: bool) -> list[ReadableLogRecord]:
        with self._cond:
            size = len(self._queue)
            if size == 0:
                self._urgent = False
                return []
            if not (force or self._urgent or size >= self._batch_size):
                return []
            batch = [self._queue.popleft() for _ in range(min(size, self._batch_size))]
            self._queue_bytes = max(0, self._queue_bytes - sum(log_bytes(r.log_record.body) for r in batch))
            if not self._queue:
                self._queue_bytes = 0
            self._inflight = len(batch)
            return batch

    def _settle(self, n: int, failed: int) -> None:
        with self._cond:
            self._settled += n
            self._failed += failed
            self._cond.notify_all()

    def _handle(self, batch: list[ReadableLogRecord]) -> None:
        try:
            self._handle_batch(batch)
        finally:
            self._inflight = 0

    def _handle_batch(self, batch: list[ReadableLogRecord]) -> None:
        if time.monotonic() < self._not_before:
            if self._spool is not None:  # the sink is down: keep the batch until a probe succeeds
                self._lose(batch, "the sink is down")
                return
            if not self._pause(self._not_before - time.monotonic()):  # the sink asked us to wait
                self._lose(batch, "shutdown before the sink's retry-after delay ended", reason="shutdown_timeout")
                return
        delivered, error = self._deliver(batch)
        if delivered:
            _counters.count(f"exported:{self.name}", len(batch))
            self._settle(len(batch), 0)
            self._mark_up()
            return
        if self._spool is not None:
            self._mark_down()
        self._lose(batch, error)

    def _deliver(self, batch: list[ReadableLogRecord]) -> tuple[bool, str]:
        """Export with retries until success or the retry budget (or the shutdown deadline) is spent."""
        start = time.monotonic()
        attempt = 0
        while True:
            delivered, error = self._attempt(batch)
            if delivered:
                return True, ""
            attempt += 1
            retry_after = retry_after_seconds(self._exporter)
            now = time.monotonic()
            if retry_after is not None:
                delay = retry_after
                self._not_before = max(self._not_before, now + retry_after)
            else:
                backoff = min(_MAX_BACKOFF_SECONDS, _INITIAL_BACKOFF_SECONDS * 2 ** (attempt - 1))
                delay = backoff / 2 + random.uniform(0, backoff / 2)
            if now + delay > min(start + self._max_retry, self._deadline):
                return False, error
            logger.debug("export to %s failed (%s); retry %d in %.3fs", self.name, error, attempt, delay)
            _counters.count(f"retried:{self.name}")
            if not self._pause(delay):
                return False, error

    def _attempt(self, batch: list[ReadableLogRecord]) -> tuple[bool, str]:
        records = [with_copied_body(r) for r in batch] if self._copy_body else batch
        return export_once(self._exporter, records)

    def _pause(self, seconds: float) -> bool:
        """Wait, spilling overflow meanwhile; False when shutdown leaves no time for the whole wait."""
        until = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            if now >= until:
                return True
            if until > self._deadline:
                return False
            self._wake.wait(until - now)
            self._wake.clear()
            self._spill_overflow()

    def _mark_up(self) -> None:
        self._down = False
        self._probe_interval = self._delay

    def _mark_down(self, retry_after: float | None = None) -> None:
        self._down = True
        wait = max(self._probe_interval, retry_after or 0.0)
        self._not_before = max(self._not_before, time.monotonic() + wait)
        self._probe_interval = min(self._probe_interval * 2, self._max_probe)

    def _lose(self, records: list[ReadableLogRecord], error: str, reason: str = "export_failed") -> None:
        """Records that were not delivered: into the spool, or counted as dropped for ``reason``."""
        if not records:
            return
        if self._spool is None:
            _counters.count_drop(f"{reason}:{self.name}", len(records), detail=error)
        else:
            spill(self._spool, self.name, records, error)
        self._settle(len(records), len(records))

    def _spill_overflow(self) -> None:
        if self._spool is None or not self._overflow:
            return
        with self._cond:
            records = list(self._overflow)
            self._overflow.clear()
            self._overflow_bytes = 0
        self._lose(records, "queue full")

    def _drain_step(self) -> bool:
        """Send the spool's oldest chunk once; True when something was delivered (go on draining)."""
        spool = self._spool
        now = time.monotonic()
        if spool is None or now < self._not_before or now >= self._deadline:
            return False
        with spool.draining() as drainer:
            if drainer is None:
                if self._down:
                    if os.path.exists(spool.path):  # another process is draining: look again later
                        self._not_before = max(self._not_before, time.monotonic() + self._probe_interval)
                    else:  # nothing to probe with: the next batch is tried normally
                        self._mark_up()
                return False
            return self._send_chunk(drainer)

    def _send_chunk(self, drainer: Drainer) -> bool:
        chunk = drainer.read(self._batch_size)
        if chunk is None:
            if self._down:
                self._mark_up()
            return False
        records = decode_chunk(chunk.lines, f"spool_corrupt:{self.name}")
        if records:
            delivered, error = self._attempt(records)
            if not delivered:
                self._mark_down(retry_after_seconds(self._exporter))
                logger.debug("spool of %s still cannot be delivered: %s", self.name, error)
                return False
            _counters.count(f"exported:{self.name}", len(records))
        drainer.commit(chunk)
        self._mark_up()
        return True
