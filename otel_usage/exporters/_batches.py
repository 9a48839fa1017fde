"""Usage log records on their way to an exporter, and one export call.

The delivery processor (:mod:`otel_usage.exporters._delivery`), its worker
(:mod:`otel_usage.exporters._worker`) and :func:`~otel_usage.exporters._replay.replay` share these: the
read-only copy of a record that every processor shares (:func:`readable`), the estimate of its memory
that the queue's byte budget counts (:func:`log_bytes`), one export call (:func:`export_once`), the
exporter's own retry-after advice (:class:`SupportsRetryAfter`, :func:`retry_after_seconds`) and the
records of a spool chunk (:func:`decode_chunk`).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource

from otel_usage import _counters
from otel_usage.exporters._spool import decode_record

__all__ = [
    "SupportsRetryAfter",
    "decode_chunk",
    "export_once",
    "log_bytes",
    "readable",
    "retry_after_seconds",
    "with_copied_body",
]

logger = logging.getLogger("otel_usage.exporters._delivery")  # the delivery processor's logger

#: Rough bytes one queued usage log holds in memory: a fixed part plus one per call record (tracemalloc:
#: 2.1 KB for a log of 1 record with 3 parameters, 4.6 KB for 6 records).
_LOG_BYTES = 1400
_RECORD_BYTES = 550

_MAX_RETRY_AFTER_SECONDS = 3600.0


@runtime_checkable
class SupportsRetryAfter(Protocol):
    """Optional protocol of an exporter whose sink can say when to try again (HTTP 429/503 Retry-After).

    After an export that failed (returned ``FAILURE`` or raised), the processor calls
    ``exporter.retry_after_millis()``: a number of milliseconds (capped at an hour) means "do not export
    before then", None means "no advice" (normal backoff). It describes the most recent export call, so an
    exporter sets it when a response carries the header and clears it at the start of each export. When
    the delay is longer than what is left of the batch's retry budget the batch is spilled at once (or
    dropped without a spool), and nothing is sent to the sink before the delay is over.
    """

    def retry_after_millis(self) -> float | None: ...


def log_bytes(body: Any) -> int:
    """The estimate of a queued log's memory that the queue's byte budget counts (no serialization)."""
    data = body.get("data") if isinstance(body, dict) else None
    return _LOG_BYTES + _RECORD_BYTES * (len(data) if isinstance(data, list) else 0)


_SHARED_COPY = "_otel_usage_readable"
_EMPTY_CONTEXT = Context()


def readable(record: ReadWriteLogRecord | ReadableLogRecord) -> ReadableLogRecord:
    """The delivery processors' copy of the record, made once and shared (the body is shared, read-only).

    The SDK hands every processor the same object; the first ``UsageBatchProcessor`` makes the copy and
    leaves it on the record for the others.
    """
    shared = record.__dict__.get(_SHARED_COPY)
    if shared is not None:
        return shared  # type: ignore[no-any-return]
    source = record.log_record
    api_record = object.__new__(type(source))  # a shallow copy (copy.copy's generic path costs 3x more)
    api_record.__dict__.update(source.__dict__)
    api_record.context = _EMPTY_CONTEXT  # do not keep the emitter's spans and baggage alive
    readable = ReadableLogRecord(
        log_record=api_record,
        resource=record.resource if record.resource is not None else Resource.get_empty(),
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )
    record.__dict__[_SHARED_COPY] = readable
    return readable


def with_copied_body(record: ReadableLogRecord) -> ReadableLogRecord:
    api_record = copy.copy(record.log_record)
    api_record.body = copy.deepcopy(api_record.body)
    return ReadableLogRecord(api_record, record.resource, record.instrumentation_scope, record.limits)


def export_once(exporter: LogRecordExporter, batch: Sequence[ReadableLogRecord]) -> tuple[bool, str]:
    """One export call: (delivered, error). An exception is a failure; a None result counts as success."""
    try:
        result = exporter.export(batch)
    except Exception as exc:
        logger.debug("export to %r raised", exporter, exc_info=True)
        return False, f"{type(exc).__name__}: {exc}"
    if result is None or getattr(result, "name", None) == "SUCCESS":
        return True, ""
    return False, f"export returned {getattr(result, 'name', result)}"


def retry_after_seconds(exporter: object) -> float | None:
    method = getattr(exporter, "retry_after_millis", None)
    if method is None:
        return None
    try:
        value = method() if callable(method) else method
    except Exception:
        logger.debug("retry_after_millis() of %r raised", exporter, exc_info=True)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return min(value / 1000.0, _MAX_RETRY_AFTER_SECONDS)


def decode_chunk(lines: Sequence[bytes], reason: str) -> list[ReadableLogRecord]:
    records: list[ReadableLogRecord] = []
    bad = 0
    for line in lines:
        try:
            records.append(decode_record(line))
        except (ValueError, TypeError, KeyError):
            bad += 1
    _counters.count_drop(reason, bad, detail="unreadable spool lines")
    return records
