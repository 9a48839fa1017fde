"""``InMemoryUsageExporter``: keeps usage logs in memory, for tests and notebooks."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from otel_usage._schema import usage_log_of

__all__ = ["InMemoryUsageExporter"]


class InMemoryUsageExporter(LogRecordExporter):
    """Collects the usage logs it is given (other log records are ignored)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: list[dict[str, Any]] = []
        self._records: list[ReadableLogRecord] = []
        self._stopped = False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._stopped:
            return LogRecordExportResult.FAILURE
        with self._lock:
            for record in batch:
                log = usage_log_of(record)
                if log is not None:
                    self._logs.append(log)
                    self._records.append(record)
        return LogRecordExportResult.SUCCESS

    def get_logs(self) -> list[dict[str, Any]]:
        """The usage logs received so far, oldest first."""
        with self._lock:
            return list(self._logs)

    def get_records(self) -> list[ReadableLogRecord]:
        """The log records that carried them (trace correlation, timestamps)."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._logs.clear()
            self._records.clear()

    def shutdown(self) -> None:
        self._stopped = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
