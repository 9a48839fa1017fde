"""``ConsoleUsageExporter``: prints each usage log as one JSON line (stdout by default)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from typing import IO

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from otel_usage._schema import usage_log_of

__all__ = ["ConsoleUsageExporter"]


class ConsoleUsageExporter(LogRecordExporter):
    """Writes usage logs to a text stream, one JSON document per line (``indent`` for humans)."""

    def __init__(self, out: IO[str] | None = None, indent: int | None = None) -> None:
        self._out = out
        self._indent = indent
        self._lock = threading.Lock()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        out = self._out if self._out is not None else sys.stdout
        try:
            lines = []
            for record in batch:
                log = usage_log_of(record)
                if log is not None:
                    lines.append(json.dumps(log, ensure_ascii=False, indent=self._indent, default=repr) + "\n")
            if lines:
                with self._lock:
                    out.write("".join(lines))
                    out.flush()
        except (OSError, ValueError):
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
